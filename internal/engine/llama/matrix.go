package llama

import (
	"fmt"
	"math"

	"github.com/neovratz/neovratz/internal/gguf"
)

// matrix is a weight matrix as stored in the file: rows of cols elements of one ggml type,
// each row rowBytes long, row r at data[r*rowBytes:]. In ggml terms cols is ne[0] (the input
// width) and rows is ne[1] (the output width). data points into the file's mapping.
type matrix struct {
	name     string
	typ      gguf.Type
	rows     int
	cols     int
	rowBytes int
	data     []byte
}

// vecDotType is the type ggml converts the activations to before taking dot products with
// rows of a weight type (ggml-cpu's type_traits[...].vec_dot_type). Matching it matters: an
// F16 model's logits move by about 1e-3 when the activations stay in F32.
func vecDotType(t gguf.Type) gguf.Type {
	switch t {
	case gguf.TypeF16:
		return gguf.TypeF16
	case gguf.TypeBF16:
		return gguf.TypeBF16
	default:
		return gguf.TypeF32
	}
}

// plainTypes are the weight types this file's fallback loops handle.
func plainType(t gguf.Type) bool {
	return t == gguf.TypeF32 || t == gguf.TypeF16 || t == gguf.TypeBF16
}

// roundActivations rounds x in place to the precision of vecDotType(t), so that the F32 dot
// product that follows computes what ggml computes on converted activations.
func roundActivations(t gguf.Type, x []float32) {
	switch vecDotType(t) {
	case gguf.TypeF16:
		for i, v := range x {
			x[i] = f16ToF32[gguf.Float32ToF16(v)]
		}
	case gguf.TypeBF16:
		for i, v := range x {
			x[i] = gguf.BF16ToFloat32(gguf.Float32ToBF16(v))
		}
	}
}

// decodeRow writes row r of m as float32 into dst (len m.cols).
func (m *matrix) decodeRow(r int, dst []float32) {
	row := m.data[r*m.rowBytes : (r+1)*m.rowBytes]
	switch m.typ {
	case gguf.TypeF32:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(row[4*i]) | uint32(row[4*i+1])<<8 | uint32(row[4*i+2])<<16 | uint32(row[4*i+3])<<24)
		}
	case gguf.TypeF16:
		for i := range dst {
			dst[i] = f16ToF32[uint16(row[2*i])|uint16(row[2*i+1])<<8]
		}
	case gguf.TypeBF16:
		for i := range dst {
			dst[i] = math.Float32frombits((uint32(row[2*i]) | uint32(row[2*i+1])<<8) << 16)
		}
	default:
		dequantizeRow(m.typ, row, dst)
	}
}

// mul computes out[t*m.rows+r] = dot(row r of m, x[t*m.cols:]) for the n activation rows of x,
// spreading the weight rows over the pool's goroutines. x must already be rounded with
// roundActivations. Each weight row is decoded once and used for all n activations, so a batch
// costs one pass over the weights.
func (m *matrix) mul(p *pool, out, x []float32, n int) {
	if n == 0 {
		return
	}
	if k := quantizedMul(m, p, out, x, n); k {
		return
	}
	p.run(m.rows, 16, func(lo, hi int, scratch []float32) {
		row := scratch[:m.cols]
		for r := lo; r < hi; r++ {
			m.decodeRow(r, row)
			for t := range n {
				out[t*m.rows+r] = dot(row, x[t*m.cols:(t+1)*m.cols])
			}
		}
	})
}

// dot is the F32 dot product. Eight accumulators break the dependency chain of one running
// sum; the order of additions differs from ggml's SIMD order only at the last bits.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
		s4 += a[i+4] * b[i+4]
		s5 += a[i+5] * b[i+5]
		s6 += a[i+6] * b[i+6]
		s7 += a[i+7] * b[i+7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// f16ToF32 maps every half to its float32: a table lookup is several times faster than the
// bit manipulation in the hot loops of the KV cache and of F16 weights.
var f16ToF32 = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = gguf.F16ToFloat32(uint16(i))
	}
	return &t
}()

// vector decodes a 1-D tensor of a plain type (norm weights, biases) to float32.
func vector(f *gguf.File, name string, want int) ([]float32, error) {
	info, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%w: tensor %s is missing", ErrInvalidModel, name)
	}
	if len(info.Dims) != 1 || info.Dims[0] != uint64(want) {
		return nil, fmt.Errorf("%w: tensor %s has shape %v, want [%d]", ErrInvalidModel, name, info.Dims, want)
	}
	data, err := f.TensorData(name)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	var v []float32
	switch info.Type {
	case gguf.TypeF32:
		v, err = gguf.DecodeF32(data)
	case gguf.TypeF16:
		v, err = gguf.DecodeF16(data)
	case gguf.TypeBF16:
		v, err = gguf.DecodeBF16(data)
	default:
		return nil, fmt.Errorf("%w: tensor %s has type %s (want F32, F16 or BF16 for a vector)", ErrUnsupported, name, info.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	return v, nil
}

// loadMatrix returns the 2-D tensor name of shape [cols, rows] (ggml order).
func loadMatrix(f *gguf.File, name string, cols, rows int) (*matrix, error) {
	info, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%w: tensor %s is missing", ErrInvalidModel, name)
	}
	if len(info.Dims) != 2 || info.Dims[0] != uint64(cols) || info.Dims[1] != uint64(rows) {
		return nil, fmt.Errorf("%w: tensor %s has shape %v, want [%d %d]", ErrInvalidModel, name, info.Dims, cols, rows)
	}
	if !plainType(info.Type) && !quantizedSupported(info.Type) {
		return nil, fmt.Errorf("%w: tensor %s has type %s", ErrUnsupported, name, info.Type)
	}
	data, err := f.TensorData(name)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	rowBytes := int(info.Size) / rows
	if rowBytes*rows != len(data) {
		return nil, fmt.Errorf("%w: tensor %s holds %d bytes, not %d rows", ErrInvalidModel, name, len(data), rows)
	}
	return &matrix{name: name, typ: info.Type, rows: rows, cols: cols, rowBytes: rowBytes, data: data}, nil
}
