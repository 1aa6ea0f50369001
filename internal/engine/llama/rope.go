package llama

import "math"

// rope rotates the first Rot dimensions of each head in x (heads of headDim floats) for
// position pos, the way ggml's rope_f32 does: angles from ggml_rope_cache_init (the base
// angle multiplied down dimension pair by pair in float32, divided by llama 3's frequency
// factors, mixed by YaRN), pairs chosen by the architecture's mode. cs is scratch of Rot
// floats holding cos and sin per pair.
func (p *Params) rope(x []float32, heads, headDim, pos int, freqs, cs []float32) {
	n := p.Rot
	thetaScale := float32(math.Pow(float64(p.RopeBase), -2/float64(n)))
	var corr [2]float32
	if p.RopeExtFactor != 0 {
		corr = yarnCorrDims(n, p.RopeOrigCtx, p.RopeBase, 32, 1)
	}
	theta := float32(pos)
	for i0 := 0; i0 < n; i0 += 2 {
		ff := float32(1)
		if freqs != nil {
			ff = freqs[i0/2]
		}
		c, s := ropeYarn(theta/ff, p.RopeFreqScale, corr, i0, p.RopeExtFactor, p.RopeAttnScale)
		cs[i0], cs[i0+1] = c, s
		theta *= thetaScale
	}
	for h := range heads {
		v := x[h*headDim : (h+1)*headDim]
		for i0 := 0; i0 < n; i0 += 2 {
			c, s := cs[i0], cs[i0+1]
			a, b := i0, i0+1
			if p.ropeMode == ropeNeox {
				a, b = i0/2, i0/2+n/2
			}
			x0, x1 := v[a], v[b]
			v[a] = x0*c - x1*s
			v[b] = x0*s + x1*c
		}
	}
}

// ropeYarn is ggml's rope_yarn: the angle interpolated by freqScale and, with YaRN, blended
// with the extrapolated one along a ramp over the dimensions, plus YaRN's magnitude scaling.
func ropeYarn(thetaExtrap, freqScale float32, corr [2]float32, i0 int, extFactor, mscale float32) (cos, sin float32) {
	thetaInterp := freqScale * thetaExtrap
	theta := thetaInterp
	if extFactor != 0 {
		rampMix := yarnRamp(corr[0], corr[1], i0) * extFactor
		theta = thetaInterp*(1-rampMix) + thetaExtrap*rampMix
		mscale *= 1 + 0.1*float32(math.Log(float64(1/freqScale)))
	}
	return float32(math.Cos(float64(theta))) * mscale, float32(math.Sin(float64(theta))) * mscale
}

func yarnRamp(low, high float32, i0 int) float32 {
	y := (float32(i0/2) - low) / max(0.001, high-low)
	return 1 - min(1, max(0, y))
}

func yarnCorrDim(nDims, nCtxOrig int, nRot, base float32) float32 {
	return float32(nDims) * float32(math.Log(float64(nCtxOrig)/(float64(nRot)*2*math.Pi))) / (2 * float32(math.Log(float64(base))))
}

func yarnCorrDims(nDims, nCtxOrig int, base, betaFast, betaSlow float32) [2]float32 {
	start := float32(math.Floor(float64(yarnCorrDim(nDims, nCtxOrig, betaFast, base))))
	end := float32(math.Ceil(float64(yarnCorrDim(nDims, nCtxOrig, betaSlow, base))))
	return [2]float32{max(0, start), min(float32(nDims-1), end)}
}
