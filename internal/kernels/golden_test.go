package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// testdata/ggml.json holds ggml's own answers for the inputs goldenInput
// gives: its reference quantizers' bytes, a hash of its dequantizers'
// floats, the bytes of the activation quantizers llama.cpp's CPU backend
// runs on x86-64 (AVX2 build), and the dot products of each weight row with
// each activation row from ggml's scalar code ("dot") and from its AVX2 code
// ("dot_x86"). They were produced by ggml-org/ggml at d99724f2 from the
// inputs -ggml.inputs writes, its C compiled by gcc 12 -O2: ggml-quants.c and
// the scalar dot products for plain x86-64 (no FMA, so nothing fused);
// arch/x86/quants.c with -mavx2 -mfma -mf16c and gcc's default contraction,
// as llama.cpp's own x86 builds compile it.
const goldenFile = "testdata/ggml.json"

const goldenN = 512 // elements per row: two k-quant super-blocks

var ggmlInputs = flag.String("ggml.inputs", "", "write the golden test's inputs (x.bin: weights, y.bin: activations; 3 rows of 512 little-endian float32 each) to this directory")

type golden struct {
	N     int                   `json:"n"`
	Rows  int                   `json:"rows"`
	Acts  map[string]string     `json:"acts"`
	Types map[string]goldenType `json:"types"`
}

type goldenType struct {
	Quant         string   `json:"quant"`
	DequantSHA256 string   `json:"dequant_sha256"`
	Dot           []string `json:"dot"`
	DotX86        []string `json:"dot_x86"`
}

func goldenInputs() (x, y []float32) {
	return goldenInput(1, goldenN), goldenInput(2, goldenN)
}

func TestWriteGoldenInputs(t *testing.T) {
	if *ggmlInputs == "" {
		t.Skip("-ggml.inputs not set")
	}
	x, y := goldenInputs()
	for name, v := range map[string][]float32{"x.bin": x, "y.bin": y} {
		if err := os.WriteFile(filepath.Join(*ggmlInputs, name), gguf.EncodeF32(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func loadGolden(t *testing.T) *golden {
	t.Helper()
	b, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("%s: %v", goldenFile, err)
	}
	if g.N != goldenN || g.Rows != 3 {
		t.Fatalf("%s: n=%d rows=%d, want %d and 3", goldenFile, g.N, g.Rows, goldenN)
	}
	return &g
}

func typeByName(t *testing.T, name string) gguf.Type {
	t.Helper()
	for ty := gguf.Type(0); ty <= gguf.TypeBF16; ty++ {
		if ty.Known() && ty.String() == name {
			return ty
		}
	}
	t.Fatalf("unknown type %q", name)
	return 0
}

// firstDiff describes where two byte strings first differ, by block.
func firstDiff(t gguf.Type, got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d bytes, want %d", len(got), len(want))
	}
	bb := int(t.BlockBytes())
	for i := range got {
		if got[i] != want[i] {
			blk := i / bb
			return fmt.Sprintf("block %d byte %d: got %x, want %x", blk, i%bb, got[blk*bb:(blk+1)*bb], want[blk*bb:(blk+1)*bb])
		}
	}
	return ""
}

func bitsOf(t *testing.T, s string) float32 {
	t.Helper()
	var u uint32
	if _, err := fmt.Sscanf(s, "%08x", &u); err != nil {
		t.Fatalf("dot value %q: %v", s, err)
	}
	return math.Float32frombits(u)
}

// TestGoldenQuantize checks the reference quantizers and the dequantizers
// against ggml byte for byte and bit for bit.
func TestGoldenQuantize(t *testing.T) {
	g := loadGolden(t)
	x, _ := goldenInputs()
	for name, want := range g.Types {
		t.Run(name, func(t *testing.T) {
			ty := typeByName(t, name)
			wantQ, err := hex.DecodeString(want.Quant)
			if err != nil {
				t.Fatal(err)
			}
			q := quantized(ty, x)
			if d := firstDiff(ty, q, wantQ); d != "" {
				t.Errorf("Quantize differs from quantize_row_%s_ref: %s", name, d)
			}
			if want.DequantSHA256 == "" {
				return
			}
			deq := make([]float32, len(x))
			Dequantize(ty, wantQ, deq)
			if sum := sha256.Sum256(gguf.EncodeF32(deq)); hex.EncodeToString(sum[:]) != want.DequantSHA256 {
				t.Errorf("Dequantize of ggml's bytes differs from dequantize_row_%s (sha256 %x)", name, sum)
			}
		})
	}
}

// TestGoldenActivations checks QuantizeActivations against the x86 CPU
// backend's quantizers byte for byte.
func TestGoldenActivations(t *testing.T) {
	g := loadGolden(t)
	_, y := goldenInputs()
	for at, weight := range map[string]gguf.Type{"Q8_0": gguf.TypeQ8_0, "Q8_1": gguf.TypeQ4_1, "Q8_K": gguf.TypeQ4_K} {
		t.Run(at, func(t *testing.T) {
			want, err := hex.DecodeString(g.Acts[at])
			if err != nil {
				t.Fatal(err)
			}
			if d := firstDiff(ActivationType(weight), activations(weight, y), want); d != "" {
				t.Errorf("QuantizeActivations differs from the CPU backend's quantize_row_%s: %s", at, d)
			}
		})
	}
}

// TestGoldenVecDot checks VecDot on ggml's weight and activation bytes: the
// scalar version bit for bit against ggml's scalar code; the AVX2 version bit
// for bit against ggml's AVX2 code (it sums in the same order), and where
// there is no SIMD, the scalar version within float rounding of ggml's AVX2.
func TestGoldenVecDot(t *testing.T) {
	g := loadGolden(t)
	for name, want := range g.Types {
		if want.Dot == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			ty := typeByName(t, name)
			w, _ := hex.DecodeString(want.Quant)
			acts, _ := hex.DecodeString(g.Acts[ActivationType(ty).String()])
			wrb, arb := RowBytes(ty, goldenN), RowBytes(ActivationType(ty), goldenN)
			for r := 0; r < 3; r++ {
				for a := 0; a < 3; a++ {
					wr, ar := w[r*wrb:(r+1)*wrb], acts[a*arb:(a+1)*arb]
					scalar := bitsOf(t, want.Dot[3*r+a])
					var got float32
					withGeneric(t, func() { got = VecDot(ty, goldenN, wr, ar) })
					if math.Float32bits(got) != math.Float32bits(scalar) {
						t.Errorf("row %d·act %d: scalar VecDot = %v (%08x), ggml generic = %v (%s)", r, a, got, math.Float32bits(got), scalar, want.Dot[3*r+a])
					}
					fast := VecDot(ty, goldenN, wr, ar)
					x86 := bitsOf(t, want.DotX86[3*r+a])
					if SIMD() == "avx2" {
						if math.Float32bits(fast) != math.Float32bits(x86) {
							t.Errorf("row %d·act %d: AVX2 VecDot = %v (%08x), ggml AVX2 = %v (%s)", r, a, fast, math.Float32bits(fast), x86, want.DotX86[3*r+a])
						}
					} else if tol := dotTolerance(ty, goldenN, wr, ar); abs32(fast-x86) > tol {
						t.Errorf("row %d·act %d: %s VecDot = %v, ggml AVX2 %v (tolerance %g)", r, a, SIMD(), fast, x86, tol)
					}
				}
			}
		})
	}
}
