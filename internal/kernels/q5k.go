package kernels

import "encoding/binary"

// Q5_K (block_q5_K): as Q4_K with a fifth bit per element. Halves d and
// dmin, 12 bytes of 6-bit scales and minimums, 32 bytes qh, 128 bytes of
// nibbles. Element l of sub-block j takes its low bits as in Q4_K and its
// fifth bit from bit j of qh[l].

func dequantQ5K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q5KBytes : (i+1)*q5KBytes]
		d, dmin := f16(b), f16(b[2:])
		qh := b[16:48]
		y := dst[i*qkK : (i+1)*qkK]
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, b[4:16])
			d1, m1 := d*float32(sc), dmin*float32(m)
			ql := b[48+32*(j/2) : 48+32*(j/2)+32]
			shift := 4 * uint(j%2)
			for l := 0; l < 32; l++ {
				q := ql[l]>>shift&0xf | (qh[l]>>uint(j)&1)<<4
				y[32*j+l] = float32(d1*float32(q)) - m1
			}
		}
	}
}

// quantQ5K is quantize_row_q5_K_ref.
func quantQ5K(src []float32, dst []byte) {
	var (
		L       [qkK]uint8
		laux    [32]uint8
		weights [32]float32
		scales  [8]float32
		mins    [8]float32
	)
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*q5KBytes : (i+1)*q5KBytes]
		for j := 0; j < 8; j++ {
			xs := x[32*j : 32*j+32]
			subBlockWeights(xs, weights[:])
			scales[j], mins[j] = makeQKX2Quants(31, xs, weights[:], L[32*j:32*j+32], laux[:], -0.5, 0.1, 15, false)
		}
		quantKScales(b, &scales, &mins)
		refitK(b, x, L[:], 31)
		qh, ql := b[16:48], b[48:]
		clear(qh)
		m1, m2 := uint8(1), uint8(2)
		for n := 0; n < qkK; n += 64 {
			for j := 0; j < 32; j++ {
				l1, l2 := L[n+j], L[n+j+32]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				ql[j] = l1 | l2<<4
			}
			m1 <<= 2
			m2 <<= 2
			ql = ql[32:]
		}
	}
}

// dotQ5K is ggml_vec_dot_q5_K_q8_K_generic (the structure of dotQ4K).
func dotQ5K(n int, w, a []byte) float32 {
	var sums [8]float32
	var sumf float32
	for i := 0; i < n/qkK; i++ {
		x := w[i*q5KBytes : (i+1)*q5KBytes]
		y := a[i*q8KBytes : (i+1)*q8KBytes]
		qh := x[16:48]
		var aux32 [8]int32
		var summ int32
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, x[4:16])
			bs := y[4+qkK+4*j:]
			summ += (int32(int16(binary.LittleEndian.Uint16(bs))) + int32(int16(binary.LittleEndian.Uint16(bs[2:])))) * int32(m)
			ql := x[48+32*(j/2) : 48+32*(j/2)+32]
			q8 := y[4+32*j : 4+32*j+32]
			shift := 4 * uint(j%2)
			scale := int32(sc)
			for l := 0; l < 32; l++ {
				q := ql[l]>>shift&0xf | (qh[l]>>uint(j)&1)<<4
				aux32[l&7] += scale * int32(q) * int32(int8(q8[l]))
			}
		}
		dy := f32(y)
		d := f16(x) * dy
		for l := range sums {
			sums[l] += float32(d * float32(aux32[l]))
		}
		dmin := f16(x[2:]) * dy
		sumf -= float32(dmin * float32(summ))
	}
	for _, s := range sums {
		sumf += s
	}
	return sumf
}
