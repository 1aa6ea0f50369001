package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/worker/workertest"
)

func TestImageCommand(t *testing.T) {
	s := workertest.New(t, workertest.Options{Sim: sim.Config{ImageStepTime: time.Millisecond}})
	dir := t.TempDir()
	out := filepath.Join(dir, "fox.png")
	e := env{"NEOVRATZ_HOST": s.URL}
	code, stdout, stderr := runIn(ctxTest(t), e, nil, "image", workertest.ImageModel, "a", "red", "fox", "-o", out, "--size", "64x96", "--steps", "3", "--n", "2", "--seed", "7")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	want := "wrote " + out + " (64x96)\nwrote " + filepath.Join(dir, "fox-2.png") + " (64x96)\n"
	if stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	for _, name := range []string{out, filepath.Join(dir, "fox-2.png")} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if img, err := png.Decode(bytes.NewReader(b)); err != nil || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 96 {
			t.Errorf("%s is not a 64x96 PNG (%v)", name, err)
		}
	}
	// Not a terminal: the steps show as plain lines; each image's last step always shows.
	if !strings.Contains(stderr, "image 1/2: 100% step 3/3") || !strings.Contains(stderr, "image 2/2: 100% step 3/3") {
		t.Errorf("progress %q, want each image's last step", stderr)
	}

	code, _, stderr = runIn(ctxTest(t), e, nil, "image", "nope", "a fox", "-o", out)
	if code != exitError || !strings.Contains(stderr, `The model "nope" does not exist`) {
		t.Errorf("unknown model: exit %d %q", code, stderr)
	}
	code, _, stderr = runIn(ctxTest(t), e, nil, "image", workertest.ImageModel, "a fox", "--size", "65x64", "-o", out)
	if code != exitError || !strings.Contains(stderr, "size") || strings.Contains(stderr, "{") {
		t.Errorf("bad size: exit %d %q", code, stderr)
	}
	for _, args := range [][]string{{"image"}, {"image", "m"}, {"image", "m", "p", "--size", "big"}, {"image", "m", "p", "--seed", "x"}} {
		if code, _, _ := runIn(ctxTest(t), e, nil, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestOutputName(t *testing.T) {
	for _, tt := range []struct {
		out  string
		i    int
		want string
	}{{"a.png", 0, "a.png"}, {"a.png", 1, "a-2.png"}, {"dir/b.png", 2, "dir/b-3.png"}, {"noext", 1, "noext-2"}} {
		if got := outputName(tt.out, tt.i); got != tt.want {
			t.Errorf("outputName(%q, %d) = %q, want %q", tt.out, tt.i, got, tt.want)
		}
	}
}
