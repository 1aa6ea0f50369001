package kernels

import "encoding/binary"

// Q8_K (block_q8_K): the activation format of the k-quant dot products. A
// float32 d, 256 int8 quants, and 16 int16 sums of 16 quants each, which
// let Q4_K and Q5_K apply their minimums without touching the quants.

func dequantQ8K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q8KBytes : (i+1)*q8KBytes]
		d := f32(b)
		y := dst[i*qkK : (i+1)*qkK]
		for j := range y {
			y[j] = d * float32(int8(b[4+j]))
		}
	}
}

// quantQ8K is quantize_row_q8_K_ref, which is also what the CPU backend
// runs on x86: d = max/-127 where max is the element of largest magnitude,
// q = nearest(x/d) capped at 127. An all-zero block gets d = 0 and zero
// quants and sums (ggml leaves its sums untouched; they are multiplied by
// d = 0 either way).
func quantQ8K(src []float32, dst []byte) {
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*q8KBytes : (i+1)*q8KBytes]
		var mx, amax float32
		for _, v := range x {
			if ax := abs32(v); ax > amax {
				amax, mx = ax, v
			}
		}
		if amax == 0 {
			clear(b)
			continue
		}
		iscale := -127 / mx
		for j, v := range x {
			b[4+j] = byte(int8(min(127, nearestInt(iscale*v))))
		}
		for j := 0; j < qkK/16; j++ {
			var sum int16
			for _, q := range b[4+16*j : 4+16*j+16] {
				sum += int16(int8(q))
			}
			binary.LittleEndian.PutUint16(b[4+qkK+2*j:], uint16(sum))
		}
		putF32(b, 1/iscale)
	}
}
