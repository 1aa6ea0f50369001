package diffusion

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/engine/diffusion/clip"
	"github.com/neovratz/neovratz/internal/engine/diffusion/schedule"
	"github.com/neovratz/neovratz/internal/engine/diffusion/unet"
	"github.com/neovratz/neovratz/internal/engine/diffusion/vae"
	"github.com/neovratz/neovratz/internal/safetensors"
)

// Model is a loaded checkpoint: text encoder, UNet and VAE decoder, their
// weights in the checkpoint's mapping.
type Model struct {
	Kind     Kind
	file     *safetensors.File
	tok      *clip.Tokenizer
	text     *clip.Encoder
	unet     *unet.UNet
	vae      *vae.Decoder
	schedule *schedule.Model
}

// Open maps a single-file checkpoint and loads the model in it.
func Open(path string) (*Model, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := Load(f)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return m, nil
}

// Load loads the model from a parsed checkpoint; Close closes f.
func Load(f *safetensors.File) (*Model, error) {
	k, err := Detect(f)
	if err != nil {
		return nil, err
	}
	m := &Model{Kind: k, file: f, schedule: schedule.NewModel()}
	if m.tok, err = clip.Default(); err != nil {
		return nil, err
	}
	if m.text, err = clip.LoadEncoder(f); err != nil {
		return nil, err
	}
	cfg := unet.Config{Heads: 8}
	if k.Family == SD2 {
		cfg = unet.Config{HeadDim: 64}
	}
	if m.unet, err = unet.Load(f, cfg); err != nil {
		return nil, err
	}
	if m.unet.ContextDim() != m.text.Width {
		return nil, fmt.Errorf("diffusion: UNet context width %d does not match the text encoder's %d", m.unet.ContextDim(), m.text.Width)
	}
	if m.vae, err = vae.Load(f); err != nil {
		return nil, err
	}
	return m, nil
}

// Close releases the checkpoint's mapping.
func (m *Model) Close() error { return m.file.Close() }
