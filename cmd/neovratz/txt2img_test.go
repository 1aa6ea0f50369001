package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neovratz/neovratz/internal/engine/diffusion"
	"github.com/neovratz/neovratz/internal/engine/diffusion/sdtest"
	"github.com/neovratz/neovratz/internal/inference"
)

// writeSD1 writes the SD 1.x oracle checkpoint (434 MB, a few seconds: the smallest SD
// checkpoint sdtest builds, a full text encoder and VAE with a narrow UNet) to path.
func writeSD1(t *testing.T, path string) {
	t.Helper()
	o, err := sdtest.Load(sdtest.SD1)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.WriteFile(path); err != nil {
		t.Fatal(err)
	}
}

// pngText returns the "parameters" text chunk of a PNG.
func pngText(t *testing.T, b []byte) string {
	t.Helper()
	i := bytes.Index(b, []byte("tEXtparameters\x00"))
	if i < 4 {
		t.Fatal("no parameters text chunk")
	}
	// The chunk's length is the 4 bytes before its type; its data ends there.
	n := int(binary.BigEndian.Uint32(b[i-4:]))
	if i+4+n > len(b) {
		t.Fatal("parameters text chunk runs past the end")
	}
	return string(b[i+4+len("parameters\x00") : i+4+n])
}

func TestTxt2imgUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"--prompt", "a cat"}, "--model is required"},
		{"no prompt", []string{"--model", "m.safetensors"}, "--prompt is required"},
		{"small width", []string{"--model", "m", "--prompt", "p", "--width", "8"}, "--width must be from 64 to 2048"},
		{"big height", []string{"--model", "m", "--prompt", "p", "--height", "4096"}, "--height must be from 64 to 2048"},
		{"no steps", []string{"--model", "m", "--prompt", "p", "--steps", "0"}, "--steps must be from 1 to 1000"},
		{"negative width", []string{"--model", "m", "--prompt", "p", "--width", "-1"}, `invalid value "-1" for --width`},
		{"cfg", []string{"--model", "m", "--prompt", "p", "--cfg-scale", "x"}, `invalid value "x" for --cfg-scale`},
		{"sampler", []string{"--model", "m", "--prompt", "p", "--sampler", "ddpm"}, `invalid value "ddpm" for --sampler`},
		{"scheduler", []string{"--model", "m", "--prompt", "p", "--scheduler", "exp"}, `invalid value "exp" for --scheduler`},
		{"seed", []string{"--model", "m", "--prompt", "p", "--seed", "-2"}, `invalid value "-2" for --seed`},
		{"rng", []string{"--model", "m", "--prompt", "p", "--rng", "gpu"}, `invalid value "gpu" for --rng`},
		{"prediction", []string{"--model", "m", "--prompt", "p", "--prediction", "x0"}, `invalid value "x0" for --prediction`},
		{"clip skip", []string{"--model", "m", "--prompt", "p", "--clip-skip", "-1"}, `invalid value "-1" for --clip-skip`},
		{"threads", []string{"--model", "m", "--prompt", "p", "--threads", "two"}, `invalid value "two" for --threads`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, env{}, append([]string{"txt2img"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d naming %s", code, stderr, exitUsage, tc.want)
			}
		})
	}
	code, _, stderr := run(t, env{}, "txt2img", "--model", filepath.Join(t.TempDir(), "none.safetensors"), "--prompt", "p", "-o", filepath.Join(t.TempDir(), "x.png"))
	if code != exitError || !strings.Contains(stderr, "none.safetensors") {
		t.Errorf("missing checkpoint: exit %d, stderr %q; want 1 naming the file", code, stderr)
	}
}

// TestTxt2img runs the command on the SD 1.x oracle checkpoint at 64×64 for 2 steps: the PNG
// has the size and the parameters, each step is reported, and the same seed gives the same bytes.
func TestTxt2img(t *testing.T) {
	if testing.Short() {
		t.Skip("writes the 434 MB SD 1.x oracle checkpoint")
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "sd1.safetensors")
	writeSD1(t, model)
	gen := func(out, seed, cfg string) (string, []byte) {
		t.Helper()
		code, stdout, stderr := run(t, env{}, "txt2img", "--model", model, "--prompt", "a red cat", "--negative", "blurry",
			"--width", "64", "--height", "64", "--steps", "2", "--cfg-scale", cfg, "--sampler", "euler", "--seed", seed,
			"--threads", "2", "-o", out)
		if code != exitOK {
			t.Fatalf("exit %d, stderr %s", code, stderr)
		}
		for _, want := range []string{"step 1/2", "step 2/2"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q: %s", want, stderr)
			}
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return stdout, b
	}
	stdout, first := gen(filepath.Join(dir, "a.png"), "42", "2")
	if !strings.Contains(stdout, "seed 42") {
		t.Errorf("stdout %q does not report the seed", stdout)
	}
	img, err := png.Decode(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	if size := img.Bounds().Size(); size.X != 64 || size.Y != 64 {
		t.Errorf("size %v, want 64x64", size)
	}
	want := "a red cat\nNegative prompt: blurry\nSteps: 2, Sampler: euler, Schedule type: discrete, CFG scale: 2, Seed: 42, Size: 64x64, RNG: cuda, Model: sd1"
	if got := pngText(t, first); got != want {
		t.Errorf("parameters\n%s\nwant\n%s", got, want)
	}
	if _, again := gen(filepath.Join(dir, "b.png"), "42", "2"); !bytes.Equal(again, first) {
		t.Error("the same seed gave different bytes")
	}
	// A random seed is reported, and reproduces its image (without guidance, which halves the work).
	stdout, random := gen(filepath.Join(dir, "c.png"), "-1", "1")
	_, seedText, ok := strings.Cut(stdout, "seed ")
	seed, _, _ := strings.Cut(seedText, ",")
	if !ok || seed == "" {
		t.Fatalf("stdout %q does not report the seed", stdout)
	}
	if _, again := gen(filepath.Join(dir, "d.png"), seed, "1"); !bytes.Equal(again, random) {
		t.Errorf("seed %s, reported for a random seed, gave different bytes", seed)
	}
}

func TestDiffusionEngineConfig(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no model", "{name: a, kind: image, slots: 1, engine: diffusion}", "models[0] (a): diffusion.model: is required"},
		{"threads", "{name: a, kind: image, slots: 1, engine: diffusion, diffusion: {model: m, threads: -1}}", "diffusion.threads: must not be negative"},
		{"rng", "{name: a, kind: image, slots: 1, engine: diffusion, diffusion: {model: m, rng: gpu}}", `diffusion.rng: must be cuda or cpu (got "gpu")`},
		{"prediction", "{name: a, kind: image, slots: 1, engine: diffusion, diffusion: {model: m, prediction: x0}}", `diffusion.prediction: must be auto, eps, v (got "x0")`},
		{"clip skip", "{name: a, kind: image, slots: 1, engine: diffusion, diffusion: {model: m, clip-skip: -2}}", "diffusion.clip-skip: must not be negative"},
		{"scheduler", "{name: a, kind: image, slots: 1, engine: diffusion, diffusion: {model: m, scheduler: exp}}", `diffusion.scheduler: must be discrete, karras, simple, lcm (got "exp")`},
		{"kind", "{name: a, kind: text, slots: 1, engine: diffusion, diffusion: {model: m}}", "engine: diffusion serves image models"},
		{"unknown key", "{name: a, kind: image, slots: 1, engine: diffusion, diffusion: {model: m, cfg: 7}}", "unknown key cfg"},
		{"other section", "{name: a, kind: image, slots: 1, engine: diffusion, diffusion: {model: m}, llama: {model: m}}", `llama: is set but the engine is "diffusion"`},
		{"valid", "{name: a, kind: image, slots: 1, engine: diffusion, diffusion: {model: m, threads: 2, rng: cpu, prediction: v, clip-skip: 2, scheduler: karras}}", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseModels([]byte("models: [" + tc.yaml + "]"))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("parse: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("parse: %v, want an error containing %q", err, tc.want)
			}
		})
	}

	// Building: a models directory name that is not an SD checkpoint names the key and why.
	modelsDir := filepath.Join(t.TempDir(), "models")
	writeModelsDir(t, modelsDir)
	for _, tc := range []struct{ model, want string }{
		{"sd-tiny", "model a: diffusion.model: not a model the native engine loads: sd-tiny: unsupported model: no SD UNet"},
		{"tiny-qwen2", "model a: diffusion.model: not a model the native engine loads: tiny-qwen2 is for engine llama, not diffusion"},
		{"/nonexistent/m.safetensors", "model a: diffusion.model: stat /nonexistent/m.safetensors"},
	} {
		models, err := parseModels([]byte("models: [{name: a, kind: image, slots: 1, engine: diffusion, diffusion: {model: " + tc.model + "}}]"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = buildEngines(models, engineEnv{modelsDir: modelsDir, logger: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: build: %v, want an error containing %q", tc.model, err, tc.want)
		}
	}
}

// TestServeDiffusion runs `neovratz serve` with no models section on a models directory holding
// an SD 1.x checkpoint: /v1/images/generations, through the official OpenAI Go client, returns
// the PNG the engine makes directly for the same settings, and an image job reports every step
// on its event stream.
func TestServeDiffusion(t *testing.T) {
	if testing.Short() {
		t.Skip("writes the 434 MB SD 1.x oracle checkpoint and starts a whole neovratz on it")
	}
	dir := t.TempDir()
	modelsDir := filepath.Join(dir, "models")
	if err := os.MkdirAll(modelsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeSD1(t, filepath.Join(modelsDir, "sd1.safetensors"))
	srv := start(t, env{}, "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--models-dir", modelsDir, "--auth=false")
	base := "http://" + srv.addr
	if logs := srv.logs.String(); !strings.Contains(logs, `"msg":"model loaded","model":"sd1","engine":"diffusion"`) {
		t.Fatalf("logs lack the diffusion model's load:\n%s", logs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("unused-with-auth-off"), option.WithMaxRetries(0))
	waitModel(ctx, t, c, "sd1")

	const prompt = "a red cat"
	resp, err := c.Images.Generate(ctx, openai.ImageGenerateParams{Model: "sd1", Prompt: prompt, N: openai.Int(1),
		ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON},
		option.WithJSONSet("size", "64x64"), option.WithJSONSet("seed", 42), option.WithJSONSet("steps", 2),
		option.WithJSONSet("cfg_scale", 1), option.WithJSONSet("sampler", "euler"))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 1 {
		t.Fatalf("%d images, want 1", len(resp.Data))
	}
	got, err := base64.StdEncoding.DecodeString(resp.Data[0].B64JSON)
	if err != nil {
		t.Fatal(err)
	}
	want := directImage(t, filepath.Join(modelsDir, "sd1.safetensors"), "sd1", inference.ImageRequest{Prompt: prompt, N: 1,
		Width: 64, Height: 64, Steps: 2, CFGScale: 1, Seed: 42, Sampler: "euler"})
	if !bytes.Equal(got, want) {
		t.Errorf("the API's PNG (%d bytes) differs from the engine's (%d bytes); parameters %q, want %q",
			len(got), len(want), pngText(t, got), pngText(t, want))
	}

	// An image job: its events carry a progress event for each step.
	body := `{"kind":"image","model":"sd1","input":{"model":"sd1","prompt":"a red cat","size":"64x64","n":1,"seed":7,"steps":2,"cfg_scale":1,"sampler":"euler","response_format":"b64_json"}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/jobs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode/100 != 2 || json.Unmarshal(b, &created) != nil || created.ID == "" {
		t.Fatalf("POST /v1/jobs: %d %s", res.StatusCode, b)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/jobs/"+created.ID+"/events", nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var steps []inference.ImageProgress
	status := ""
	typ := ""
	for sc := bufio.NewScanner(res.Body); sc.Scan(); {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			typ = v
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		switch typ {
		case "progress":
			var p inference.ImageProgress
			if err := json.Unmarshal([]byte(data), &p); err != nil {
				t.Fatalf("progress event %q: %v", data, err)
			}
			steps = append(steps, p)
		case "job":
			var j struct{ Status string }
			_ = json.Unmarshal([]byte(data), &j)
			status = j.Status
		}
	}
	if status != "succeeded" {
		t.Errorf("job ended %q, want succeeded", status)
	}
	// The first event goes out at once and the last is always written, so with 2 steps both show.
	wantSteps := []inference.ImageProgress{{Index: 0, Step: 1, Steps: 2}, {Index: 0, Step: 2, Steps: 2}}
	if len(steps) != len(wantSteps) || steps[0] != wantSteps[0] || steps[1] != wantSteps[1] {
		t.Errorf("progress events %+v, want %+v", steps, wantSteps)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exit %d, want 0; stderr %s", code, srv.stderr)
	}
}

// waitModel waits until the API lists model: the worker registers its models just after serve
// listens.
func waitModel(ctx context.Context, t *testing.T, c openai.Client, model string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		page, err := c.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Data {
			if m.ID == model {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/v1/models does not list %s", model)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// directImage is the diffusion engine's PNG for req, asked directly, configured as serve
// configures it.
func directImage(t *testing.T, path, name string, req inference.ImageRequest) []byte {
	t.Helper()
	m, err := diffusion.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := diffusion.NewEngine(m, diffusion.EngineOptions{Name: name, Threads: runtime.NumCPU()})
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	defer e.Close()
	res, err := e.GenerateImage(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Images[0].PNG
}
