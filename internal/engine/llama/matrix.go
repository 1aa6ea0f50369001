package llama

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/kernels"
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

// decodeRow writes row r of m as float32 into dst (len m.cols).
func (m *matrix) decodeRow(r int, dst []float32) {
	kernels.Dequantize(m.typ, m.data[r*m.rowBytes:(r+1)*m.rowBytes], dst)
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
	if !kernels.Supported(info.Type) {
		return nil, fmt.Errorf("%w: tensor %s has type %s", ErrUnsupported, name, info.Type)
	}
	if uint64(cols)%info.Type.BlockSize() != 0 {
		return nil, fmt.Errorf("%w: tensor %s has rows of %d, not a multiple of the %s block size %d", ErrInvalidModel, name, cols, info.Type, info.Type.BlockSize())
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
