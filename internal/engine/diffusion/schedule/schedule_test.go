package schedule

import (
	"math"
	"testing"
)

func near(a float32, b float64, tol float64) bool { return math.Abs(float64(a)-b) <= tol }

func TestModelSigmas(t *testing.T) {
	m := NewModel()
	// The well-known SD 1.x range (k-diffusion prints 0.0292 and 14.6146).
	if !near(m.SigmaMin(), 0.0292, 1e-4) || !near(m.SigmaMax(), 14.6146, 1e-3) {
		t.Errorf("sigma range [%v, %v], want [0.0292, 14.6146]", m.SigmaMin(), m.SigmaMax())
	}
	for _, tt := range []float32{0, 1, 250.5, 500, 998.25, 999} {
		if got := m.SigmaToT(m.TToSigma(tt)); !near(got, float64(tt), 1e-2) {
			t.Errorf("SigmaToT(TToSigma(%v)) = %v", tt, got)
		}
	}
}

func TestDiscrete(t *testing.T) {
	m := NewModel()
	s, err := m.Sigmas("discrete", 4)
	if err != nil {
		t.Fatal(err)
	}
	// t = 999 and t = 0 go through log and exp: equal to a few ulps.
	if len(s) != 5 || !near(s[0], float64(m.SigmaMax()), 1e-5) || !near(s[3], float64(m.SigmaMin()), 1e-7) || s[4] != 0 {
		t.Errorf("sigmas = %v", s)
	}
	for i := 1; i < len(s); i++ {
		if s[i] >= s[i-1] {
			t.Errorf("not decreasing: %v", s)
		}
	}
	// t = 666 exactly: σ there.
	if want := m.sigmas[666]; !near(s[1], float64(want), 1e-5) {
		t.Errorf("sigma[1] = %v, want σ_666 = %v", s[1], want)
	}
	one, _ := m.Sigmas("discrete", 1)
	if len(one) != 2 || !near(one[0], float64(m.SigmaMax()), 1e-5) || one[1] != 0 {
		t.Errorf("1 step: %v", one)
	}
}

func TestKarras(t *testing.T) {
	m := NewModel()
	s, err := m.Sigmas("karras", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 6 || !near(s[0], float64(m.SigmaMax()), 1e-3) || !near(s[4], float64(m.SigmaMin()), 1e-5) || s[5] != 0 {
		t.Errorf("sigmas = %v", s)
	}
	// The midpoint of ρ-space: ((σmax^(1/7) + σmin^(1/7))/2)^7.
	mid := math.Pow((math.Pow(float64(m.SigmaMax()), 1.0/7)+math.Pow(float64(m.SigmaMin()), 1.0/7))/2, 7)
	if !near(s[2], mid, 1e-3*mid) {
		t.Errorf("sigma[2] = %v, want %v", s[2], mid)
	}
	if one, _ := m.Sigmas("karras", 1); math.IsNaN(float64(one[0])) {
		t.Errorf("1 step: %v", one)
	}
}

func TestSigmasErrors(t *testing.T) {
	m := NewModel()
	if _, err := m.Sigmas("exponential", 4); err == nil {
		t.Error("unknown schedule accepted")
	}
	if _, err := m.Sigmas("karras", 0); err == nil {
		t.Error("0 steps accepted")
	}
}

func TestSimpleAndLCM(t *testing.T) {
	m := NewModel()
	tests := []struct {
		schedule string
		n        int
		ts       []int // the timesteps the sigmas come from
	}{
		{"simple", 4, []int{999, 749, 499, 249}},
		{"lcm", 4, []int{999, 759, 499, 259}},
		{"lcm", 1, []int{999}},
	}
	for _, tt := range tests {
		s, err := m.Sigmas(tt.schedule, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != tt.n+1 || s[tt.n] != 0 {
			t.Fatalf("%s %d: %v", tt.schedule, tt.n, s)
		}
		for i, ts := range tt.ts {
			if want := m.TToSigma(float32(ts)); s[i] != want {
				t.Errorf("%s %d: sigma[%d] = %v, want σ at t=%d = %v", tt.schedule, tt.n, i, s[i], ts, want)
			}
		}
	}
	for sampler, want := range map[string]string{"lcm": "lcm", "ddim_trailing": "simple", "euler": "discrete"} {
		if got := Default(sampler); got != want {
			t.Errorf("Default(%q) = %q, want %q", sampler, got, want)
		}
	}
}
