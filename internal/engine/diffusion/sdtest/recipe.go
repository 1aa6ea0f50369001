package sdtest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/safetensors"
)

// splitmix64 is the recipe's generator (Steele, Lea, Flood 2014).
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// fnv1a64 hashes a tensor name into its stream's starting state.
func fnv1a64(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// Values fills dst with the recipe's values of tensor t (float32, before
// the rounding to F16), in row-major order. dst must hold every element.
func Values(dst []float32, t safetensors.TensorInfo, seed uint64) {
	n := 1
	fanIn := 1
	for i, d := range t.Shape {
		n *= d
		if i > 0 {
			fanIn *= d
		}
	}
	dst = dst[:n]
	st := splitmix64(fnv1a64(t.Name) ^ seed)
	kind := 0 // scaled by sqrt(3/fan_in)
	switch {
	case len(t.Shape) == 1 && strings.HasSuffix(t.Name, ".weight"):
		kind = 1 // a norm scale around 1
	case strings.HasSuffix(t.Name, ".bias"):
		kind = 2
	}
	s := float32(math.Sqrt(3 / float64(fanIn)))
	for i := range dst {
		u := float32(float64(st.next()>>11) * 0x1p-53)
		// Each float32 operation is rounded on its own: the explicit
		// conversions keep the compiler from fusing them.
		v := float32(u*2) - 1
		switch kind {
		case 1:
			dst[i] = 1 + float32(0.1*v)
		case 2:
			dst[i] = 0.05 * v
		default:
			dst[i] = v * s
		}
	}
}

// WriteCheckpoint writes the recipe's checkpoint: the safetensors header
// for tensors, then each tensor's values as F16. It streams, holding one
// tensor at a time.
func WriteCheckpoint(w io.Writer, tensors []safetensors.TensorInfo, seed uint64) error {
	h, err := safetensors.Header(tensors, nil)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.Write(h); err != nil {
		return fmt.Errorf("sdtest: %w", err)
	}
	var vals []float32
	var out []byte
	for _, t := range tensors {
		if t.DType != safetensors.F16 {
			return fmt.Errorf("sdtest: tensor %q: the recipe writes F16, not %s", t.Name, t.DType)
		}
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if cap(vals) < n {
			vals = make([]float32, n)
			out = make([]byte, 2*n)
		}
		Values(vals[:n], t, seed)
		for i, v := range vals[:n] {
			b := gguf.Float32ToF16(v)
			out[2*i] = byte(b)
			out[2*i+1] = byte(b >> 8)
		}
		if _, err := bw.Write(out[:2*n]); err != nil {
			return fmt.Errorf("sdtest: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("sdtest: %w", err)
	}
	return nil
}

// WriteFile writes the oracle's checkpoint to path and checks its size and
// SHA-256 against cases.json, so that any later difference in the images
// is the engine's, not the fixture's.
func (o *Oracle) WriteFile(path string) error {
	tensors, err := o.Tensors()
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sdtest: %w", err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	err = WriteCheckpoint(cw, tensors, o.RecipeSeed)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sdtest: %w", cerr)
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); cw.n != o.CheckpointBytes || got != o.CheckpointSHA256 {
		return fmt.Errorf("sdtest: %s checkpoint is %d bytes with SHA-256 %s, want %d bytes with %s",
			o.Name, cw.n, got, o.CheckpointBytes, o.CheckpointSHA256)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WithBaseWidth returns the SD 1.x oracle's tensor list with the UNet's
// base width scaled from 32 to width: every UNet dimension that is a
// multiple of 32, other than the 768-wide text context, scales with it. At
// width 320 this is exactly SD 1.5's layout (1,066,235,307 parameters),
// the shape the benchmarks use.
func WithBaseWidth(tensors []safetensors.TensorInfo, width int) []safetensors.TensorInfo {
	out := make([]safetensors.TensorInfo, len(tensors))
	for i, t := range tensors {
		t.Shape = append([]int(nil), t.Shape...)
		if strings.HasPrefix(t.Name, "model.diffusion_model.") {
			for j, d := range t.Shape {
				if d%32 == 0 && d != 768 {
					t.Shape[j] = d / 32 * width
				}
			}
		}
		out[i] = t
	}
	return out
}
