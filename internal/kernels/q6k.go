package kernels

// Q6_K (block_q6_K): super-blocks of 256 in 16 groups of 16, x = d·sc_g·(q-32)
// with 6-bit q. 128 bytes ql of low nibbles, 64 bytes qh of high bit pairs,
// 16 int8 scales, a half d (last). In each half h of 128 elements, byte l
// (0..31) of qh holds the high bits of elements l, l+32, l+64, l+96 (bits
// 0-1, 2-3, 4-5, 6-7); ql byte l holds elements l and l+64, byte l+32
// elements l+32 and l+96 (low nibble first).

// q6At returns element e (0..255) of a Q6_K block as 0..63.
func q6At(b []byte, e int) int32 {
	h, r := e/128, e%128
	quarter, l := r/32, r%32
	ql := b[64*h+l+32*(quarter&1)] >> (4 * uint(quarter>>1)) & 0xf
	qh := b[128+32*h+l] >> (2 * uint(quarter)) & 3
	return int32(ql | qh<<4)
}

func dequantQ6K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q6KBytes : (i+1)*q6KBytes]
		d := f16(b[208:])
		y := dst[i*qkK : (i+1)*qkK]
		for e := range y {
			sc := float32(int8(b[192+e/16]))
			y[e] = float32(d*sc) * float32(q6At(b, e)-32)
		}
	}
}

// quantQ6K is quantize_row_q6_K_ref.
func quantQ6K(src []float32, dst []byte) {
	var (
		L      [qkK]int8
		scales [16]float32
	)
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*q6KBytes : (i+1)*q6KBytes]
		var maxScale, maxAbsScale float32
		for ib := 0; ib < 16; ib++ {
			s := makeQXQuants(32, x[16*ib:16*ib+16], L[16*ib:16*ib+16])
			scales[ib] = s
			if as := abs32(s); as > maxAbsScale {
				maxAbsScale, maxScale = as, s
			}
		}
		if maxAbsScale < groupMaxEps {
			clear(b)
			continue
		}
		iscale := -128 / maxScale
		putF16(b[208:], 1/iscale)
		for ib := 0; ib < 16; ib++ {
			b[192+ib] = byte(int8(min(127, nearestInt(iscale*scales[ib]))))
		}
		for j := 0; j < 16; j++ {
			d := f16(b[208:]) * float32(int8(b[192+j]))
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := nearestInt(x[16*j+ii] / d)
				L[16*j+ii] = int8(max(-32, min(31, l)) + 32)
			}
		}
		ql, qh := b[0:128], b[128:192]
		for j := 0; j < qkK; j += 128 {
			for l := 0; l < 32; l++ {
				q1, q2, q3, q4 := uint8(L[j+l]), uint8(L[j+l+32]), uint8(L[j+l+64]), uint8(L[j+l+96])
				ql[l] = q1&0xf | (q3&0xf)<<4
				ql[l+32] = q2&0xf | (q4&0xf)<<4
				qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
			ql = ql[64:]
			qh = qh[32:]
		}
	}
}

// dotQ6K is ggml_vec_dot_q6_K_q8_K_generic: eight int32 lanes (element
// index mod 8) of scale·(q-32)·q8 per super-block, d·lane into eight float
// sums, added last.
func dotQ6K(n int, w, a []byte) float32 {
	var sums [8]float32
	for i := 0; i < n/qkK; i++ {
		x := w[i*q6KBytes : (i+1)*q6KBytes]
		y := a[i*q8KBytes : (i+1)*q8KBytes]
		var aux32 [8]int32
		for h := 0; h < 2; h++ {
			ql := x[64*h : 64*h+64]
			qh := x[128+32*h : 128+32*h+32]
			q8 := y[4+128*h : 4+128*h+128]
			sc := x[192+8*h : 192+8*h+8]
			for l := 0; l < 32; l++ {
				hb := qh[l]
				q1 := int32(ql[l]&0xf|(hb&3)<<4) - 32
				q2 := int32(ql[l+32]&0xf|(hb>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(hb>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(hb>>6&3)<<4) - 32
				// Element l+32k is in group 2k + l/16 of this half.
				g := l / 16
				aux32[l&7] += int32(int8(sc[g])) * q1 * int32(int8(q8[l]))
				aux32[l&7] += int32(int8(sc[g+2])) * q2 * int32(int8(q8[l+32]))
				aux32[l&7] += int32(int8(sc[g+4])) * q3 * int32(int8(q8[l+64]))
				aux32[l&7] += int32(int8(sc[g+6])) * q4 * int32(int8(q8[l+96]))
			}
		}
		d := f16(x[208:]) * f32(y)
		for l := range sums {
			sums[l] += float32(d * float32(aux32[l]))
		}
	}
	var sumf float32
	for _, s := range sums {
		sumf += s
	}
	return sumf
}
