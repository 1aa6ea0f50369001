// Package safetensors reads and writes single-file .safetensors checkpoints,
// the format AUTOMATIC1111 and ComfyUI users download Stable Diffusion
// models in: an 8-byte little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the tensor data.
//
// Open maps the file read-only, so a multi-gigabyte checkpoint costs only its
// header until tensors are touched. Parse treats its input as hostile: the
// header length is capped and checked against the input, every dtype, shape
// and offset is validated with overflow-safe arithmetic, and the byte ranges
// must tile the data section exactly (no holes, no overlaps, nothing
// trailing), as the reference implementation requires. A malformed file
// gives an error wrapping ErrMalformed or ErrUnsupported, never a panic.
//
// The writer (Write, WriteHeader) produces files as test fixtures.
package safetensors

import (
	"errors"
	"fmt"
)

// MaxHeaderSize caps the JSON header, as the reference implementation does
// (100 MB): a header length beyond it is refused before anything is read.
const MaxHeaderSize = 100_000_000

// MetadataKey is the header key that holds free-form string metadata.
const MetadataKey = "__metadata__"

// Errors that Parse and Open wrap, to be matched with errors.Is.
var (
	// ErrMalformed: the file's structure is invalid or truncated.
	ErrMalformed = errors.New("malformed safetensors file")
	// ErrUnsupported: a well-formed file holding a dtype this package does
	// not read.
	ErrUnsupported = errors.New("unsupported safetensors file")
)

type parseError struct {
	kind error
	msg  string
}

func (e *parseError) Error() string { return "safetensors: " + e.msg }
func (e *parseError) Unwrap() error { return e.kind }

func malformed(format string, args ...any) error {
	return &parseError{kind: ErrMalformed, msg: fmt.Sprintf(format, args...)}
}

func unsupported(format string, args ...any) error {
	return &parseError{kind: ErrUnsupported, msg: fmt.Sprintf(format, args...)}
}

// DType is a tensor element type, spelled as in the header.
type DType string

// The element types this package reads. The format knows others (F64, the
// integer types, BOOL, the F8 variants); a file using them is refused with
// ErrUnsupported naming the dtype and the tensor.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
)

// Size is the number of bytes of one element, or 0 for an unsupported type.
func (d DType) Size() int {
	switch d {
	case F32:
		return 4
	case F16, BF16:
		return 2
	}
	return 0
}

// knownDTypes are the other dtypes of the format, so an error can tell a
// valid but unsupported file from a corrupt one.
var knownDTypes = map[string]bool{
	"BOOL": true, "U8": true, "I8": true, "I16": true, "U16": true, "I32": true, "U32": true,
	"I64": true, "U64": true, "F64": true, "F8_E4M3": true, "F8_E5M2": true, "F8_E8M0": true,
	"F6_E2M3": true, "F6_E3M2": true, "F4": true, "C64": true,
}

// Tensor describes one tensor of a file.
type Tensor struct {
	// Name is the tensor's key in the header.
	Name string
	// DType is its element type.
	DType DType
	// Shape lists its dimensions outermost first (PyTorch order); empty for a scalar.
	Shape []int
	// Offset is where its data starts, from the start of the file.
	Offset int64
	// Data is its bytes, little-endian, row-major: a slice of the mapping
	// (or of Parse's input), valid until Close.
	Data []byte
}

// Elements is the number of elements, the product of Shape.
func (t *Tensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}
