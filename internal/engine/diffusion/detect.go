// Package diffusion is the native Stable Diffusion engine: it reads
// single-file checkpoints in the original (ldm) tensor naming and runs the
// text encoder (package clip), the UNet and the VAE decoder on the kernels
// package, with the samplers (package sample), schedules (package schedule)
// and noise generators (package rng) of stable-diffusion.cpp, whose images
// it is checked against (package sdtest).
package diffusion

import (
	"errors"
	"fmt"
	"strings"

	"github.com/neovratz/neovratz/internal/safetensors"
)

// Family is a checkpoint's model family.
type Family string

// The families the engine runs.
const (
	SD1 Family = "sd1"
	SD2 Family = "sd2"
)

// Kind is what Detect learns from a checkpoint's tensors.
type Kind struct {
	Family Family
	// ModelChannels is the UNet's base width (320 for real SD 1.x/2.x).
	ModelChannels int
	// ContextDim is the cross-attention context width: 768 (SD 1.x) or
	// 1024 (SD 2.x).
	ContextDim int
	// LinearProj is set when the transformer projections are linear
	// layers (SD 2.x) rather than 1×1 convolutions.
	LinearProj bool
}

// ErrUnsupportedModel is wrapped by Detect for a checkpoint of a family the
// engine does not run.
var ErrUnsupportedModel = errors.New("unsupported model")

const (
	unetPrefix = "model.diffusion_model."
	inConv     = unetPrefix + "input_blocks.0.0.weight"
	attn2K     = unetPrefix + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
	projIn     = unetPrefix + "input_blocks.1.1.proj_in.weight"
)

// Detect tells the model family from the tensors' names and shapes, as
// stable-diffusion.cpp does: the UNet's first convolution gives the base
// width, the cross-attention key projection the context width.
func Detect(f *safetensors.File) (Kind, error) {
	has := func(prefix string) bool {
		for _, t := range f.Tensors() {
			if strings.HasPrefix(t.Name, prefix) {
				return true
			}
		}
		return false
	}
	switch {
	case has("conditioner.embedders."):
		return Kind{}, fmt.Errorf("%w: SDXL checkpoints are not supported (SD 1.x and 2.x are)", ErrUnsupportedModel)
	case has(unetPrefix + "double_blocks."):
		return Kind{}, fmt.Errorf("%w: Flux checkpoints are not supported (SD 1.x and 2.x are)", ErrUnsupportedModel)
	case has(unetPrefix + "joint_blocks."):
		return Kind{}, fmt.Errorf("%w: SD3 checkpoints are not supported (SD 1.x and 2.x are)", ErrUnsupportedModel)
	}
	in, ok := f.Tensor(inConv)
	if !ok || len(in.Shape) != 4 || in.Shape[1] != 4 {
		return Kind{}, fmt.Errorf("%w: no SD UNet (%s missing or not [C, 4, 3, 3])", ErrUnsupportedModel, inConv)
	}
	k := Kind{ModelChannels: in.Shape[0]}
	if t, ok := f.Tensor(attn2K); ok && len(t.Shape) == 2 {
		k.ContextDim = t.Shape[1]
	}
	if t, ok := f.Tensor(projIn); ok {
		k.LinearProj = len(t.Shape) == 2
	}
	switch {
	case k.ContextDim == 768 && has("cond_stage_model.transformer.text_model."):
		k.Family = SD1
	case k.ContextDim == 1024 && has("cond_stage_model.model."):
		k.Family = SD2
	default:
		return Kind{}, fmt.Errorf("%w: context width %d with this text encoder is neither SD 1.x (768, CLIP ViT-L) nor SD 2.x (1024, OpenCLIP ViT-H)", ErrUnsupportedModel, k.ContextDim)
	}
	if k.ModelChannels <= 0 || k.ModelChannels%32 != 0 {
		return Kind{}, fmt.Errorf("%w: UNet base width %d is not a multiple of 32 (GroupNorm's groups)", ErrUnsupportedModel, k.ModelChannels)
	}
	return k, nil
}
