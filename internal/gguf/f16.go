package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Float32ToF16 converts f to IEEE 754 half precision, rounding to nearest
// with ties to even, producing subnormals below 2^-14 and ±Inf on overflow.
// A NaN stays a NaN (quieted, keeping the top bits of its payload).
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff

	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(mant>>13)
	}
	e := exp - 127 + 15 // the half's biased exponent
	switch {
	case e >= 0x1f:
		return sign | 0x7c00
	case e <= 0:
		// Subnormal half (or zero). The value is mant24·2^(exp-150) and a
		// subnormal's unit is 2^-24, so the half's mantissa is
		// mant24 >> (14-e), rounded. Below 2^-25 everything rounds to zero.
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		return sign | uint16(roundShift(m, shift))
	}
	// Normal: a carry out of the mantissa bumps the exponent, correctly
	// rounding up to the next binade or to Inf.
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}

// roundShift returns x >> s rounded to nearest, ties to even.
func roundShift(x uint32, s uint) uint32 {
	q := x >> s
	rem := x & (1<<s - 1)
	half := uint32(1) << (s - 1)
	if rem > half || (rem == half && q&1 == 1) {
		q++
	}
	return q
}

// F16ToFloat32 converts an IEEE 754 half to float32 (exactly: every half,
// subnormals included, is a float32).
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		// Zero or subnormal: mant·2^-24, exact in float32.
		f := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(f))
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// Float32ToBF16 converts f to bfloat16 (the top half of a float32) rounding
// to nearest with ties to even, as ggml does; subnormals are kept and a NaN
// is quieted.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// BF16ToFloat32 converts a bfloat16 to float32 (exactly).
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// EncodeF32 returns xs as little-endian float32 bytes, ggml's F32 layout.
func EncodeF32(xs []float32) []byte {
	out := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

// EncodeF16 returns xs converted to little-endian halves, ggml's F16 layout.
func EncodeF16(xs []float32) []byte {
	out := make([]byte, 2*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint16(out[2*i:], Float32ToF16(x))
	}
	return out
}

// EncodeBF16 returns xs converted to little-endian bfloat16, ggml's BF16 layout.
func EncodeBF16(xs []float32) []byte {
	out := make([]byte, 2*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint16(out[2*i:], Float32ToBF16(x))
	}
	return out
}

// DecodeF32 decodes little-endian float32 bytes.
func DecodeF32(p []byte) ([]float32, error) {
	if len(p)%4 != 0 {
		return nil, fmt.Errorf("gguf: F32 data of %d bytes is not a multiple of 4", len(p))
	}
	out := make([]float32, len(p)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return out, nil
}

// DecodeF16 decodes little-endian halves to float32.
func DecodeF16(p []byte) ([]float32, error) {
	return decode16(p, "F16", F16ToFloat32)
}

// DecodeBF16 decodes little-endian bfloat16 to float32.
func DecodeBF16(p []byte) ([]float32, error) {
	return decode16(p, "BF16", BF16ToFloat32)
}

func decode16(p []byte, name string, conv func(uint16) float32) ([]float32, error) {
	if len(p)%2 != 0 {
		return nil, fmt.Errorf("gguf: %s data of %d bytes is not a multiple of 2", name, len(p))
	}
	out := make([]float32, len(p)/2)
	for i := range out {
		out[i] = conv(binary.LittleEndian.Uint16(p[2*i:]))
	}
	return out, nil
}
