package kernels

import "math"

// Q4_0 (block_q4_0): a half scale d and 32 4-bit quants, x = d·(q-8).
// Q4_1 (block_q4_1): halves d and m and 32 4-bit quants, x = d·q + m.
// Byte j of the quants holds element j in its low nibble and element j+16
// in its high nibble.

// signedAbsMax returns the element of x with the largest magnitude (the
// first, on ties) and that magnitude, as the q4_0/q5_0 quantizers pick it.
func signedAbsMax(x []float32) (max, amax float32) {
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); amax < a {
			amax, max = a, v
		}
	}
	return max, amax
}

// minMax returns the smallest and largest element of x.
func minMax(x []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

func dequantQ4_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*q4_0Bytes : (i+1)*q4_0Bytes]
		d := f16(b)
		y := dst[i*qk : (i+1)*qk]
		for j := 0; j < qk/2; j++ {
			q := b[2+j]
			y[j] = float32(int(q&0xf)-8) * d
			y[j+qk/2] = float32(int(q>>4)-8) * d
		}
	}
}

// quantQ4_0 is quantize_row_q4_0_ref: d = max/-8 where max is the element of
// largest magnitude, so that it maps to -8 exactly.
func quantQ4_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk; i++ {
		x := src[i*qk : (i+1)*qk]
		b := dst[i*q4_0Bytes : (i+1)*q4_0Bytes]
		max, _ := signedAbsMax(x)
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		for j := 0; j < qk/2; j++ {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+qk/2] * id)
			xi0 := min(15, int8(x0+8.5))
			xi1 := min(15, int8(x1+8.5))
			b[2+j] = byte(xi0) | byte(xi1)<<4
		}
	}
}

func dequantQ4_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*q4_1Bytes : (i+1)*q4_1Bytes]
		d, m := f16(b), f16(b[2:])
		y := dst[i*qk : (i+1)*qk]
		for j := 0; j < qk/2; j++ {
			q := b[4+j]
			y[j] = float32(float32(q&0xf)*d) + m
			y[j+qk/2] = float32(float32(q>>4)*d) + m
		}
	}
}

// quantQ4_1 is quantize_row_q4_1_ref: d = (max-min)/15, m = min.
func quantQ4_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk; i++ {
		x := src[i*qk : (i+1)*qk]
		b := dst[i*q4_1Bytes : (i+1)*q4_1Bytes]
		lo, hi := minMax(x)
		d := (hi - lo) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		putF16(b[2:], lo)
		for j := 0; j < qk/2; j++ {
			x0 := float32((x[j] - lo) * id)
			x1 := float32((x[j+qk/2] - lo) * id)
			xi0 := min(15, int8(x0+0.5))
			xi1 := min(15, int8(x1+0.5))
			b[4+j] = byte(xi0) | byte(xi1)<<4
		}
	}
}

// dotQ4_0 is ggml_vec_dot_q4_0_q8_0_generic.
func dotQ4_0(n int, w, a []byte) float32 {
	var sumf float32
	for i := 0; i < n/qk; i++ {
		x := w[i*q4_0Bytes : (i+1)*q4_0Bytes]
		y := a[i*q8_0Bytes : (i+1)*q8_0Bytes]
		var sumi0, sumi1 int32
		for j := 0; j < qk/2; j++ {
			q := x[2+j]
			sumi0 += (int32(q&0xf) - 8) * int32(int8(y[2+j]))
			sumi1 += (int32(q>>4) - 8) * int32(int8(y[2+qk/2+j]))
		}
		sumf += float32(float32(float32(sumi0+sumi1)*f16(x)) * f16(y))
	}
	return sumf
}

// dotQ4_1 is ggml_vec_dot_q4_1_q8_1_generic: the minimum enters through
// the activations' s = d·Σq.
func dotQ4_1(n int, w, a []byte) float32 {
	var sumf float32
	for i := 0; i < n/qk; i++ {
		x := w[i*q4_1Bytes : (i+1)*q4_1Bytes]
		y := a[i*q8_1Bytes : (i+1)*q8_1Bytes]
		var sumi0, sumi1 int32
		for j := 0; j < qk/2; j++ {
			q := x[4+j]
			sumi0 += int32(q&0xf) * int32(int8(y[4+j]))
			sumi1 += int32(q>>4) * int32(int8(y[4+qk/2+j]))
		}
		sumf += float32((f16(x)*f16(y))*float32(sumi0+sumi1)) + float32(f16(x[2:])*f16(y[2:]))
	}
	return sumf
}
