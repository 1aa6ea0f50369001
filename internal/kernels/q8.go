package kernels

import "math"

// Q8_0 (block_q8_0): a half scale d and 32 int8 quants, x = d·q.
// Q8_1 (block_q8_1): d, s = d·Σq as halves, and 32 int8 quants; it carries
// the sum so that dot products with Q4_1 and Q5_1 weights can apply their
// minimum in one multiplication.

func dequantQ8_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*q8_0Bytes : (i+1)*q8_0Bytes]
		d := f16(b)
		y := dst[i*qk : (i+1)*qk]
		for j := range y {
			y[j] = float32(int8(b[2+j])) * d
		}
	}
}

func dequantQ8_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*q8_1Bytes : (i+1)*q8_1Bytes]
		d := f16(b)
		y := dst[i*qk : (i+1)*qk]
		for j := range y {
			y[j] = float32(int8(b[4+j])) * d
		}
	}
}

// absMax returns the largest |v| in x.
func absMax(x []float32) float32 {
	var m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > m {
			m = a
		}
	}
	return m
}

// quantQ8_0 is quantize_row_q8_0_ref: d = max|x|/127, q = roundf(x/d).
func quantQ8_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk; i++ {
		x := src[i*qk : (i+1)*qk]
		b := dst[i*q8_0Bytes : (i+1)*q8_0Bytes]
		d := absMax(x) / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		for j, v := range x {
			b[2+j] = byte(int8(roundAway(v * id)))
		}
	}
}

// quantQ8_1 is quantize_row_q8_1_ref: as Q8_0, plus s = Σq·d.
func quantQ8_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk; i++ {
		x := src[i*qk : (i+1)*qk]
		b := dst[i*q8_1Bytes : (i+1)*q8_1Bytes]
		d := absMax(x) / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		sum := 0
		for j, v := range x {
			q := int8(roundAway(v * id))
			b[4+j] = byte(q)
			sum += int(q)
		}
		putF16(b[2:], float32(sum)*d)
	}
}

// roundEvenSat rounds to nearest even and saturates to int8, as
// _mm256_round_ps(_MM_ROUND_NEAREST) then the saturating packs do.
func roundEvenSat(f float32) int8 {
	if !(f > -128.5 && f < 127.5) {
		// Out of range, or NaN (cvtps_epi32 gives 0x80000000, which packs
		// to -128).
		if f > 0 {
			return 127
		}
		return -128
	}
	return int8(nearestInt(f))
}

// quantQ8_0Act is the x86 AVX quantize_row_q8_0 that llama.cpp's CPU backend
// runs on activations. It differs from the reference in two roundings: the
// inverse scale is 127/max rather than 1/(max/127), and halves round to even.
func quantQ8_0Act(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk; i++ {
		x := src[i*qk : (i+1)*qk]
		b := dst[i*q8_0Bytes : (i+1)*q8_0Bytes]
		m := absMax(x)
		putF16(b, m/127)
		var id float32
		if m != 0 {
			id = 127 / m
		}
		for j, v := range x {
			b[2+j] = byte(roundEvenSat(v * id))
		}
	}
}

// quantQ8_1Act is the x86 AVX2 quantize_row_q8_1 (see quantQ8_0Act).
func quantQ8_1Act(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk; i++ {
		x := src[i*qk : (i+1)*qk]
		b := dst[i*q8_1Bytes : (i+1)*q8_1Bytes]
		m := absMax(x)
		d := m / 127
		putF16(b, d)
		var id float32
		if m != 0 {
			id = 127 / m
		}
		sum := 0
		for j, v := range x {
			q := roundEvenSat(v * id)
			b[4+j] = byte(q)
			sum += int(q)
		}
		putF16(b[2:], d*float32(sum))
	}
}

// dotQ8_0 is ggml_vec_dot_q8_0_q8_0_generic.
func dotQ8_0(n int, w, a []byte) float32 {
	var sumf float32
	for i := 0; i < n/qk; i++ {
		x := w[i*q8_0Bytes : (i+1)*q8_0Bytes]
		y := a[i*q8_0Bytes : (i+1)*q8_0Bytes]
		var sumi int32
		for j := 2; j < q8_0Bytes; j++ {
			sumi += int32(int8(x[j])) * int32(int8(y[j]))
		}
		// The conversions keep Go from fusing the multiply into the add
		// (as it may on arm64), which would round differently from ggml.
		sumf += float32(float32(sumi) * (f16(x) * f16(y)))
	}
	return sumf
}
