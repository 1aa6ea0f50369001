// Package sdtest holds the golden data of the native diffusion engine and
// rebuilds, byte for byte, the seeded checkpoints it was produced from.
//
// testdata/sd1-oracle and testdata/sd2-oracle are copies of the project's
// shared oracle directories (see their READMEs): stable-diffusion.cpp's
// images for each case of cases.json, and the tensor list of a checkpoint
// whose weights are a pure function of the tensor names and a seed. They are
// embedded so that tests in any package read them without relative paths;
// this package is imported by tests only.
package sdtest

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"path"
	"strconv"
	"strings"

	"github.com/neovratz/neovratz/internal/safetensors"
)

//go:embed testdata/sd1-oracle testdata/sd2-oracle
var files embed.FS

// The oracles in testdata.
const (
	SD1 = "sd1-oracle"
	SD2 = "sd2-oracle"
)

// Oracle is one oracle directory: its checkpoint recipe and cases.
type Oracle struct {
	// Name is the directory, SD1 or SD2.
	Name string
	// Family is "sd2" for SD 2.x; empty (SD 1.x) otherwise.
	Family string `json:"family"`
	// RecipeSeed is the seed of the weights.
	RecipeSeed uint64 `json:"recipe_seed"`
	// ModelChannels is the UNet's base width.
	ModelChannels int `json:"model_channels"`
	// CheckpointSHA256 and CheckpointBytes identify the rebuilt checkpoint.
	CheckpointSHA256 string `json:"checkpoint_sha256"`
	CheckpointBytes  int64  `json:"checkpoint_bytes"`
	// Cases are the generations stable-diffusion.cpp ran.
	Cases []Case `json:"cases"`
}

// Case is one generation and the image stable-diffusion.cpp produced.
type Case struct {
	Prompt    string  `json:"prompt"`
	Negative  string  `json:"negative"`
	Sampler   string  `json:"sampler"`
	Scheduler string  `json:"scheduler"`
	Steps     int     `json:"steps"`
	CFG       float64 `json:"cfg"`
	Seed      int64   `json:"seed"`
	RNG       string  `json:"rng"`
	W         int     `json:"w"`
	H         int     `json:"h"`
	// Prediction is "eps" or "v" (SD 2.x cases only).
	Prediction string `json:"prediction"`
	// PromptIDs and NegativeIDs are the 77 token ids the text encoder
	// receives, BOS and EOS and padding included.
	PromptIDs   []int  `json:"prompt_ids"`
	NegativeIDs []int  `json:"negative_ids"`
	Image       string `json:"image"`
	ImageSHA256 string `json:"image_sha256"`
}

// Load reads an oracle's cases.json.
func Load(name string) (*Oracle, error) {
	b, err := files.ReadFile(path.Join("testdata", name, "cases.json"))
	if err != nil {
		return nil, fmt.Errorf("sdtest: %w", err)
	}
	o := &Oracle{Name: name}
	if err := json.Unmarshal(b, o); err != nil {
		return nil, fmt.Errorf("sdtest: %s/cases.json: %w", name, err)
	}
	return o, nil
}

// Tensors returns the checkpoint's tensor list (tensors-mcN.txt), every
// tensor F16, in file order.
func (o *Oracle) Tensors() ([]safetensors.TensorInfo, error) {
	name := path.Join("testdata", o.Name, fmt.Sprintf("tensors-mc%d.txt", o.ModelChannels))
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("sdtest: %w", err)
	}
	return ParseTensorList(b)
}

// ParseTensorList parses lines of `name dim0 dim1 …` into F16 tensors.
func ParseTensorList(b []byte) ([]safetensors.TensorInfo, error) {
	var out []safetensors.TensorInfo
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		t := safetensors.TensorInfo{Name: f[0], DType: safetensors.F16, Shape: make([]int, len(f)-1)}
		for i, s := range f[1:] {
			d, err := strconv.Atoi(s)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("sdtest: tensor list line %d: bad dimension %q", n, s)
			}
			t.Shape[i] = d
		}
		out = append(out, t)
	}
	return out, sc.Err()
}

// Golden decodes a case's PNG.
func (o *Oracle) Golden(c Case) (image.Image, error) {
	b, err := files.ReadFile(path.Join("testdata", o.Name, c.Image))
	if err != nil {
		return nil, fmt.Errorf("sdtest: %w", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("sdtest: %s: %w", c.Image, err)
	}
	return img, nil
}

// GoldenSize is the width or height of the image stable-diffusion.cpp
// produced for a requested size: it aligns a request up to a multiple of
// the VAE's scale factor times the UNet's down factor, 8×8 = 64 for SD 1.x
// and 2.x (align_image_size), so the case asking for 96×64 holds a 128×64
// PNG. The engine should align the same way (and say so) to match.
func GoldenSize(n int) int { return (n + 63) / 64 * 64 }

// GoldenBytes returns a case's PNG file.
func (o *Oracle) GoldenBytes(c Case) ([]byte, error) {
	return files.ReadFile(path.Join("testdata", o.Name, c.Image))
}
