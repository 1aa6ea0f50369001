package diffusion

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neovratz/neovratz/internal/engine/diffusion/sdtest"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/worker"
)

var _ worker.ImageEngine = (*Engine)(nil)

func TestEncodePNG(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	b, err := EncodePNG(img, "a red cat\nSteps: 4")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !bytes.Contains(b, []byte("tEXtparameters\x00a red cat\nSteps: 4")) {
		t.Error("no parameters chunk")
	}
}

func TestParametersText(t *testing.T) {
	got := ParametersText(Params{Prompt: "a cat", Negative: "blurry", Steps: 4, Sampler: "euler", CFGScale: 7.5, Seed: 42, Width: 96, Height: 64, RNG: "cuda"}, "m")
	want := "a cat\nNegative prompt: blurry\nSteps: 4, Sampler: euler, Schedule type: default, CFG scale: 7.5, Seed: 42, Size: 128x64, RNG: cuda, Model: m"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestEngineOracle serves the first SD 1.x oracle cases through the worker
// interface: defaults, a random seed reported, progress per step, and the
// image stable-diffusion.cpp made for the same settings.
func TestEngineOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("writes the 434 MB oracle checkpoint")
	}
	o, err := sdtest.Load(sdtest.SD1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sd1.safetensors")
	if err := o.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(m, EngineOptions{Name: "oracle", Threads: 2, Seed: func() int64 { return 41 }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := o.Cases[1] // a red cat, euler, 4 steps, cfg 1, seed 42, cuda
	var events []inference.ImageProgress
	res, err := e.GenerateImage(context.Background(), inference.ImageRequest{
		Prompt: c.Prompt, N: 2, Width: c.W, Height: c.H, Steps: c.Steps, CFGScale: c.CFG, Seed: -1, Sampler: c.Sampler,
	}, func(p inference.ImageProgress) error { events = append(events, p); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || res.Images[0].Seed != 41 || res.Images[1].Seed != 42 {
		t.Fatalf("images/seeds: %d, %+v", len(res.Images), res.Images)
	}
	if len(events) != 2*c.Steps || events[len(events)-1] != (inference.ImageProgress{Index: 1, Step: c.Steps, Steps: c.Steps}) {
		t.Errorf("progress events %v", events)
	}
	img, err := png.Decode(bytes.NewReader(res.Images[1].PNG))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := o.Golden(c)
	if mad, over := compare(img, want); mad > 1 || over > 0.01 {
		t.Errorf("seed 42: MAD %.3f, %.2f%% over 4 levels", mad, 100*over)
	}
	if !strings.Contains(string(res.Images[1].PNG), "Seed: 42, Size: 64x64, RNG: cuda, Model: oracle") {
		t.Error("PNG parameters missing the settings")
	}
	// An error from progress stops the engine.
	stop := errors.New("stop")
	_, err = e.GenerateImage(context.Background(), inference.ImageRequest{Prompt: "a", Width: 64, Height: 64, Steps: 3, Seed: 1},
		func(inference.ImageProgress) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("progress error: %v", err)
	}
	// A canceled context stops it too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.GenerateImage(ctx, inference.ImageRequest{Prompt: "a", Width: 64, Height: 64, Steps: 2, Seed: 1}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	if _, err := e.GenerateImage(context.Background(), inference.ImageRequest{Prompt: "a", Sampler: "plms"}, nil); err == nil {
		t.Error("unknown sampler accepted")
	}
}
