package kernels

import (
	"math"
	"testing"
)

func close32(got, want, tol float64) bool { return math.Abs(got-want) <= tol*(1+math.Abs(want)) }

func TestRMSNorm(t *testing.T) {
	x := randomRows(1, 1, 896, 3)
	w := randomRows(2, 1, 896, 1)
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := 1 / math.Sqrt(ss/896+1e-6)
	got := make([]float32, len(x))
	RMSNorm(got, x, w, 1e-6)
	for i := range x {
		if want := float64(x[i]) * scale * float64(w[i]); !close32(float64(got[i]), want, 1e-6) {
			t.Fatalf("[%d] = %v, want %v", i, got[i], want)
		}
	}
	// In place and without weights.
	y := append([]float32(nil), x...)
	RMSNorm(y, y, nil, 1e-6)
	for i := range x {
		if want := float64(x[i]) * scale; !close32(float64(y[i]), want, 1e-6) {
			t.Fatalf("unweighted [%d] = %v, want %v", i, y[i], want)
		}
	}
}

func TestSoftmax(t *testing.T) {
	x := []float32{1, 2, 3, float32(math.Inf(-1)), -1000, 1000}
	Softmax(x)
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	if !close32(sum, 1, 1e-6) || x[3] != 0 || x[5] != 1 {
		t.Errorf("softmax with a dominant entry and -Inf: %v (sum %v)", x, sum)
	}
	y := []float32{0, float32(math.Log(3))}
	Softmax(y)
	if !close32(float64(y[0]), 0.25, 1e-6) || !close32(float64(y[1]), 0.75, 1e-6) {
		t.Errorf("softmax(0, ln 3) = %v, want 0.25, 0.75", y)
	}
	Softmax(nil)
}

func TestSiLUAndSwiGLU(t *testing.T) {
	x := []float32{-20, -1, 0, 0.5, 3, 40}
	up := []float32{1, 2, 3, 4, 5, 6}
	s := make([]float32, len(x))
	SiLU(s, x)
	g := make([]float32, len(x))
	SwiGLU(g, x, up)
	for i, v := range x {
		want := float64(v) / (1 + math.Exp(-float64(v)))
		if !close32(float64(s[i]), want, 1e-6) {
			t.Errorf("silu(%v) = %v, want %v", v, s[i], want)
		}
		if !close32(float64(g[i]), want*float64(up[i]), 1e-6) {
			t.Errorf("swiglu(%v, %v) = %v, want %v", v, up[i], g[i], want*float64(up[i]))
		}
	}
}

// TestRoPE checks the rotation against the closed form for both layouts:
// pair i turns by pos·base^(-2i/dims).
func TestRoPE(t *testing.T) {
	const headDim, heads = 64, 3
	for _, neox := range []bool{false, true} {
		r := RoPE{Dims: headDim, Base: 10000, NeoX: neox}
		for _, pos := range []int{0, 1, 17, 500} {
			x := randomRows(uint64(pos), heads, headDim, 1)
			orig := append([]float32(nil), x...)
			cs := make([]float32, headDim)
			r.Table(cs, pos)
			r.Apply(x, headDim, cs)
			for h := 0; h < heads; h++ {
				for i := 0; i < headDim/2; i++ {
					j, k := h*headDim+2*i, h*headDim+2*i+1
					if neox {
						j, k = h*headDim+i, h*headDim+i+headDim/2
					}
					theta := float64(pos) * math.Pow(10000, -2*float64(i)/headDim)
					c, s := math.Cos(theta), math.Sin(theta)
					w0 := float64(orig[j])*c - float64(orig[k])*s
					w1 := float64(orig[j])*s + float64(orig[k])*c
					// theta accumulates a float32 rounding per pair, as in ggml.
					tol := 1e-6 * (1 + float64(pos))
					if math.Abs(float64(x[j])-w0) > tol || math.Abs(float64(x[k])-w1) > tol {
						t.Fatalf("neox=%v pos %d head %d pair %d: (%v, %v), want (%v, %v)", neox, pos, h, i, x[j], x[k], w0, w1)
					}
				}
			}
		}
	}
}

// TestRoPEPartial checks that dimensions past Dims are left alone and that
// frequency factors divide the angle.
func TestRoPEPartial(t *testing.T) {
	ff := make([]float32, 8)
	for i := range ff {
		ff[i] = 2
	}
	r := RoPE{Dims: 16, Base: 100, NeoX: true, FreqFactors: ff}
	plain := RoPE{Dims: 16, Base: 100, NeoX: true}
	x := randomRows(3, 1, 32, 1)
	orig := append([]float32(nil), x...)
	cs, half := make([]float32, 16), make([]float32, 16)
	r.Table(cs, 10)
	plain.Table(half, 5)
	for i := range cs {
		if !close32(float64(cs[i]), float64(half[i]), 1e-5) {
			t.Fatalf("factor 2 at position 10 differs from position 5 at %d: %v vs %v", i, cs[i], half[i])
		}
	}
	r.Apply(x, 32, cs)
	for i := 16; i < 32; i++ {
		if x[i] != orig[i] {
			t.Fatalf("dimension %d beyond Dims changed", i)
		}
	}
}

// TestRoPEYaRN checks YaRN's two limits: with ExtFactor 1 the dimensions
// below the low correction dim extrapolate (angle not scaled), those above
// the high one interpolate (angle times FreqScale), and the magnitude grows
// by 1+0.1·ln(1/FreqScale).
func TestRoPEYaRN(t *testing.T) {
	r := RoPE{Dims: 128, Base: 10000, FreqScale: 0.25, ExtFactor: 1, BetaFast: 32, BetaSlow: 1, OrigCtx: 4096}
	cs := make([]float32, 128)
	r.Table(cs, 1000)
	corr := yarnCorrDims(128, 4096, 10000, 32, 1)
	mscale := 1 + 0.1*math.Log(4)
	for i := 0; i < 64; i++ {
		theta := 1000 * math.Pow(10000, -2*float64(i)/128)
		switch {
		case float64(i) < float64(corr[0]):
			theta *= 1
		case float64(i) > float64(corr[1]):
			theta *= 0.25
		default:
			continue
		}
		if !close32(float64(cs[2*i]), math.Cos(theta)*mscale, 2e-4) || !close32(float64(cs[2*i+1]), math.Sin(theta)*mscale, 2e-4) {
			t.Errorf("pair %d: (%v, %v), want (%v, %v)", i, cs[2*i], cs[2*i+1], math.Cos(theta)*mscale, math.Sin(theta)*mscale)
		}
	}
}

func TestDotAxpyScale(t *testing.T) {
	for _, simd := range []bool{true, false} {
		useSIMD(simd)
		x := []float32{1, 2, 3, 4, 5}
		y := []float32{2, 0, -1, 1, 0.5}
		if got := Dot(x, y); got != 5.5 {
			t.Errorf("simd=%v: Dot = %v, want 5.5", simd, got)
		}
		Axpy(2, x, y)
		if y[4] != 10.5 || y[0] != 4 {
			t.Errorf("simd=%v: Axpy gave %v", simd, y)
		}
		Scale(y, 0.5)
		if y[0] != 2 {
			t.Errorf("simd=%v: Scale gave %v", simd, y)
		}
	}
	useSIMD(true)
}
