package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/engine/llama/llamatest"
	"github.com/neovratz/neovratz/internal/gguf"
)

// runIn runs the program in-process with stdin as its input.
func runIn(ctx context.Context, e env, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	m := &Main{Stdin: stdin, Stdout: &out, Stderr: &errb, Getenv: e.get}
	code = m.Run(ctx, args)
	return code, out.String(), errb.String()
}

func ctxTest(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// miniHub stands in for huggingface.co, which the test machines cannot reach: a real HTTP
// server with the two hub endpoints pull uses — the model-info listing with LFS sha256s, and the
// resolve URLs, served with Range support. (internal/pull's tests cover the hub's redirects,
// interrupted downloads and checksum failures; this one checks the command around it.)
type miniHub struct {
	srv   *httptest.Server
	repo  string
	files map[string][]byte
	mu    sync.Mutex
	auth  []string
}

func newMiniHub(t *testing.T, repo string, files map[string][]byte) *miniHub {
	h := &miniHub{repo: repo, files: files}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.auth = append(h.auth, r.Header.Get("Authorization"))
		h.mu.Unlock()
		if r.URL.Path == "/api/models/"+repo+"/revision/main" {
			var sib []map[string]any
			for name, b := range files {
				sum := sha256.Sum256(b)
				sib = append(sib, map[string]any{"rfilename": name, "size": len(b),
					"lfs": map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(b)}})
			}
			json.NewEncoder(w).Encode(map[string]any{"siblings": sib})
			return
		}
		if name, ok := strings.CutPrefix(r.URL.Path, "/"+repo+"/resolve/main/"); ok && files[name] != nil {
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(files[name]))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// tinyModel returns the bytes of a small but real qwen3 model the native engine runs.
func tinyModel(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := llamatest.Write(path, llamatest.Small("qwen3", gguf.TypeF32)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestModelLifecycle pulls a model from a hub by quantization, lists it, chats with it on the
// native engine in-process, and removes it: the path a person takes on a machine without a GPU.
func TestModelLifecycle(t *testing.T) {
	model := tinyModel(t)
	hub := newMiniHub(t, "acme/tiny-GGUF", map[string][]byte{
		"tiny-qwen3-F32.gguf":  model,
		"tiny-qwen3-Q8_0.gguf": []byte("not fetched"),
		"README.md":            []byte("# tiny"),
	})
	dir := t.TempDir()
	e := env{"HF_ENDPOINT": hub.srv.URL, "HF_TOKEN": "hf_tok", "NEOVRATZ_MODELS_DIR": dir}
	ctx := ctxTest(t)

	code, out, errs := runIn(ctx, e, nil, "pull", "acme/tiny-GGUF:f32")
	if code != 0 {
		t.Fatalf("pull: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"pulled tiny-qwen3-F32.gguf (", "sha256 verified) into " + dir, "model tiny-qwen3-F32: qwen3, ", "F32, context 2048"} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output %q does not say %q", out, want)
		}
	}
	// Not a terminal: progress comes as plain lines, ending at 100%.
	if !strings.Contains(errs, "tiny-qwen3-F32.gguf: 100% ") || strings.Contains(errs, "\r") {
		t.Errorf("progress %q, want plain lines", errs)
	}
	for _, a := range hub.auth {
		if a != "Bearer hf_tok" {
			t.Errorf("hub request with Authorization %q, want HF_TOKEN's", a)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "tiny-qwen3-F32.gguf")); !bytes.Equal(got, model) {
		t.Fatal("the pulled file differs from the served one")
	}

	code, out, _ = runIn(ctx, e, nil, "models")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("models: exit %d\n%s", code, out)
	}
	fields := strings.Fields(lines[1])
	if len(fields) < 7 || fields[0] != "tiny-qwen3-F32" || fields[1] != "qwen3" || fields[3] != "F32" || fields[6] != "2048" {
		t.Errorf("models row %q", lines[1])
	}
	code, out, _ = runIn(ctx, e, nil, "models", "--json")
	var listed []modelJSON
	if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil || len(listed) != 1 || listed[0].Parameters == 0 ||
		listed[0].Size != int64(len(model)) || listed[0].Format != "gguf" {
		t.Fatalf("models --json: exit %d, %v\n%s", code, err, out)
	}

	// The same greedy answer twice, from the model just pulled.
	var answers []string
	for range 2 {
		code, out, errs = runIn(ctx, e, nil, "run", "--local", "tiny-qwen3-F32", "hello", "world", "--max-tokens", "4", "--temperature", "0", "--threads", "1")
		if code != 0 || strings.TrimSpace(out) == "" {
			t.Fatalf("run --local: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		answers = append(answers, out)
	}
	if answers[0] != answers[1] {
		t.Errorf("greedy answers differ: %q, %q", answers[0], answers[1])
	}

	code, out, _ = runIn(ctx, e, nil, "rm", "tiny-qwen3-F32")
	if code != 0 || !strings.HasPrefix(out, "removed tiny-qwen3-F32 (") {
		t.Fatalf("rm: exit %d %q", code, out)
	}
	code, out, errs = runIn(ctx, e, nil, "models")
	if code != 0 || out != "" || !strings.Contains(errs, "no models in "+dir) {
		t.Errorf("models after rm: exit %d %q %q", code, out, errs)
	}
	if code, _, errs = runIn(ctx, e, nil, "rm", "tiny-qwen3-F32"); code != exitError || !strings.Contains(errs, `model "tiny-qwen3-F32" not found`) {
		t.Errorf("rm again: exit %d %q", code, errs)
	}
}

func TestPullErrors(t *testing.T) {
	hub := newMiniHub(t, "acme/m", map[string][]byte{"m-Q4_K_M.gguf": []byte("x"), "m-Q8_0.gguf": []byte("y")})
	other := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(other.Close)
	e := env{"NEOVRATZ_HF_ENDPOINT": hub.srv.URL, "NEOVRATZ_MODELS_DIR": t.TempDir()}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pull"}, exitUsage, "want the model to pull"},
		{[]string{"pull", "a/b", "c/d"}, exitUsage, "want one model reference"},
		{[]string{"pull", "ftp://x/m.gguf"}, exitUsage, "unsupported scheme"},
		{[]string{"pull", "acme/m:Q2_K"}, exitError, "acme/m has no Q2_K file; it has:\n  m-Q4_K_M.gguf\n  m-Q8_0.gguf"},
		{[]string{"pull", "acme/gone:Q2_K"}, exitError, "repository acme/gone: 404 not found"},
		{[]string{"pull", other.URL + "/nothing/here.gguf"}, exitError, "here.gguf: 404 not found (check the URL)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errs := runIn(ctxTest(t), e, nil, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errs, tt.code, tt.want)
			}
		})
	}
}
