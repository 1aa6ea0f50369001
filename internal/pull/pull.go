// Package pull downloads models into the models directory: files of Hugging Face repositories
// (hf://owner/repo/file.gguf, or owner/repo:QUANT resolved through the hub's file listing) and
// files at any URL.
//
// Downloads are resumable and atomic: bytes go to <file>.partial, a later pull continues it with
// an HTTP Range request, and only a complete file whose sha256 matches the hub's (the LFS object
// id, from the API listing or the X-Linked-Etag header) is renamed into place. A mismatch removes
// the partial file, so the next pull starts clean. A connection that drops mid-file is resumed
// within the same pull a few times before Pull gives up (keeping the partial file). A pull
// holds <file>.partial.lock while it works on a file, and a second pull of the same file is
// refused with a LockedError rather than writing to the same partial file.
package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/modelstore"
)

// Config configures a Puller.
type Config struct {
	// Dir is the models directory the files go to; it is created when missing.
	Dir string
	// HubURL is the Hugging Face endpoint (https://huggingface.co, a mirror, or a test server).
	HubURL string
	// Token is a Hugging Face access token, sent as a bearer token to the hub's host only (the
	// HTTP client drops it on the redirect to the hub's storage). Gated and private
	// repositories need it.
	Token string
	// Client makes the requests; nil means a client on http.DefaultTransport, which honours the
	// HTTPS_PROXY/HTTP_PROXY/NO_PROXY settings.
	Client *http.Client
	// Retries is how many times a download whose connection dropped is resumed within one Pull.
	Retries int
	// RetryWait is the wait before the first retry, doubled before each next one; default 1s.
	RetryWait time.Duration
	// UserAgent identifies neovratz to the hub.
	UserAgent string
}

// Progress reports a download under way.
type Progress struct {
	File  string // local file name
	Done  int64  // bytes on disk so far, a resumed partial file included
	Total int64  // the file's size; 0 when the server did not say
	// Start is how many bytes this attempt began with (a resumed partial file), so that a rate
	// counts only what came over the network.
	Start int64
}

// Options are the choices of one Pull.
type Options struct {
	// Name is the local file name, instead of the remote one (one file only).
	Name string
	// Force downloads a file again even when the directory holds it already.
	Force bool
	// Progress, when set, is called as bytes arrive (often: throttle what it prints).
	Progress func(Progress)
	// Notice, when set, receives one-line messages about what happens (resuming, retrying).
	Notice func(string)
}

// Result is what one Pull brought.
type Result struct {
	Files []File
}

// File is one downloaded (or already present) file.
type File struct {
	Name    string // local file name
	Path    string
	Size    int64
	SHA256  string // verified against the hub's; "" when the source gave none (then not verified)
	Resumed int64  // bytes a partial file already had when this pull started
	Present bool   // the file was there already; nothing was downloaded
}

// Puller downloads models.
type Puller struct {
	cfg    Config
	hub    *url.URL
	client *http.Client
}

// New returns a Puller for cfg.
func New(cfg Config) (*Puller, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pull: no models directory")
	}
	if cfg.HubURL == "" {
		cfg.HubURL = "https://huggingface.co"
	}
	hub, err := url.Parse(strings.TrimSuffix(cfg.HubURL, "/"))
	if err != nil || (hub.Scheme != "http" && hub.Scheme != "https") || hub.Host == "" {
		return nil, fmt.Errorf("pull: hub URL %q is not an http(s) URL", cfg.HubURL)
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = time.Second
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "neovratz"
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{}
	}
	return &Puller{cfg: cfg, hub: hub, client: client}, nil
}

// remote is one file to fetch.
type remote struct {
	url    string
	name   string // local file name
	size   int64  // 0: unknown
	sha256 string // "": unknown
}

// Pull downloads what ref names into the models directory.
func (p *Puller) Pull(ctx context.Context, ref Ref, opts Options) (Result, error) {
	files, err := p.plan(ctx, ref)
	if err != nil {
		return Result{}, err
	}
	if opts.Name != "" {
		if len(files) != 1 {
			return Result{}, fmt.Errorf("%s is %d files (a split model): it keeps its own names", ref, len(files))
		}
		files[0].name = opts.Name
	}
	for _, f := range files {
		if err := checkName(f.name); err != nil {
			return Result{}, err
		}
	}
	var res Result
	for _, f := range files {
		got, err := p.fetch(ctx, f, opts)
		if err != nil {
			return res, err
		}
		res.Files = append(res.Files, got)
	}
	return res, nil
}

// plan turns a reference into the files to fetch.
func (p *Puller) plan(ctx context.Context, ref Ref) ([]remote, error) {
	switch ref.Kind {
	case RefURL:
		u, err := url.Parse(ref.URL)
		if err != nil {
			return nil, err
		}
		return []remote{{url: ref.URL, name: path.Base(u.Path)}}, nil
	case RefHubFile, RefHubQuant:
		files, err := p.listRepo(ctx, ref.Repo, ref.Revision)
		if err != nil {
			return nil, err
		}
		var picked []sibling
		if ref.Kind == RefHubQuant {
			if picked, err = pickQuant(ref.Repo, files, ref.Quant); err != nil {
				return nil, err
			}
		} else {
			for _, f := range files {
				if f.Path == ref.File {
					picked = []sibling{f}
				}
			}
			if picked == nil {
				e := &NoMatchError{Repo: ref.Repo + revSuffix(ref.Revision), Want: ref.File}
				for _, set := range groupShards(files) {
					if _, ok := modelFormat(set[0].Path); ok {
						e.Available = append(e.Available, set[0].Path)
					}
				}
				return nil, e
			}
		}
		out := make([]remote, len(picked))
		for i, f := range picked {
			out[i] = remote{url: p.fileURL(ref.Repo, ref.Revision, f.Path), name: path.Base(f.Path), size: f.size(), sha256: f.sha256()}
		}
		return out, nil
	}
	return nil, fmt.Errorf("pull: unknown reference kind %d", ref.Kind)
}

// checkName refuses local names that are not plain model file names.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%q is not a file name", name)
	}
	if _, ok := modelFormat(name); !ok {
		return fmt.Errorf("%q is not a model file name (want .gguf or .safetensors): give the local name with --as", name)
	}
	return nil
}

func modelFormat(name string) (string, bool) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".gguf", ".safetensors":
		return strings.ToLower(filepath.Ext(name))[1:], true
	}
	return "", false
}

// partialPath is where a download in progress lives.
func partialPath(dest string) string { return dest + modelstore.PartialSuffix }

// do sends a request with the hub's token when it goes to the hub's host.
func (p *Puller) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("User-Agent", p.cfg.UserAgent)
	if p.cfg.Token != "" && req.URL.Host == p.hub.Host {
		req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	}
	return p.client.Do(req)
}

// StatusError is a download or listing the server refused.
type StatusError struct {
	Status int
	What   string // the file or repository
	URL    string
	Reason string // the server's own message, when it gave one
	Hint   string // what to do about it
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.What, e.Status, strings.ToLower(http.StatusText(e.Status)))
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// statusError explains a failed response, with the server's message when it gave one (the
// hub sends X-Error-Message, or a JSON {"error": …} body).
func (p *Puller) statusError(resp *http.Response, what string) error {
	e := &StatusError{Status: resp.StatusCode, What: what, URL: resp.Request.URL.String()}
	e.Reason = resp.Header.Get("X-Error-Message")
	if e.Reason == "" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var js struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &js) == nil && js.Error != "" {
			e.Reason = js.Error
		}
	}
	toHub := resp.Request.URL.Host == p.hub.Host
	switch {
	case resp.StatusCode == http.StatusNotFound && toHub:
		e.Hint = "check the repository and file names; a private repository also answers 404 without a token: set HF_TOKEN"
	case resp.StatusCode == http.StatusNotFound:
		e.Hint = "check the URL"
	case resp.StatusCode == http.StatusUnauthorized && p.cfg.Token == "":
		e.Hint = "the repository is gated or private: set HF_TOKEN to an access token"
	case resp.StatusCode == http.StatusUnauthorized:
		e.Hint = "the token was refused: check HF_TOKEN"
	case resp.StatusCode == http.StatusForbidden && toHub:
		e.Hint = "the token has no access: accept the model's terms on its Hugging Face page, or use a token with read access"
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Hint = "rate limited: wait a while, or set HF_TOKEN for a higher limit"
	}
	return e
}
