package kernels

import "encoding/binary"

// Q5_0 (block_q5_0): d, 32 high bits, 32 low nibbles; x = d·(q-16).
// Q5_1 (block_q5_1): d, m, high bits, low nibbles; x = d·q + m.
// Bit j of the little-endian qh word is the fifth bit of element j.

func dequantQ5_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*q5_0Bytes : (i+1)*q5_0Bytes]
		d := f16(b)
		qh := binary.LittleEndian.Uint32(b[2:])
		y := dst[i*qk : (i+1)*qk]
		for j := 0; j < qk/2; j++ {
			q := b[6+j]
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			y[j] = float32(int(q&0xf|h0)-16) * d
			y[j+qk/2] = float32(int(q>>4|h1)-16) * d
		}
	}
}

// quantQ5_0 is quantize_row_q5_0_ref: d = max/-16.
func quantQ5_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk; i++ {
		x := src[i*qk : (i+1)*qk]
		b := dst[i*q5_0Bytes : (i+1)*q5_0Bytes]
		max, _ := signedAbsMax(x)
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		var qh uint32
		for j := 0; j < qk/2; j++ {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+qk/2] * id)
			xi0 := byte(min(31, int8(x0+16.5)))
			xi1 := byte(min(31, int8(x1+16.5)))
			b[6+j] = xi0&0xf | (xi1&0xf)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + qk/2)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

func dequantQ5_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qk; i++ {
		b := src[i*q5_1Bytes : (i+1)*q5_1Bytes]
		d, m := f16(b), f16(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:])
		y := dst[i*qk : (i+1)*qk]
		for j := 0; j < qk/2; j++ {
			q := b[8+j]
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			y[j] = float32(float32(q&0xf|h0)*d) + m
			y[j+qk/2] = float32(float32(q>>4|h1)*d) + m
		}
	}
}

// quantQ5_1 is quantize_row_q5_1_ref: d = (max-min)/31, m = min.
func quantQ5_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/qk; i++ {
		x := src[i*qk : (i+1)*qk]
		b := dst[i*q5_1Bytes : (i+1)*q5_1Bytes]
		lo, hi := minMax(x)
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		putF16(b[2:], lo)
		var qh uint32
		for j := 0; j < qk/2; j++ {
			x0 := float32((x[j] - lo) * id)
			x1 := float32((x[j+qk/2] - lo) * id)
			xi0 := uint8(x0 + 0.5)
			xi1 := uint8(x1 + 0.5)
			b[8+j] = xi0&0xf | (xi1&0xf)<<4
			qh |= uint32(xi0&0x10) >> 4 << j
			qh |= uint32(xi1&0x10) >> 4 << (j + qk/2)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

// dotQ5_0 is ggml_vec_dot_q5_0_q8_0_generic.
func dotQ5_0(n int, w, a []byte) float32 {
	var sumf float32
	for i := 0; i < n/qk; i++ {
		x := w[i*q5_0Bytes : (i+1)*q5_0Bytes]
		y := a[i*q8_0Bytes : (i+1)*q8_0Bytes]
		qh := binary.LittleEndian.Uint32(x[2:])
		var sumi0, sumi1 int32
		for j := 0; j < qk/2; j++ {
			q := x[6+j]
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			sumi0 += (int32(q&0xf|h0) - 16) * int32(int8(y[2+j]))
			sumi1 += (int32(q>>4|h1) - 16) * int32(int8(y[2+qk/2+j]))
		}
		sumf += float32((f16(x) * f16(y)) * float32(sumi0+sumi1))
	}
	return sumf
}

// dotQ5_1 is ggml_vec_dot_q5_1_q8_1_generic.
func dotQ5_1(n int, w, a []byte) float32 {
	var sumf float32
	for i := 0; i < n/qk; i++ {
		x := w[i*q5_1Bytes : (i+1)*q5_1Bytes]
		y := a[i*q8_1Bytes : (i+1)*q8_1Bytes]
		qh := binary.LittleEndian.Uint32(x[4:])
		var sumi0, sumi1 int32
		for j := 0; j < qk/2; j++ {
			q := x[8+j]
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			sumi0 += int32(q&0xf|h0) * int32(int8(y[4+j]))
			sumi1 += int32(q>>4|h1) * int32(int8(y[4+qk/2+j]))
		}
		sumf += float32((f16(x)*f16(y))*float32(sumi0+sumi1)) + float32(f16(x[2:])*f16(y[2:]))
	}
	return sumf
}
