package imageup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/engine/imageup"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/worker"
	"github.com/neovratz/neovratz/internal/worker/workertest"
)

var update = flag.Bool("update", false, "rewrite the golden request files in testdata")

var (
	_ worker.ImageEngine   = (*imageup.Engine)(nil)
	_ worker.HealthChecker = (*imageup.Engine)(nil)
)

// No AUTOMATIC1111 can run here (it needs Python, PyTorch and a model), so the A1111 tests serve
// fixtures in testdata/a1111 from a real HTTP server: txt2img and progress answers in the shape
// AUTOMATIC1111 v1.10 sends (modules/api/models.py; the info document as processing.py writes
// it), error bodies as FastAPI and its API middleware write them. The request the engine sends is
// checked against a golden file (go test -update rewrites it).

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "a1111", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// a1111Server serves the fixtures. txt2img answers once progress was polled through every
// recorded step (or once it is interrupted); its body is kept for the golden check.
type a1111Server struct {
	t           *testing.T
	status      int    // of txt2img; 0 = 200
	answer      string // fixture txt2img answers with
	polls       atomic.Int32
	progress    []json.RawMessage
	interrupted chan struct{}
	once        sync.Once

	mu   sync.Mutex
	body []byte
}

func newA1111(t *testing.T, status int, answer string) (*a1111Server, *httptest.Server) {
	s := &a1111Server{t: t, status: status, answer: answer, interrupted: make(chan struct{})}
	if err := json.Unmarshal(fixture(t, "progress_sequence.json"), &s.progress); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sdapi/v1/txt2img", s.txt2img)
	mux.HandleFunc("GET /sdapi/v1/progress", func(w http.ResponseWriter, r *http.Request) {
		i := min(int(s.polls.Add(1))-1, len(s.progress)-1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.progress[i])
	})
	mux.HandleFunc("POST /sdapi/v1/interrupt", func(w http.ResponseWriter, r *http.Request) {
		s.once.Do(func() { close(s.interrupted) })
		w.Write([]byte("null"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *a1111Server) txt2img(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
	if s.status == 0 {
		deadline := time.After(10 * time.Second)
		for int(s.polls.Load()) < len(s.progress) {
			select {
			case <-s.interrupted:
				w.WriteHeader(http.StatusOK)
				w.Write([]byte(`{"images":[],"parameters":{},"info":"{}"}`))
				return
			case <-deadline:
				s.t.Error("progress was never polled to the end")
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if s.status != 0 {
		w.WriteHeader(s.status)
	}
	w.Write(fixture(s.t, s.answer))
}

func (s *a1111Server) request() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.body
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "a1111", name)
	var v any
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("request is not JSON: %v", err)
	}
	pretty, _ := json.MarshalIndent(v, "", "  ")
	pretty = append(pretty, '\n')
	if *update {
		if err := os.WriteFile(path, pretty, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(pretty, want) {
		t.Errorf("request body differs from %s:\ngot  %s\nwant %s", path, pretty, want)
	}
}

var lighthouse = inference.ImageRequest{Model: "sd15", Prompt: "a lighthouse at dusk", NegativePrompt: "blurry", N: 2,
	Width: 512, Height: 512, Steps: 4, CFGScale: 7.5, Seed: -1, Sampler: "Euler a"}

func TestA1111(t *testing.T) {
	s, srv := newA1111(t, 0, "txt2img_response.json")
	e, err := imageup.New(imageup.Config{API: imageup.APIA1111, BaseURL: srv.URL, Model: "v1-5-pruned-emaonly", ProgressInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var steps []inference.ImageProgress
	res, err := e.GenerateImage(context.Background(), lighthouse, func(p inference.ImageProgress) error {
		steps = append(steps, p)
		return nil
	})
	if err != nil {
		t.Fatalf("GenerateImage: %v", err)
	}
	checkGolden(t, "txt2img_request.golden.json", s.request())
	if len(res.Images) != 2 {
		t.Fatalf("%d images, want 2", len(res.Images))
	}
	for i, want := range []int64{1234, 1235} {
		im := res.Images[i]
		if cfg, err := png.DecodeConfig(bytes.NewReader(im.PNG)); err != nil || cfg.Width != 8 {
			t.Errorf("image %d: %+v, %v; want the fixture's 8x8 PNG", i, cfg, err)
		}
		if im.Seed != want {
			t.Errorf("image %d: seed %d, want %d from info.all_seeds", i, im.Seed, want)
		}
	}
	// Every recorded step, in order, each once.
	var got []int
	for _, p := range steps {
		if p.Steps != 4 {
			t.Errorf("progress %+v: want 4 steps", p)
		}
		if len(got) == 0 || got[len(got)-1] != p.Step {
			got = append(got, p.Step)
		}
	}
	if len(got) == 0 || got[len(got)-1] != 4 {
		t.Errorf("progress steps %v, want them to reach 4", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			t.Errorf("progress went backwards: %v", got)
		}
	}
	if err := e.Health(context.Background()); err != nil {
		t.Errorf("Health: %v", err)
	}
}

func TestA1111Errors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		fixture   string
		bad       bool
		retryable bool
		message   string
	}{
		{"validation", 422, "txt2img_422.json", true, false, "width: value is not a valid integer"},
		{"unknown sampler", 404, "txt2img_404_sampler.json", true, false, "sampler: not found"},
		{"out of memory", 500, "txt2img_500.json", false, true, "CUDA out of memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := newA1111(t, tc.status, tc.fixture)
			e, _ := imageup.New(imageup.Config{API: imageup.APIA1111, BaseURL: srv.URL, ProgressInterval: 10 * time.Millisecond})
			_, err := e.GenerateImage(context.Background(), lighthouse, func(inference.ImageProgress) error { return nil })
			if errors.Is(err, inference.ErrBadRequest) != tc.bad || worker.IsRetryable(err) != tc.retryable {
				t.Errorf("err %v: bad request %v, retryable %v; want %v, %v", err, errors.Is(err, inference.ErrBadRequest), worker.IsRetryable(err), tc.bad, tc.retryable)
			}
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.message)) {
				t.Errorf("err %v, want it to say %q", err, tc.message)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		_, srv := newA1111(t, 0, "txt2img_response.json")
		srv.Close()
		e, _ := imageup.New(imageup.Config{API: imageup.APIA1111, BaseURL: srv.URL})
		_, err := e.GenerateImage(context.Background(), lighthouse, func(inference.ImageProgress) error { return nil })
		if !worker.IsRetryable(err) {
			t.Errorf("err = %v, want retryable", err)
		}
		if e.Health(context.Background()) == nil {
			t.Error("Health of a closed server = nil")
		}
	})
}

// TestA1111Cancel: a canceled job interrupts A1111 (closing the request would not stop it), and
// an error from the progress callback — the worker learning of a cancellation — does the same.
func TestA1111Cancel(t *testing.T) {
	for _, how := range []string{"context", "callback"} {
		t.Run(how, func(t *testing.T) {
			s, srv := newA1111(t, 0, "txt2img_response.json")
			s.progress = s.progress[:2] // a generation that never ends by itself
			s.progress = append(s.progress, s.progress[1], s.progress[1], s.progress[1], s.progress[1], s.progress[1], s.progress[1], s.progress[1], s.progress[1], s.progress[1], s.progress[1])
			e, _ := imageup.New(imageup.Config{API: imageup.APIA1111, BaseURL: srv.URL, ProgressInterval: 20 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := errors.New("job canceled")
			_, err := e.GenerateImage(ctx, lighthouse, func(p inference.ImageProgress) error {
				if p.Step >= 1 {
					if how == "context" {
						cancel()
						return nil
					}
					return stop
				}
				return nil
			})
			want := error(context.Canceled)
			if how == "callback" {
				want = stop
			}
			if !errors.Is(err, want) {
				t.Errorf("err = %v, want %v", err, want)
			}
			select {
			case <-s.interrupted:
			case <-time.After(5 * time.Second):
				t.Error("A1111 was not interrupted")
			}
		})
	}
}

// TestOpenAIImages runs the OpenAI images API against a real neovratz serving the sim engine;
// the images must be those the sim engine draws when called directly.
func TestOpenAIImages(t *testing.T) {
	simCfg := sim.Config{ImageSteps: 2}
	up := workertest.New(t, workertest.Options{Sim: simCfg})
	e, err := imageup.New(imageup.Config{API: imageup.APIOpenAI, BaseURL: up.URL + "/v1", Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	req := inference.ImageRequest{Model: workertest.ImageModel, Prompt: "a red fox", N: 2, Width: 64, Height: 96, Seed: 42}
	got, err := e.GenerateImage(context.Background(), req, nil)
	if err != nil {
		t.Fatalf("GenerateImage: %v", err)
	}
	want, _ := sim.New(simCfg).GenerateImage(context.Background(), req, func(inference.ImageProgress) error { return nil })
	if len(got.Images) != 2 {
		t.Fatalf("%d images, want 2", len(got.Images))
	}
	for i := range want.Images {
		gi, _ := png.Decode(bytes.NewReader(got.Images[i].PNG))
		wi, _ := png.Decode(bytes.NewReader(want.Images[i].PNG))
		if gi == nil || wi == nil || !reflect.DeepEqual(gi.Bounds(), wi.Bounds()) || gi.At(10, 10) != wi.At(10, 10) {
			t.Errorf("image %d differs from the sim engine's", i)
		}
	}
	bad := req
	bad.Width = 7 // the API refuses: a bad request, not retried
	if _, err := e.GenerateImage(context.Background(), bad, nil); !errors.Is(err, inference.ErrBadRequest) || worker.IsRetryable(err) {
		t.Errorf("bad size: %v, want a non-retryable bad request", err)
	}
	if err := e.Health(context.Background()); err != nil {
		t.Errorf("Health: %v", err)
	}
}
