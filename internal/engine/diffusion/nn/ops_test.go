package nn

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/kernels"
)

func randSlice(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(2*r.Float64() - 1)
	}
	return x
}

func f16Bytes(x []float32) ([]byte, []float32) {
	b := make([]byte, 2*len(x))
	back := make([]float32, len(x))
	for i, v := range x {
		h := gguf.Float32ToF16(v)
		binary.LittleEndian.PutUint16(b[2*i:], h)
		back[i] = gguf.F16ToFloat32(h)
	}
	return b, back
}

// naiveConv is the textbook convolution over an NCHW weight.
func naiveConv(x *Map, w, b []float32, out, k, stride int) *Map {
	pad := k / 2
	y := NewMap(out, (x.H+2*pad-k)/stride+1, (x.W+2*pad-k)/stride+1)
	for o := range out {
		for oy := range y.H {
			for ox := range y.W {
				yy, xx := oy*stride, ox*stride
				s := float64(b[o])
				for c := range x.C {
					for ky := range k {
						for kx := range k {
							sy, sx := yy+ky-pad, xx+kx-pad
							if sy < 0 || sy >= x.H || sx < 0 || sx >= x.W {
								continue
							}
							s += float64(w[((o*x.C+c)*k+ky)*k+kx]) * float64(x.Data[(sy*x.W+sx)*x.C+c])
						}
					}
				}
				y.Data[(oy*y.W+ox)*out+o] = float32(s)
			}
		}
	}
	return y
}

func TestConv2D(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, tt := range []struct {
		name                      string
		inC, out, k, h, w, stride int
		f16                       bool
		tol                       float64
	}{
		{"3x3 f32", 5, 7, 3, 6, 9, 1, false, 1e-5},
		{"1x1 f32", 8, 3, 1, 4, 4, 1, false, 1e-5},
		{"3x3 f16, more rows than a chunk", 16, 8, 3, 20, 17, 1, true, 2e-2},
		{"3x3 stride 2, even", 4, 6, 3, 8, 6, 2, false, 1e-5},
		{"3x3 stride 2, odd", 4, 6, 3, 7, 5, 2, false, 1e-5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := &Map{C: tt.inC, H: tt.h, W: tt.w, Data: randSlice(r, tt.inC*tt.h*tt.w)}
			w := randSlice(r, tt.out*tt.inC*tt.k*tt.k)
			b := randSlice(r, tt.out)
			c := Conv2D{Linear: Linear{Out: tt.out, In: tt.inC * tt.k * tt.k, B: b}, K: tt.k, InC: tt.inC, Stride: tt.stride}
			if tt.f16 {
				c.W, w = f16Bytes(w)
				c.Type = gguf.TypeF16
			} else {
				c.W, c.Type = f32Bytes(w), gguf.TypeF32
			}
			got := c.Forward(x, pool)
			want := naiveConv(x, w, b, tt.out, tt.k, tt.stride)
			if got.H != want.H || got.W != want.W {
				t.Fatalf("size %dx%d, want %dx%d", got.H, got.W, want.H, want.W)
			}
			for i := range want.Data {
				if d := math.Abs(float64(got.Data[i] - want.Data[i])); d > tt.tol {
					t.Fatalf("value %d = %v, want %v", i, got.Data[i], want.Data[i])
				}
			}
		})
	}
}

func TestGroupNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := &Map{C: 8, H: 3, W: 5, Data: randSlice(r, 8*15)}
	orig := append([]float32(nil), x.Data...)
	nm := Norm{W: randSlice(r, 8), B: randSlice(r, 8)}
	GroupNorm(x, 4, nm, 1e-6, nil)
	for g := range 4 {
		var vals []float64
		for p := range 15 {
			for c := g * 2; c < g*2+2; c++ {
				vals = append(vals, float64(orig[p*8+c]))
			}
		}
		var mu, v float64
		for _, a := range vals {
			mu += a
		}
		mu /= float64(len(vals))
		for _, a := range vals {
			v += (a - mu) * (a - mu)
		}
		v /= float64(len(vals))
		for p := range 15 {
			for c := g * 2; c < g*2+2; c++ {
				want := (float64(orig[p*8+c])-mu)/math.Sqrt(v+1e-6)*float64(nm.W[c]) + float64(nm.B[c])
				if math.Abs(float64(x.Data[p*8+c])-want) > 1e-5 {
					t.Fatalf("pixel %d channel %d = %v, want %v", p, c, x.Data[p*8+c], want)
				}
			}
		}
	}
}

func TestUpsample2x(t *testing.T) {
	x := &Map{C: 2, H: 1, W: 2, Data: []float32{1, 2, 3, 4}}
	got := Upsample2x(x, nil)
	want := []float32{1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4}
	if got.H != 2 || got.W != 4 {
		t.Fatalf("size %dx%d", got.H, got.W)
	}
	for i := range want {
		if got.Data[i] != want[i] {
			t.Fatalf("got %v, want %v", got.Data, want)
		}
	}
}

func TestAttention(t *testing.T) {
	t.Run("one block", func(t *testing.T) { testAttention(t) })
	old := attentionScores
	attentionScores = 14 // two query rows of 7 keys per block
	defer func() { attentionScores = old }()
	t.Run("blocks of two", func(t *testing.T) { testAttention(t) })
}

func testAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const nq, nk, heads, dim = 5, 7, 2, 4
	q, k, v := randSlice(r, nq*heads*dim), randSlice(r, nk*heads*dim), randSlice(r, nk*heads*dim)
	got := make([]float32, nq*heads*dim)
	pool := kernels.NewPool(2)
	defer pool.Close()
	Attention(got, q, k, v, nq, nk, heads, dim, 0.5, pool)
	for i := range nq {
		for h := range heads {
			var s [nk]float64
			var sum float64
			for j := range nk {
				for d := range dim {
					s[j] += float64(q[(i*heads+h)*dim+d]) * float64(k[(j*heads+h)*dim+d])
				}
				s[j] = math.Exp(s[j] * 0.5)
				sum += s[j]
			}
			for d := range dim {
				var want float64
				for j := range nk {
					want += s[j] / sum * float64(v[(j*heads+h)*dim+d])
				}
				if g := got[(i*heads+h)*dim+d]; math.Abs(float64(g)-want) > 1e-5 {
					t.Fatalf("out[%d][%d][%d] = %v, want %v", i, h, d, g, want)
				}
			}
		}
	}
}

func TestConcat(t *testing.T) {
	a := &Map{C: 1, H: 1, W: 2, Data: []float32{1, 2}}
	b := &Map{C: 2, H: 1, W: 2, Data: []float32{3, 4, 5, 6}}
	got := Concat(a, b, nil)
	want := []float32{1, 3, 4, 2, 5, 6}
	for i := range want {
		if got.Data[i] != want[i] {
			t.Fatalf("got %v, want %v", got.Data, want)
		}
	}
}
