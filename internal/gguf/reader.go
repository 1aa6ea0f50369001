// Package gguf reads and writes GGUF model files, the format of llama.cpp
// and ggml: a header, ordered metadata key/values, tensor descriptions, and
// an aligned data section holding the tensors.
//
// The reader takes versions 2 and 3, little-endian. Open maps the file
// read-only and TensorData returns slices of the mapping, so opening a
// multi-gigabyte model costs the metadata only. Parse treats its input as
// hostile: every count, length, offset and size is checked against the bytes
// left, with overflow-safe arithmetic, before anything is allocated, so a
// malformed file gives an error wrapping ErrMalformed (or ErrNotGGUF,
// ErrUnsupported) rather than a panic, a hang or a huge allocation; what
// Parse allocates stays within a small multiple of the input's size.
//
// The Builder writes version 3 files, chiefly as test fixtures for the
// engine; f16.go has the F16/BF16 conversions such fixtures need.
package gguf

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// Limits of the format as ggml applies them, and of this reader.
const (
	// MaxDims is the most dimensions a tensor may have (GGML_MAX_DIMS).
	MaxDims = 4
	// MaxArrayDepth bounds the nesting of arrays of arrays; the top-level
	// array counts as depth 1.
	MaxArrayDepth = 8
	// DefaultAlignment is the data alignment when general.alignment is absent.
	DefaultAlignment = 32
	// MaxAlignment is the largest general.alignment accepted.
	MaxAlignment = 1 << 20
	// KeyAlignment is the metadata key that sets the alignment.
	KeyAlignment = "general.alignment"
)

// Errors that Parse and Open wrap, to be matched with errors.Is.
var (
	// ErrNotGGUF: the input does not start with the GGUF magic.
	ErrNotGGUF = errors.New("not a GGUF file")
	// ErrUnsupported: a GGUF file this package cannot read (version 1,
	// a big-endian file, an unknown version).
	ErrUnsupported = errors.New("unsupported GGUF file")
	// ErrMalformed: the file's structure is invalid or truncated.
	ErrMalformed = errors.New("malformed GGUF file")
)

// parseError is an error message wrapping one of the sentinels above.
type parseError struct {
	kind error
	msg  string
}

func (e *parseError) Error() string { return "gguf: " + e.msg }
func (e *parseError) Unwrap() error { return e.kind }

func malformed(format string, args ...any) error {
	return &parseError{kind: ErrMalformed, msg: fmt.Sprintf(format, args...)}
}

// wrap prefixes err's message with context, keeping its kind. Context is
// added only on the error path, so parsing allocates no messages.
func wrap(err error, format string, args ...any) error {
	var pe *parseError
	if errors.As(err, &pe) {
		return &parseError{kind: pe.kind, msg: fmt.Sprintf(format, args...) + ": " + pe.msg}
	}
	return fmt.Errorf("gguf: "+format+": %w", append(args, err)...)
}

// magic is the first four bytes of every GGUF file.
const magic = "GGUF"

// Fixed sizes used to bound counts before allocating.
const (
	headerSize = 4 + 4 + 8 + 8
	// minKVSize: an empty key (8-byte length), the value type, a 1-byte value.
	minKVSize = 8 + 4 + 1
	// minTensorInfoSize: an empty name, n_dims, one dim, type, offset.
	minTensorInfoSize = 8 + 4 + 8 + 4 + 8
)

// TensorInfo describes one tensor.
type TensorInfo struct {
	// Name is the tensor's name, unique in the file.
	Name string
	// Dims are the tensor's dimensions, fastest-varying first as in ggml
	// (Dims[0] is the row length). Shared with the File: do not modify.
	Dims []uint64
	// Type is the element type.
	Type Type
	// Offset is where the data starts, relative to the data section.
	Offset uint64
	// Size is the data's length in bytes, computed from Dims and Type.
	Size uint64
}

// Elements returns the number of elements (the product of Dims).
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d // Parse checked the product fits in an int64
	}
	return n
}

// File is a parsed GGUF file. Its methods are safe for concurrent use, but
// not concurrently with Close. Tensors may overlap (ggml writes them one
// after another; this reader only requires each to lie inside the file).
type File struct {
	version    uint32
	alignment  uint64
	dataOffset uint64

	keys    []string
	values  []Value
	keyIdx  map[string]int
	tensors []TensorInfo
	tensIdx map[string]int

	data  []byte
	unmap func() error
}

// Parse parses a GGUF file held in memory. The File refers to data (tensor
// data slices point into it), so data must not change while the File is used.
func Parse(data []byte) (*File, error) {
	d := &decoder{b: data}
	f := &File{data: data, alignment: DefaultAlignment}
	if err := f.parse(d); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) parse(d *decoder) error {
	if err := f.parseHeader(d); err != nil {
		return err
	}
	nTensors, err := d.u64("tensor count")
	if err != nil {
		return err
	}
	nKV, err := d.u64("metadata count")
	if err != nil {
		return err
	}
	// Bound both counts by the bytes left before sizing anything by them.
	rest := uint64(d.remaining())
	if nKV > rest/minKVSize {
		return malformed("metadata count %d needs at least %d bytes per entry, only %d bytes left", nKV, minKVSize, rest)
	}
	if nTensors > rest/minTensorInfoSize || nKV*minKVSize+nTensors*minTensorInfoSize > rest {
		return malformed("tensor count %d with metadata count %d needs more than the %d bytes left", nTensors, nKV, rest)
	}

	f.keys = make([]string, 0, nKV)
	f.values = make([]Value, 0, nKV)
	f.keyIdx = make(map[string]int, nKV)
	for i := uint64(0); i < nKV; i++ {
		if err := f.parseKV(d, i); err != nil {
			return err
		}
	}
	if err := f.setAlignment(); err != nil {
		return err
	}

	f.tensors = make([]TensorInfo, 0, nTensors)
	f.tensIdx = make(map[string]int, nTensors)
	dims := make([]uint64, 0, nTensors*MaxDims) // one backing array for all Dims
	for i := uint64(0); i < nTensors; i++ {
		if dims, err = f.parseTensorInfo(d, i, dims); err != nil {
			return err
		}
	}

	// The data section starts at the next multiple of the alignment. A file
	// without tensors may end before it (writers differ on that padding).
	end := uint64(d.off)
	f.dataOffset = (end + f.alignment - 1) &^ (f.alignment - 1) // end < 2^63, no overflow
	return f.checkTensorData()
}

func (f *File) parseHeader(d *decoder) error {
	if len(d.b) < 4 || string(d.b[:4]) != magic {
		n := min(len(d.b), 4)
		got := string(d.b[:n])
		if n > 0 && n < 4 && strings.HasPrefix(magic, got) {
			return malformed("file is %d bytes, shorter than the %d-byte header", len(d.b), headerSize)
		}
		hint := ""
		switch got {
		case "lmgg", "fmgg", "tjgg", "algg":
			hint = " (a pre-GGUF ggml/ggjt file; convert it to GGUF)"
		}
		return &parseError{kind: ErrNotGGUF, msg: fmt.Sprintf("not a GGUF file: magic %q%s", got, hint)}
	}
	d.off = 4
	v, err := d.u32("version")
	if err != nil {
		return err
	}
	switch {
	case v == 2 || v == 3:
		f.version = v
	case v == 1:
		return &parseError{kind: ErrUnsupported, msg: "GGUF version 1 is not supported (it used 32-bit counts); convert the model again with a current llama.cpp"}
	case v&0xffff == 0 && bits.ReverseBytes32(v) >= 1 && bits.ReverseBytes32(v) <= 3:
		return &parseError{kind: ErrUnsupported, msg: fmt.Sprintf("big-endian GGUF (version field %#08x is byte-swapped %d); only little-endian files are supported", v, bits.ReverseBytes32(v))}
	default:
		return &parseError{kind: ErrUnsupported, msg: fmt.Sprintf("unsupported GGUF version %d (want 2 or 3)", v)}
	}
	if len(d.b) < headerSize {
		return malformed("file is %d bytes, shorter than the %d-byte header", len(d.b), headerSize)
	}
	return nil
}

func (f *File) parseKV(d *decoder, i uint64) error {
	key, err := d.str("key")
	if err != nil {
		return wrap(err, "metadata entry %d", i)
	}
	if _, dup := f.keyIdx[key]; dup {
		return malformed("duplicate metadata key %q", key)
	}
	t, err := d.u32("value type")
	if err != nil {
		return wrap(err, "metadata %q", key)
	}
	v, err := d.value(ValueType(t), 0)
	if err != nil {
		return wrap(err, "metadata %q", key)
	}
	f.keyIdx[key] = len(f.keys)
	f.keys = append(f.keys, key)
	f.values = append(f.values, v)
	return nil
}

func (f *File) setAlignment() error {
	v, ok := f.Value(KeyAlignment)
	if !ok {
		return nil
	}
	a, err := checkAlignment(v)
	if err != nil {
		return malformed("%v", err)
	}
	f.alignment = a
	return nil
}

// checkAlignment validates a general.alignment value. ggml writes a uint32;
// any integer type is accepted as long as the value is sane.
func checkAlignment(v Value) (uint64, error) {
	a, ok := v.AsUint()
	if !ok {
		return 0, fmt.Errorf("%s is a %s %s, want an unsigned integer", KeyAlignment, v.Type(), v)
	}
	if a == 0 || a&(a-1) != 0 || a > MaxAlignment {
		return 0, fmt.Errorf("%s is %d, want a power of two from 1 to %d", KeyAlignment, a, MaxAlignment)
	}
	return a, nil
}

func (f *File) parseTensorInfo(d *decoder, i uint64, dims []uint64) ([]uint64, error) {
	name, err := d.str("name")
	if err != nil {
		return dims, wrap(err, "tensor %d", i)
	}
	if _, dup := f.tensIdx[name]; dup {
		return dims, malformed("duplicate tensor name %q", name)
	}
	n, err := d.u32("n_dims")
	if err != nil {
		return dims, wrap(err, "tensor %q", name)
	}
	if n == 0 || n > MaxDims {
		return dims, malformed("tensor %q: n_dims %d, want 1 to %d", name, n, MaxDims)
	}
	start := len(dims)
	for j := uint32(0); j < n; j++ {
		x, err := d.u64("dimension")
		if err != nil {
			return dims, wrap(err, "tensor %q", name)
		}
		if x > maxInt64 {
			return dims, malformed("tensor %q: dimension %d is %d, beyond int64", name, j, x)
		}
		dims = append(dims, x)
	}
	t, err := d.u32("type")
	if err != nil {
		return dims, wrap(err, "tensor %q", name)
	}
	off, err := d.u64("offset")
	if err != nil {
		return dims, wrap(err, "tensor %q", name)
	}
	ti := TensorInfo{Name: name, Dims: dims[start:len(dims):len(dims)], Type: Type(t), Offset: off}
	if ti.Size, err = TensorSize(ti.Type, ti.Dims); err != nil {
		return dims, malformed("tensor %q: %v", name, err)
	}
	f.tensIdx[name] = len(f.tensors)
	f.tensors = append(f.tensors, ti)
	return dims, nil
}

// checkTensorData checks every tensor's alignment and that its data lies
// inside the file.
func (f *File) checkTensorData() error {
	size := uint64(len(f.data))
	for _, t := range f.tensors {
		if t.Offset%f.alignment != 0 {
			return malformed("tensor %q: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.alignment)
		}
		// start = dataOffset + Offset and end = start + Size, compared
		// without forming sums that could overflow.
		if f.dataOffset > size || t.Offset > size-f.dataOffset || t.Size > size-f.dataOffset-t.Offset {
			return malformed("tensor %q: data at offset %d+%d size %d beyond end of file (size %d)", t.Name, f.dataOffset, t.Offset, t.Size, size)
		}
	}
	return nil
}

// Close releases the file's mapping, if Open made one. Tensor data slices
// must not be used after Close; the metadata and tensor descriptions, which
// are copied out of the file, stay usable. Closing twice is harmless.
func (f *File) Close() error {
	f.data = nil
	if f.unmap == nil {
		return nil
	}
	unmap := f.unmap
	f.unmap = nil
	return unmap()
}

// Version returns the file's GGUF version, 2 or 3.
func (f *File) Version() uint32 { return f.version }

// Alignment returns the data alignment (general.alignment, or 32).
func (f *File) Alignment() uint64 { return f.alignment }

// DataOffset returns the file offset where the data section starts.
func (f *File) DataOffset() uint64 { return f.dataOffset }

// Keys returns the metadata keys in file order. The slice is shared.
func (f *File) Keys() []string { return f.keys }

// Value returns the metadata value for key.
func (f *File) Value(key string) (Value, bool) {
	i, ok := f.keyIdx[key]
	if !ok {
		return Value{}, false
	}
	return f.values[i], true
}

// String returns a string value; ok is false if key is absent or not a string.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Value(key)
	return v.AsString()
}

// Uint returns an integer value of any type that is non-negative.
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Value(key)
	if !ok {
		return 0, false
	}
	return v.AsUint()
}

// Int returns an integer value of any type that fits in an int64.
func (f *File) Int(key string) (int64, bool) {
	v, ok := f.Value(key)
	if !ok {
		return 0, false
	}
	return v.AsInt()
}

// Float returns a float32 or float64 value (or an integer one) as a float64.
func (f *File) Float(key string) (float64, bool) {
	v, ok := f.Value(key)
	if !ok {
		return 0, false
	}
	return v.AsFloat()
}

// Bool returns a bool value.
func (f *File) Bool(key string) (b, ok bool) {
	v, ok := f.Value(key)
	if !ok {
		return false, false
	}
	return v.AsBool()
}

// Strings returns an array of strings, shared with the File.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Value(key)
	return v.AsStrings()
}

// Ints returns an array of any integer type as a new []int64.
func (f *File) Ints(key string) ([]int64, bool) {
	v, _ := f.Value(key)
	return v.AsInts()
}

// Floats returns an array of float32 or float64 as a new []float64.
func (f *File) Floats(key string) ([]float64, bool) {
	v, _ := f.Value(key)
	return v.AsFloats()
}

// Tensors returns the tensor descriptions in file order. The slice is shared.
func (f *File) Tensors() []TensorInfo { return f.tensors }

// Tensor returns the description of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tensIdx[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.tensors[i], true
}

// TensorData returns the named tensor's bytes: a slice of the mapping or of
// Parse's input, not a copy, valid until Close. Callers must not modify it
// (a mapping is read-only; writing to it faults).
func (f *File) TensorData(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: no tensor %q", name)
	}
	if f.data == nil {
		return nil, fmt.Errorf("gguf: tensor %q: file is closed", name)
	}
	start := f.dataOffset + t.Offset // checked in Parse
	return f.data[start : start+t.Size : start+t.Size], nil
}
