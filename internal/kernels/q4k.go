package kernels

import (
	"encoding/binary"
	"math"
)

// Q4_K (block_q4_K): super-blocks of 256 in 8 sub-blocks of 32. Halves d
// and dmin; 12 bytes packing a 6-bit scale and 6-bit minimum per sub-block
// (scaleMinK4); 128 bytes of nibbles. Sub-block j has x = d·sc_j·q - dmin·m_j.
// Byte l of the j-th 32-byte chunk holds element 64j+l (low nibble) and
// element 64j+32+l (high nibble).

func dequantQ4K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkK; i++ {
		b := src[i*q4KBytes : (i+1)*q4KBytes]
		d, dmin := f16(b), f16(b[2:])
		y := dst[i*qkK : (i+1)*qkK]
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, b[4:16])
			d1, m1 := d*float32(sc), dmin*float32(m)
			q := b[16+32*(j/2) : 16+32*(j/2)+32]
			shift := 4 * uint(j%2)
			for l := 0; l < 32; l++ {
				y[32*j+l] = float32(d1*float32(q[l]>>shift&0xf)) - m1
			}
		}
	}
}

// subBlockWeights fills weights with ggml's k-quant importance of each of
// the 32 elements of x when there is no importance matrix: the rms of x plus
// the element's magnitude.
func subBlockWeights(x, weights []float32) {
	var sumX2 float32
	for _, v := range x {
		sumX2 += float32(v * v)
	}
	avX := float32(math.Sqrt(float64(sumX2 / 32)))
	for l, v := range x {
		weights[l] = avX + abs32(v)
	}
}

// quantKScales quantizes the 8 sub-block scales and minimums of a Q4_K or
// Q5_K super-block to 6 bits against their maxima, stores them and the two
// halves d and dmin in b (d at 0, dmin at 2, the 12 packed bytes at 4), and
// returns nothing: the quants are refitted to the stored values after.
func quantKScales(b []byte, scales, mins *[8]float32) {
	var maxScale, maxMin float32
	for j := range scales {
		maxScale = max(maxScale, scales[j])
		maxMin = max(maxMin, mins[j])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	for j := range scales {
		// ggml stores nearest_int's int in a uint8_t before the MIN.
		ls := min(63, uint8(nearestInt(invScale*scales[j])))
		lm := min(63, uint8(nearestInt(invMin*mins[j])))
		putScaleMinK4(j, b[4:16], ls, lm)
	}
	putF16(b, maxScale/63)
	putF16(b[2:], maxMin/63)
}

// refitK requantizes x to levels 0..nmax against the stored 6-bit scales
// and minimums, as the k-quant reference quantizers finish. A sub-block
// whose stored scale is zero keeps the levels its fit gave.
func refitK(b []byte, x []float32, L []uint8, nmax int) {
	d, dmin := f16(b), f16(b[2:])
	for j := 0; j < 8; j++ {
		sc, m := scaleMinK4(j, b[4:16])
		dj := d * float32(sc)
		if dj == 0 {
			continue
		}
		dm := dmin * float32(m)
		for ii := 0; ii < 32; ii++ {
			l := nearestInt((x[32*j+ii] + dm) / dj)
			L[32*j+ii] = uint8(max(0, min(nmax, l)))
		}
	}
}

// quantQ4K is quantize_row_q4_K_ref.
func quantQ4K(src []float32, dst []byte) {
	var (
		L       [qkK]uint8
		laux    [32]uint8
		weights [32]float32
		scales  [8]float32
		mins    [8]float32
	)
	for i := 0; i < len(src)/qkK; i++ {
		x := src[i*qkK : (i+1)*qkK]
		b := dst[i*q4KBytes : (i+1)*q4KBytes]
		for j := 0; j < 8; j++ {
			xs := x[32*j : 32*j+32]
			subBlockWeights(xs, weights[:])
			scales[j], mins[j] = makeQKX2Quants(15, xs, weights[:], L[32*j:32*j+32], laux[:], -1, 0.1, 20, false)
		}
		quantKScales(b, &scales, &mins)
		refitK(b, x, L[:], 15)
		q := b[16:]
		for j := 0; j < qkK; j += 64 {
			for l := 0; l < 32; l++ {
				q[l] = L[j+l] | L[j+l+32]<<4
			}
			q = q[32:]
		}
	}
}

// dotQ4K is ggml_vec_dot_q4_K_q8_K_generic: per super-block, eight int32
// lanes (element index mod 8) of scale·q4·q8, then d·lane added to eight
// float sums, the minimums subtracted through the Q8_K block sums, and the
// eight float sums added last.
func dotQ4K(n int, w, a []byte) float32 {
	var sums [8]float32
	var sumf float32
	for i := 0; i < n/qkK; i++ {
		x := w[i*q4KBytes : (i+1)*q4KBytes]
		y := a[i*q8KBytes : (i+1)*q8KBytes]
		var aux32 [8]int32
		var summ int32
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, x[4:16])
			bs := y[4+qkK+4*j:]
			summ += (int32(int16(binary.LittleEndian.Uint16(bs))) + int32(int16(binary.LittleEndian.Uint16(bs[2:])))) * int32(m)
			q4 := x[16+32*(j/2) : 16+32*(j/2)+32]
			q8 := y[4+32*j : 4+32*j+32]
			shift := 4 * uint(j%2)
			scale := int32(sc)
			for l := 0; l < 32; l++ {
				aux32[l&7] += scale * int32(q4[l]>>shift&0xf) * int32(int8(q8[l]))
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
