package pull

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub stands in for huggingface.co, which the test machines cannot reach: a real HTTP server
// answering the model-info API (GET /api/models/{repo}/revision/{rev}?blobs=true) and the
// resolve URLs the way the hub does — a 302 whose X-Linked-Etag is the file's sha256 — with the
// bytes served, with Range support, by a second server on another host name (localhost rather
// than 127.0.0.1), as the hub's storage is on another domain.
type fakeHub struct {
	t   *testing.T
	api *httptest.Server
	cdn *httptest.Server

	mu       sync.Mutex
	repos    map[string][]hubFile // owner/repo → its files
	requests []seenRequest
	cuts     map[string]int64 // blob path → cut the next response after this many body bytes
}

// hubFile is one file of a fake repository.
type hubFile struct {
	path    string
	content []byte
	// listedSHA overrides the sha256 the listing and X-Linked-Etag publish ("" = the true one).
	listedSHA string
}

func (f hubFile) sha() string {
	if f.listedSHA != "" {
		return f.listedSHA
	}
	sum := sha256.Sum256(f.content)
	return hex.EncodeToString(sum[:])
}

// seenRequest is a request one of the servers received.
type seenRequest struct {
	server string // "hub" or "cdn"
	path   string
	rng    string // Range header
	auth   string // Authorization header
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{t: t, repos: map[string][]hubFile{}, cuts: map[string]int64{}}
	h.api = httptest.NewServer(http.HandlerFunc(h.serveHub))
	t.Cleanup(h.api.Close)
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	t.Cleanup(h.cdn.Close)
	return h
}

func (h *fakeHub) add(repo string, files ...hubFile) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[repo] = append(h.repos[repo], files...)
}

// cutNext makes the next download of repo/path stop after n bytes with the connection closed.
func (h *fakeHub) cutNext(repo, path string, n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cuts["/blob/"+repo+"/"+path] = n
}

func (h *fakeHub) seen() []seenRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]seenRequest(nil), h.requests...)
}

func (h *fakeHub) record(server string, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = append(h.requests, seenRequest{server: server, path: r.URL.Path, rng: r.Header.Get("Range"), auth: r.Header.Get("Authorization")})
}

func (h *fakeHub) file(repo, path string) (hubFile, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.repos[repo] {
		if f.path == path {
			return f, true
		}
	}
	return hubFile{}, false
}

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record("hub", r)
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5)
	switch {
	case len(parts) == 5 && parts[0] == "api" && parts[1] == "models":
		// api/models/owner/repo/revision/main
		repo, rest := parts[2]+"/"+parts[3], parts[4]
		h.mu.Lock()
		files, ok := h.repos[repo]
		h.mu.Unlock()
		if !ok || !strings.HasPrefix(rest, "revision/") || r.URL.Query().Get("blobs") != "true" {
			w.Header().Set("X-Error-Message", "Repository not found")
			http.Error(w, `{"error":"Repository not found"}`, http.StatusNotFound)
			return
		}
		type lfs struct {
			SHA256 string `json:"sha256"`
			Size   int    `json:"size"`
		}
		var sib []map[string]any
		for _, f := range files {
			sib = append(sib, map[string]any{"rfilename": f.path, "size": len(f.content), "lfs": lfs{f.sha(), len(f.content)}})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": repo, "siblings": sib})
	case len(parts) >= 5 && parts[2] == "resolve":
		repo := parts[0] + "/" + parts[1]
		path := strings.SplitN(r.URL.Path, "/resolve/"+parts[3]+"/", 2)[1]
		f, ok := h.file(repo, path)
		if !ok {
			w.Header().Set("X-Error-Message", "Entry not found")
			http.Error(w, "Entry not found", http.StatusNotFound)
			return
		}
		w.Header().Set("X-Linked-Etag", `"`+f.sha()+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.content)))
		cdn := strings.Replace(h.cdn.URL, "127.0.0.1", "localhost", 1)
		http.Redirect(w, r, cdn+"/blob/"+repo+"/"+path, http.StatusFound)
	default:
		http.NotFound(w, r)
	}
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.record("cdn", r)
	rest := strings.TrimPrefix(r.URL.Path, "/blob/")
	p := strings.SplitN(rest, "/", 3)
	if len(p) < 3 {
		http.NotFound(w, r)
		return
	}
	f, ok := h.file(p[0]+"/"+p[1], p[2])
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	cut, doCut := h.cuts[r.URL.Path]
	delete(h.cuts, r.URL.Path)
	h.mu.Unlock()
	if doCut {
		w = &cutWriter{ResponseWriter: w, left: cut}
	}
	http.ServeContent(w, r, f.path, time.Time{}, bytes.NewReader(f.content))
}

// cutWriter passes on left bytes of body, then drops the connection mid-response, as a server
// or network failing mid-download does.
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= c.left {
		c.left -= int64(len(p))
		return c.ResponseWriter.Write(p)
	}
	c.ResponseWriter.Write(p[:c.left])
	c.left = 0
	c.ResponseWriter.(http.Flusher).Flush()
	panic(http.ErrAbortHandler) // net/http closes the connection without finishing the body
}
