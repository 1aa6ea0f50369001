package gguf

import "fmt"

// Type is a ggml tensor data type, numbered as in ggml's enum ggml_type.
type Type uint32

// The ggml tensor types. The numbering, block sizes and block byte sizes
// follow ggml/include/ggml.h and ggml/src/ggml-common.h; numbers that ggml
// has retired (4, 5, 31–33, 36–38) have no constant.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
	TypeMXFP4   Type = 39
	TypeNVFP4   Type = 40
	TypeQ1_0    Type = 41
)

// typeTraits is one row of ggml's type_traits table: the number of elements
// in a block and the bytes one block takes.
type typeTraits struct {
	name       string
	blockSize  uint64
	blockBytes uint64
}

// qkK is ggml's QK_K, the super-block size of the k-quants and i-quants.
const qkK = 256

// traits is indexed by Type. A zero blockSize marks a number ggml does not
// (or no longer) define. Q8_1 is 36 bytes as ggml's block_q8_1 (two halves
// and 32 quants); gguf-py's table says 40, a leftover from when d and s were
// floats, but ggml is what reads the files.
var traits = [...]typeTraits{
	TypeF32:     {"F32", 1, 4},
	TypeF16:     {"F16", 1, 2},
	TypeQ4_0:    {"Q4_0", 32, 2 + 16},
	TypeQ4_1:    {"Q4_1", 32, 2 + 2 + 16},
	TypeQ5_0:    {"Q5_0", 32, 2 + 4 + 16},
	TypeQ5_1:    {"Q5_1", 32, 2 + 2 + 4 + 16},
	TypeQ8_0:    {"Q8_0", 32, 2 + 32},
	TypeQ8_1:    {"Q8_1", 32, 2 + 2 + 32},
	TypeQ2_K:    {"Q2_K", qkK, 2 + 2 + qkK/16 + qkK/4},
	TypeQ3_K:    {"Q3_K", qkK, 2 + qkK/4 + qkK/8 + 12},
	TypeQ4_K:    {"Q4_K", qkK, 2 + 2 + 12 + qkK/2},
	TypeQ5_K:    {"Q5_K", qkK, 2 + 2 + 12 + qkK/8 + qkK/2},
	TypeQ6_K:    {"Q6_K", qkK, 2 + qkK/16 + 3*qkK/4},
	TypeQ8_K:    {"Q8_K", qkK, 4 + qkK + qkK/8},
	TypeIQ2_XXS: {"IQ2_XXS", qkK, 2 + qkK/4},
	TypeIQ2_XS:  {"IQ2_XS", qkK, 2 + qkK/4 + qkK/32},
	TypeIQ3_XXS: {"IQ3_XXS", qkK, 2 + 3*qkK/8},
	TypeIQ1_S:   {"IQ1_S", qkK, 2 + qkK/8 + qkK/16},
	TypeIQ4_NL:  {"IQ4_NL", 32, 2 + 16},
	TypeIQ3_S:   {"IQ3_S", qkK, 2 + 13*qkK/32 + qkK/64},
	TypeIQ2_S:   {"IQ2_S", qkK, 2 + qkK/4 + qkK/16},
	TypeIQ4_XS:  {"IQ4_XS", qkK, 2 + 2 + qkK/2 + qkK/64},
	TypeI8:      {"I8", 1, 1},
	TypeI16:     {"I16", 1, 2},
	TypeI32:     {"I32", 1, 4},
	TypeI64:     {"I64", 1, 8},
	TypeF64:     {"F64", 1, 8},
	TypeIQ1_M:   {"IQ1_M", qkK, qkK/8 + qkK/16 + qkK/32},
	TypeBF16:    {"BF16", 1, 2},
	TypeTQ1_0:   {"TQ1_0", qkK, 2 + 4*13},
	TypeTQ2_0:   {"TQ2_0", qkK, 2 + 64},
	TypeMXFP4:   {"MXFP4", 32, 1 + 16},
	TypeNVFP4:   {"NVFP4", 64, 4 + 32},
	TypeQ1_0:    {"Q1_0", 128, 2 + 16},
}

// retired names the type numbers ggml once used and has since removed, so an
// old file gets an error that says what it holds.
var retired = map[Type]string{
	4:  "Q4_2",
	5:  "Q4_3",
	31: "Q4_0_4_4",
	32: "Q4_0_4_8",
	33: "Q4_0_8_8",
	36: "IQ4_NL_4_4",
	37: "IQ4_NL_4_8",
	38: "IQ4_NL_8_8",
}

func (t Type) traits() (typeTraits, bool) {
	if uint64(t) >= uint64(len(traits)) || traits[t].blockSize == 0 {
		return typeTraits{}, false
	}
	return traits[t], true
}

// Known reports whether t is a type this package can size.
func (t Type) Known() bool {
	_, ok := t.traits()
	return ok
}

// String returns ggml's name for t ("Q4_K"), or "type(N)" for an unknown number.
func (t Type) String() string {
	if tr, ok := t.traits(); ok {
		return tr.name
	}
	if name, ok := retired[t]; ok {
		return name + "(retired)"
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize returns the number of elements in one block of t (1 for the
// plain types, 32 or 256 for most quantized ones), or 0 if t is unknown.
func (t Type) BlockSize() uint64 {
	tr, _ := t.traits()
	return tr.blockSize
}

// BlockBytes returns the bytes one block of t takes (ggml's type size),
// or 0 if t is unknown.
func (t Type) BlockBytes() uint64 {
	tr, _ := t.traits()
	return tr.blockBytes
}

// Quantized reports whether t stores elements in blocks of more than one.
func (t Type) Quantized() bool {
	return t.BlockSize() > 1
}

// errType describes why t cannot be used.
func errType(t Type) error {
	if name, ok := retired[t]; ok {
		return fmt.Errorf("type %d (%s) was removed from ggml and is not supported", uint32(t), name)
	}
	return fmt.Errorf("unknown tensor type %d", uint32(t))
}

// TensorSize returns the bytes a tensor of type t with the given dimensions
// takes: the row length dims[0] must be a multiple of t's block size. It fails
// on an unknown type, on more than MaxDims dimensions, or if the size does
// not fit in an int64.
func TensorSize(t Type, dims []uint64) (uint64, error) {
	tr, ok := t.traits()
	if !ok {
		return 0, errType(t)
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return 0, fmt.Errorf("%d dimensions, want 1 to %d", len(dims), MaxDims)
	}
	for i, d := range dims {
		if d > maxInt64 {
			return 0, fmt.Errorf("dimension %d is %d, beyond int64", i, d)
		}
	}
	if dims[0]%tr.blockSize != 0 {
		return 0, fmt.Errorf("row length %d is not a multiple of the %s block size %d", dims[0], tr.name, tr.blockSize)
	}
	// Size in bytes = blocks per row × bytes per block × the other dims,
	// each step checked against int64 overflow (ggml sizes are int64).
	size := dims[0] / tr.blockSize
	var err error
	if size, err = mulChecked(size, tr.blockBytes); err != nil {
		return 0, err
	}
	for _, d := range dims[1:] {
		if size, err = mulChecked(size, d); err != nil {
			return 0, err
		}
	}
	// The element count must fit too, as ggml keeps it in an int64.
	n := uint64(1)
	for _, d := range dims {
		if n, err = mulChecked(n, d); err != nil {
			return 0, fmt.Errorf("element count: %w", err)
		}
	}
	return size, nil
}

// mulChecked multiplies a and b, failing if the product exceeds math.MaxInt64.
func mulChecked(a, b uint64) (uint64, error) {
	if a == 0 || b == 0 {
		return 0, nil
	}
	if a > maxInt64/b {
		return 0, fmt.Errorf("size overflows: %d × %d", a, b)
	}
	return a * b, nil
}

const maxInt64 = 1<<63 - 1
