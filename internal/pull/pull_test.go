package pull

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// content returns n bytes of a pattern, so a misplaced resume shows as different bytes.
func content(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func newPuller(t *testing.T, h *fakeHub, cfg Config) *Puller {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.HubURL = h.api.URL
	if cfg.RetryWait == 0 {
		cfg.RetryWait = time.Millisecond
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustRef(t *testing.T, s string) Ref {
	t.Helper()
	r, err := ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d served", path, len(got), len(want))
	}
	if _, err := os.Stat(path + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.partial left behind (%v)", path, err)
	}
}

func TestPullQuantWithToken(t *testing.T) {
	h := newFakeHub(t)
	q4 := hubFile{path: "qwen-0.5b-Q4_K_M.gguf", content: content(300_000, 1)}
	h.add("acme/qwen-GGUF", q4,
		hubFile{path: "qwen-0.5b-Q4_K_S.gguf", content: content(10, 2)},
		hubFile{path: "qwen-0.5b-Q8_0.gguf", content: content(10, 3)},
		hubFile{path: "mmproj-qwen-f16.gguf", content: content(10, 4)},
		hubFile{path: "README.md", content: []byte("# qwen")})
	p := newPuller(t, h, Config{Token: "hf_secret"})
	res, err := p.Pull(context.Background(), mustRef(t, "acme/qwen-GGUF:q4_k_m"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 || res.Files[0].Name != q4.path || res.Files[0].SHA256 != q4.sha() || res.Files[0].Size != 300_000 {
		t.Fatalf("result = %+v, want %s verified", res, q4.path)
	}
	checkFile(t, filepath.Join(p.cfg.Dir, q4.path), q4.content)

	// The token goes to the hub (listing and resolve) and never to the storage it redirects to.
	var servers []string
	for _, r := range h.seen() {
		servers = append(servers, r.server)
		want := "Bearer hf_secret"
		if r.server == "cdn" {
			want = ""
		}
		if r.auth != want {
			t.Errorf("%s %s: Authorization %q, want %q", r.server, r.path, r.auth, want)
		}
	}
	if !slices.Equal(servers, []string{"hub", "hub", "cdn"}) {
		t.Errorf("requests went to %q, want the listing, the resolve URL, the storage", servers)
	}

	// Pulling again finds the file in place and downloads nothing.
	before := len(h.seen())
	res, err = p.Pull(context.Background(), mustRef(t, "acme/qwen-GGUF:Q4_K_M"), Options{})
	if err != nil || !res.Files[0].Present {
		t.Fatalf("second pull = %+v, %v; want the file present", res, err)
	}
	if got := h.seen()[before:]; len(got) != 1 || got[0].server != "hub" {
		t.Errorf("second pull made requests %+v, want only the listing", got)
	}
}

func TestPullResumesInterruptedDownload(t *testing.T) {
	h := newFakeHub(t)
	f := hubFile{path: "model-Q8_0.gguf", content: content(1<<20, 5)}
	h.add("acme/m", f)
	dir := t.TempDir()
	dest := filepath.Join(dir, f.path)
	const cut = 400_000
	h.cutNext("acme/m", f.path, cut)

	// The first run loses its connection after 400,000 bytes and, with no retries, gives up
	// keeping what it has.
	p := newPuller(t, h, Config{Dir: dir, Retries: 0})
	_, err := p.Pull(context.Background(), mustRef(t, "hf://acme/m/"+f.path), Options{})
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "pull again to resume") {
		t.Fatalf("first pull: %v, want an interruption", err)
	}
	if st, err := os.Stat(dest + ".partial"); err != nil || st.Size() != cut {
		t.Fatalf("partial file after the cut: %v, %v; want %d bytes", st, err, cut)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the incomplete file was put in place (%v)", err)
	}

	// The second run asks only for the rest, and the whole file checks out.
	var progress []Progress
	res, err := p.Pull(context.Background(), mustRef(t, "hf://acme/m/"+f.path), Options{Progress: func(pr Progress) { progress = append(progress, pr) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files[0].Resumed != cut || res.Files[0].SHA256 != f.sha() {
		t.Errorf("result %+v, want resumed at %d and verified", res.Files[0], cut)
	}
	checkFile(t, dest, f.content)
	seen := h.seen()
	last := seen[len(seen)-1]
	if last.server != "cdn" || last.rng != "bytes=400000-" {
		t.Errorf("resumed request %+v, want Range bytes=400000-", last)
	}
	first, end := progress[0], progress[len(progress)-1]
	if first.Done != cut || first.Start != cut || end.Done != 1<<20 || end.Total != 1<<20 {
		t.Errorf("progress from %+v to %+v, want %d to %d of %d", first, end, cut, 1<<20, 1<<20)
	}
}

func TestPullRetriesWithinOneRun(t *testing.T) {
	h := newFakeHub(t)
	f := hubFile{path: "m.gguf", content: content(500_000, 6)}
	h.add("acme/m", f)
	h.cutNext("acme/m", f.path, 100_000)
	p := newPuller(t, h, Config{Retries: 2})
	var notices []string
	res, err := p.Pull(context.Background(), mustRef(t, "hf://acme/m/m.gguf"), Options{Notice: func(s string) { notices = append(notices, s) }})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, res.Files[0].Path, f.content)
	if len(notices) != 1 || !strings.Contains(notices[0], "resuming") || !strings.Contains(notices[0], "100000 of 500000 bytes") {
		t.Errorf("notices = %q, want one about resuming at 100000 of 500000 bytes", notices)
	}
	var ranges []string
	for _, r := range h.seen() {
		if r.server == "cdn" {
			ranges = append(ranges, r.rng)
		}
	}
	if !slices.Equal(ranges, []string{"", "bytes=100000-"}) {
		t.Errorf("storage requests had Range %q", ranges)
	}
}

func TestPullChecksumMismatch(t *testing.T) {
	h := newFakeHub(t)
	bad := strings.Repeat("ab", 32)
	f := hubFile{path: "m-Q4_0.gguf", content: content(200_000, 7), listedSHA: bad}
	h.add("acme/m", f)
	p := newPuller(t, h, Config{})
	_, err := p.Pull(context.Background(), mustRef(t, "acme/m:Q4_0"), Options{})
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Want != bad || ce.Got != (hubFile{content: f.content}).sha() {
		t.Fatalf("err = %v, want a checksum mismatch", err)
	}
	dest := filepath.Join(p.cfg.Dir, f.path)
	for _, path := range []string{dest, dest + ".partial"} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a checksum mismatch (%v)", path, err)
		}
	}
}

func TestPullNotFound(t *testing.T) {
	h := newFakeHub(t)
	h.add("acme/m", hubFile{path: "m-Q4_K_M.gguf", content: content(10, 8)}, hubFile{path: "m-Q8_0.gguf", content: content(10, 9)})
	missing := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(missing.Close)
	p := newPuller(t, h, Config{})
	tests := []struct {
		ref  string
		want []string
	}{
		{"acme/nope:Q4_K_M", []string{"repository acme/nope: 404 not found: Repository not found", "set HF_TOKEN"}},
		{"hf://acme/m/m-F16.gguf", []string{"acme/m has no m-F16.gguf file; it has:", "m-Q4_K_M.gguf", "m-Q8_0.gguf"}},
		{"acme/m:Q2_K", []string{"acme/m has no Q2_K file", "m-Q4_K_M.gguf\n  m-Q8_0.gguf"}},
		{missing.URL + "/models/x.gguf", []string{"x.gguf: 404 not found", "check the URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			_, err := p.Pull(context.Background(), mustRef(t, tt.ref), Options{})
			if err == nil {
				t.Fatal("pull succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if entries, _ := os.ReadDir(p.cfg.Dir); len(entries) != 0 {
		t.Errorf("failed pulls left %d files", len(entries))
	}
}

func TestPullSplitModel(t *testing.T) {
	h := newFakeHub(t)
	a := hubFile{path: "Q8_0/big-Q8_0-00001-of-00002.gguf", content: content(1000, 10)}
	b := hubFile{path: "Q8_0/big-Q8_0-00002-of-00002.gguf", content: content(500, 11)}
	h.add("acme/big", b, a, hubFile{path: "big-Q4_K_M.gguf", content: content(10, 12)})
	p := newPuller(t, h, Config{})
	res, err := p.Pull(context.Background(), mustRef(t, "acme/big:Q8_0"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 2 || res.Files[0].Name != "big-Q8_0-00001-of-00002.gguf" || res.Files[1].SHA256 != b.sha() {
		t.Fatalf("result %+v, want both shards in order", res)
	}
	checkFile(t, res.Files[0].Path, a.content)
	checkFile(t, res.Files[1].Path, b.content)
}

func TestPullURL(t *testing.T) {
	body := content(100_000, 13)
	// A server without Range support answers 200 with the whole file: a partial file is
	// then started over rather than appended to.
	var ranges []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ranges = append(ranges, r.Header.Get("Range"))
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the hub token went to %s", r.Host)
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	h := newFakeHub(t)
	p := newPuller(t, h, Config{Token: "hf_secret"})
	dest := filepath.Join(p.cfg.Dir, "tiny.gguf")
	if err := os.WriteFile(dest+".partial", []byte("stale bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	var notices []string
	res, err := p.Pull(context.Background(), mustRef(t, srv.URL+"/files/tiny.gguf?download=true"), Options{Notice: func(s string) { notices = append(notices, s) }})
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, dest, body)
	if res.Files[0].SHA256 != "" {
		t.Errorf("SHA256 = %q: nothing was published to verify against", res.Files[0].SHA256)
	}
	if !slices.Equal(ranges, []string{"bytes=11-"}) || len(notices) != 1 || !strings.Contains(notices[0], "starting over") {
		t.Errorf("ranges %q notices %q", ranges, notices)
	}

	// A URL whose name is not a model file's needs a local name.
	_, err = p.Pull(context.Background(), mustRef(t, srv.URL+"/download?id=3"), Options{})
	if err == nil || !strings.Contains(err.Error(), "--as") {
		t.Fatalf("err = %v, want a request for a local name", err)
	}
	res, err = p.Pull(context.Background(), mustRef(t, srv.URL+"/download?id=3"), Options{Name: "named.gguf"})
	if err != nil || res.Files[0].Name != "named.gguf" {
		t.Fatalf("pull with a name: %+v, %v", res, err)
	}
}

func TestPullCompletePartial(t *testing.T) {
	// A run that stopped between the last byte and the rename left a whole partial file: the
	// server answers the Range past its end with 416, and the file is verified and put in place.
	h := newFakeHub(t)
	f := hubFile{path: "m.gguf", content: content(5000, 14)}
	h.add("acme/m", f)
	p := newPuller(t, h, Config{})
	dest := filepath.Join(p.cfg.Dir, "m.gguf")
	if err := os.WriteFile(dest+".partial", f.content, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := p.Pull(context.Background(), mustRef(t, "hf://acme/m/m.gguf"), Options{})
	if err != nil || res.Files[0].SHA256 != f.sha() {
		t.Fatalf("pull = %+v, %v", res, err)
	}
	checkFile(t, dest, f.content)
}

func TestPullCanceled(t *testing.T) {
	h := newFakeHub(t)
	h.add("acme/m", hubFile{path: "m.gguf", content: content(10, 15)})
	p := newPuller(t, h, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Pull(ctx, mustRef(t, "hf://acme/m/m.gguf"), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want canceled", err)
	}
}
