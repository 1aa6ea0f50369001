package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// blockCounts are the row lengths, in blocks, the fast kernels are tried at:
// one block, odd counts, and the widths of real models.
var blockCounts = []int{1, 2, 3, 5, 7, 8, 17, 28, 31}

// TestSIMDMatchesGeneric checks each SIMD dot product against the pure-Go
// one on random weights and activations of many lengths. The two sum in
// different orders (ggml's AVX2 order and its scalar order), so they agree
// to float rounding; the integer parts are exact.
func TestSIMDMatchesGeneric(t *testing.T) {
	if !simdAvailable {
		t.Skip("no SIMD kernels on this machine")
	}
	for _, ty := range weightTypes {
		bs := int(ty.BlockSize())
		if bs == 1 {
			bs = 32 // F32/F16/BF16: try lengths that leave tails as well
		}
		for _, nb := range blockCounts {
			n := nb * bs
			if ty.BlockSize() == 1 {
				n += nb % 7 // tails of 0..6 elements
			}
			t.Run(fmt.Sprintf("%v/%d", ty, n), func(t *testing.T) {
				for seed := uint64(0); seed < 4; seed++ {
					x := randomRows(100+seed, 1, n, float32(math.Ldexp(1, int(seed)*3-4)))
					y := randomRows(200+seed, 1, n, 1)
					w, a := quantized(ty, x), activations(ty, y)
					var want float32
					withGeneric(t, func() { want = VecDot(ty, n, w, a) })
					got := VecDot(ty, n, w, a)
					if tol := dotTolerance(ty, n, w, a); abs32(got-want) > tol {
						t.Errorf("seed %d: avx2 %v, generic %v (tolerance %g)", seed, got, want, tol)
					}
				}
			})
		}
	}
}

// TestSIMDFloatKernels checks the SIMD Dot and Axpy against the pure-Go ones
// at every length up to 100 (all tail lengths of both loops).
func TestSIMDFloatKernels(t *testing.T) {
	if !simdAvailable {
		t.Skip("no SIMD kernels on this machine")
	}
	for n := 0; n <= 100; n++ {
		x := randomRows(uint64(n), 1, n, 1)
		y := randomRows(uint64(n)+1000, 1, n, 1)
		var want float32
		withGeneric(t, func() { want = Dot(x, y) })
		var mag float64
		for i := range x {
			mag += math.Abs(float64(x[i] * y[i]))
		}
		if got := Dot(x, y); math.Abs(float64(got-want)) > mag*1e-6 {
			t.Errorf("Dot n=%d: avx2 %v, generic %v", n, got, want)
		}
		wantY := append([]float32(nil), y...)
		withGeneric(t, func() { Axpy(0.37, x, wantY) })
		gotY := append([]float32(nil), y...)
		Axpy(0.37, x, gotY)
		for i := range gotY {
			// FMA rounds once where the generic code rounds twice.
			if d := abs32(gotY[i] - wantY[i]); d > 1e-6*(abs32(wantY[i])+1) {
				t.Errorf("Axpy n=%d [%d]: avx2 %v, generic %v", n, i, gotY[i], wantY[i])
			}
		}
	}
}

// TestGenericFallback forces the pure-Go kernels, as on a CPU without AVX2
// or another architecture, and checks the package reports and uses them.
func TestGenericFallback(t *testing.T) {
	withGeneric(t, func() {
		if got := SIMD(); got != "generic" {
			t.Fatalf("SIMD() = %q with SIMD off, want generic", got)
		}
		x := goldenInput(7, 512)[:512]
		y := goldenInput(8, 512)[:512]
		for _, ty := range weightTypes {
			w, a := quantized(ty, x), activations(ty, y)
			got := VecDot(ty, 512, w, a)
			var want float64
			wf, af := make([]float32, 512), make([]float32, 512)
			Dequantize(ty, w, wf)
			Dequantize(ActivationType(ty), a, af)
			for i := range wf {
				want += float64(wf[i]) * float64(af[i])
			}
			if tol := dequantizedDotTolerance(ty, 512, w, a); math.Abs(float64(got)-want) > tol {
				t.Errorf("%v: generic VecDot %v, float64 dot of the dequantized rows %v", ty, got, want)
			}
		}
	})
	if simdAvailable && SIMD() != simdName {
		t.Errorf("SIMD() = %q after re-enabling, want %q", SIMD(), simdName)
	}
}

// TestVecDotIsDotOfDequantized checks, for every weight type, that the
// integer dot product VecDot takes is the dot product of the dequantized
// weights and activations: what the block formats mean.
func TestVecDotIsDotOfDequantized(t *testing.T) {
	for _, ty := range weightTypes {
		t.Run(ty.String(), func(t *testing.T) {
			n := 1024
			x := randomRows(11, 1, n, 0.5)
			y := randomRows(12, 1, n, 3)
			w, a := quantized(ty, x), activations(ty, y)
			wf, af := make([]float32, n), make([]float32, n)
			Dequantize(ty, w, wf)
			Dequantize(ActivationType(ty), a, af)
			var want float64
			for i := range wf {
				want += float64(wf[i]) * float64(af[i])
			}
			tol := dequantizedDotTolerance(ty, n, w, a)
			if got := VecDot(ty, n, w, a); math.Abs(float64(got)-want) > tol {
				t.Errorf("VecDot = %v, dot of dequantized rows = %v (tolerance %g)", got, want, tol)
			}
		})
	}
}

// dequantizedDotTolerance bounds the distance between VecDot and the exact
// dot product of the dequantized rows: float rounding, plus for Q4_1 and
// Q5_1 the rounding of the activations' s = d·Σq to a half (2^-11 relative),
// through which the weights' minimum m enters.
func dequantizedDotTolerance(ty gguf.Type, n int, w, a []byte) float64 {
	tol := float64(dotTolerance(ty, n, w, a))
	if ty != gguf.TypeQ4_1 && ty != gguf.TypeQ5_1 {
		return tol
	}
	wb, ab := int(ty.BlockBytes()), q8_1Bytes
	for b := 0; b < n/qk; b++ {
		m, s := f16(w[b*wb+2:]), f16(a[b*ab+2:])
		tol += math.Abs(float64(m)*float64(s)) * (1.0 / 1024)
	}
	return tol
}

// TestDot4MatchesDot checks the four-row kernels bit for bit against the
// one-row kernels at every tried length, with the four rows at a stride
// larger than a row (as in a batch whose rows are padded).
func TestDot4MatchesDot(t *testing.T) {
	for _, ty := range weightTypes {
		if kernelsOf(ty).dot4 == nil {
			continue
		}
		bs := int(ty.BlockSize())
		for _, nb := range blockCounts {
			n := nb * bs
			w := quantized(ty, randomRows(uint64(nb), 1, n, 0.3))
			arb := RowBytes(ActivationType(ty), n)
			stride := arb + 100
			a := make([]byte, 3*stride+arb)
			for k := 0; k < 4; k++ {
				copy(a[k*stride:], activations(ty, randomRows(uint64(nb*10+k), 1, n, 2)))
			}
			got := kernelsOf(ty).dot4(n, w, a, stride)
			for k := 0; k < 4; k++ {
				want := VecDot(ty, n, w, a[k*stride:k*stride+arb])
				if math.Float32bits(got[k]) != math.Float32bits(want) {
					t.Errorf("%v n=%d row %d: dot4 %v, dot %v", ty, n, k, got[k], want)
				}
			}
		}
	}
}

// TestSIMDActivations checks the SIMD activation quantizers byte for byte
// against the pure-Go ones (both are ggml's x86 code): random rows at many
// scales, and the golden inputs with their zero, constant and half-way
// blocks.
func TestSIMDActivations(t *testing.T) {
	if !simdAvailable {
		t.Skip("no SIMD kernels on this machine")
	}
	inputs := [][]float32{goldenInput(3, 512), goldenInput(4, 1024), make([]float32, 512)}
	// Two elements of the largest magnitude with opposite signs: Q8_K takes
	// the first one's sign.
	tie := randomRows(9, 1, 512, 0.1)
	tie[5], tie[100], tie[300], tie[301] = -3, 3, 2, -2
	inputs = append(inputs, tie)
	// Values at the edges of a half, and a length with a tail.
	inputs = append(inputs, []float32{1e-8, -1e-7, 6e-5, 65504, 65519, 65520, 1e10, float32(math.Inf(-1)),
		float32(math.NaN()), 0, float32(math.Copysign(0, -1)), 3.14159, -2.5e-6, 1, 2, 3, 4, 5, 6, 7, 8,
		9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24})
	for seed := uint64(0); seed < 8; seed++ {
		inputs = append(inputs, randomRows(seed, 1, 32*int(1+seed*5), float32(math.Ldexp(1, int(seed)*4-12))))
	}
	for _, ty := range weightTypes {
		for i, x := range inputs {
			if len(x)%int(ActivationType(ty).BlockSize()) != 0 {
				continue
			}
			var want []byte
			withGeneric(t, func() { want = activations(ty, x) })
			if got := activations(ty, x); string(got) != string(want) {
				t.Errorf("%v input %d: avx2 and generic activations differ: %s", ty, i, firstDiff(ActivationType(ty), got, want))
			}
		}
	}
}
