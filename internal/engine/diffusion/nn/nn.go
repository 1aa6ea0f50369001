// Package nn has the layers the UNet and the VAE are built of, on the
// kernels package: linear layers and 2-D convolutions (im2col into F16
// rows, then the F16 GEMM, as ggml's CPU backend computes them), group
// normalization, SiLU, nearest upsampling and attention.
//
// Feature maps are pixel-major: Data[(y*W+x)*C+c], so a 1×1 convolution is
// a linear layer over the pixels and im2col reads a neighbourhood of rows.
package nn

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/kernels"
	"github.com/neovratz/neovratz/internal/safetensors"
)

// Map is a feature map of C channels over H×W pixels, pixel-major.
type Map struct {
	C, H, W int
	Data    []float32
}

// NewMap returns a zeroed map.
func NewMap(c, h, w int) *Map { return &Map{C: c, H: h, W: w, Data: make([]float32, c*h*w)} }

// Linear is y = W·x + b with W of Out rows of In values, in the
// checkpoint's type, and b in float32 (nil for none).
type Linear struct {
	W       []byte
	Type    gguf.Type
	Out, In int
	B       []float32
}

// Conv2D is a convolution with a square kernel K (1 or 3 here), padding
// K/2 and stride Stride (0 means 1), stored as a Linear of In = inC·K·K
// (PyTorch's [out, in, kh, kw] flattened).
type Conv2D struct {
	Linear
	K, InC int
	Stride int
}

// Norm is a normalization's scale and shift.
type Norm struct{ W, B []float32 }

// Weights reads tensors from a checkpoint, remembering the first error.
type Weights struct {
	F   *safetensors.File
	Err error
}

func (ws *Weights) get(name string, shape ...int) *safetensors.Tensor {
	if ws.Err != nil {
		return nil
	}
	t, ok := ws.F.Tensor(name)
	if !ok {
		ws.Err = fmt.Errorf("tensor %s missing", name)
		return nil
	}
	ok = len(t.Shape) == len(shape)
	for i := 0; ok && i < len(shape); i++ {
		ok = shape[i] < 0 || t.Shape[i] == shape[i]
	}
	if !ok {
		ws.Err = fmt.Errorf("tensor %s has shape %v, want %v", name, t.Shape, shape)
		return nil
	}
	if !kernels.Supported(Type(t.DType)) {
		ws.Err = fmt.Errorf("tensor %s: type %s not supported", name, t.DType)
		return nil
	}
	return t
}

// Shape returns a tensor's shape, or nil (and no error) when it is absent.
func (ws *Weights) Shape(name string) []int {
	if t, ok := ws.F.Tensor(name); ok {
		return t.Shape
	}
	return nil
}

// Floats reads a tensor as float32.
func (ws *Weights) Floats(name string, shape ...int) []float32 {
	t := ws.get(name, shape...)
	if t == nil {
		return nil
	}
	return Float32s(t.DType, t.Data)
}

// Norm reads prefix.weight and prefix.bias of width c.
func (ws *Weights) Norm(prefix string, c int) Norm {
	return Norm{W: ws.Floats(prefix+".weight", c), B: ws.Floats(prefix+".bias", c)}
}

// Linear reads prefix.weight [out, in] and prefix.bias [out].
func (ws *Weights) Linear(prefix string, out, in int, bias bool) Linear {
	t := ws.get(prefix+".weight", out, in)
	l := Linear{Out: out, In: in}
	if t != nil {
		l.W, l.Type = t.Data, Type(t.DType)
	}
	if bias {
		l.B = ws.Floats(prefix+".bias", out)
	}
	return l
}

// Conv reads a convolution prefix.weight [out, in, k, k] and its bias.
func (ws *Weights) Conv(prefix string, out, in, k int) Conv2D {
	t := ws.get(prefix+".weight", out, in, k, k)
	c := Conv2D{Linear: Linear{Out: out, In: in * k * k}, K: k, InC: in}
	if t != nil {
		c.W, c.Type = t.Data, Type(t.DType)
	}
	c.B = ws.Floats(prefix+".bias", out)
	return c
}

// Type maps a safetensors dtype to the kernels' type.
func Type(d safetensors.DType) gguf.Type {
	switch d {
	case safetensors.F16:
		return gguf.TypeF16
	case safetensors.BF16:
		return gguf.TypeBF16
	}
	return gguf.TypeF32
}

// Float32s converts little-endian tensor data to float32.
func Float32s(d safetensors.DType, p []byte) []float32 {
	out := make([]float32, len(p)/d.Size())
	for i := range out {
		switch d {
		case safetensors.F16:
			out[i] = gguf.F16ToFloat32(binary.LittleEndian.Uint16(p[2*i:]))
		case safetensors.BF16:
			out[i] = gguf.BF16ToFloat32(binary.LittleEndian.Uint16(p[2*i:]))
		default:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
		}
	}
	return out
}
