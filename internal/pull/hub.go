package pull

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// sibling is one file of a repository in the hub's model info (GET /api/models/{repo}/revision/
// {rev}?blobs=true): its path, size, and for files kept in LFS (every model file) the sha256 of
// the content.
type sibling struct {
	Path string `json:"rfilename"`
	Size int64  `json:"size"`
	LFS  *struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
}

func (s sibling) sha256() string {
	if s.LFS != nil && isSHA256(s.LFS.SHA256) {
		return strings.ToLower(s.LFS.SHA256)
	}
	return ""
}

func (s sibling) size() int64 {
	if s.LFS != nil && s.LFS.Size > 0 {
		return s.LFS.Size
	}
	return s.Size
}

// listRepo fetches the files of a repository at a revision from the hub's API.
func (p *Puller) listRepo(ctx context.Context, repo, rev string) ([]sibling, error) {
	u := p.hub.JoinPath("api", "models", repo, "revision", revision(rev))
	u.RawQuery = "blobs=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.do(req)
	if err != nil {
		return nil, fmt.Errorf("list files of %s: %w", repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, p.statusError(resp, "repository "+repo+revSuffix(rev))
	}
	var info struct {
		Siblings []sibling `json:"siblings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, fmt.Errorf("list files of %s: the hub's answer is not model info: %w", repo, err)
	}
	return info.Siblings, nil
}

// fileURL is where the hub serves a file of a repository.
func (p *Puller) fileURL(repo, rev, file string) string {
	segs := append([]string{repo, "resolve", revision(rev)}, strings.Split(file, "/")...)
	return p.hub.JoinPath(segs...).String()
}

func revision(rev string) string {
	if rev == "" {
		return "main"
	}
	return url.PathEscape(rev)
}

func revSuffix(rev string) string {
	if rev == "" {
		return ""
	}
	return "@" + rev
}

// DefaultQuant is the quantization picked when a reference names none and the repository
// has several: the usual balance of size and quality, as llama.cpp and Ollama default to.
const DefaultQuant = "Q4_K_M"

// NoMatchError is a quantization (or file) a repository does not have.
type NoMatchError struct {
	Repo, Want string
	Available  []string // the repository's GGUF files
}

func (e *NoMatchError) Error() string {
	if len(e.Available) == 0 {
		return fmt.Sprintf("%s has no GGUF file", e.Repo)
	}
	return fmt.Sprintf("%s has no %s file; it has:\n  %s", e.Repo, e.Want, strings.Join(e.Available, "\n  "))
}

// AmbiguousError is a quantization that several files of a repository match.
type AmbiguousError struct {
	Repo, Want string
	Matches    []string
}

func (e *AmbiguousError) Error() string {
	what := e.Want
	if what == "" {
		what = "a GGUF file (name a quantization, " + e.Repo + ":QUANT)"
	}
	return fmt.Sprintf("%s: %d files match %s:\n  %s\nname one with hf://%s/FILE", e.Repo, len(e.Matches), what,
		strings.Join(e.Matches, "\n  "), e.Repo)
}

// shardPath matches a shard of a split GGUF: name-00001-of-00003.gguf.
var shardPath = regexp.MustCompile(`(?i)^(.+)-\d{5}-of-(\d{5})\.gguf$`)

// pickQuant returns the files of the repository holding quantization quant: one file, or every
// shard of a split model. Matching ignores case and wants the quantization as a whole word of
// the file name (Q4_K does not match Q4_K_M). Without quant, it picks DefaultQuant when there is
// one, else the only GGUF model. Multimodal projectors (mmproj-*) give way to the model itself.
func pickQuant(repo string, files []sibling, quant string) ([]sibling, error) {
	var ggufs []sibling
	for _, f := range files {
		if strings.HasSuffix(strings.ToLower(f.Path), ".gguf") {
			ggufs = append(ggufs, f)
		}
	}
	sets := groupShards(ggufs)
	var names []string
	for _, set := range sets {
		names = append(names, set[0].Path)
	}
	if quant == "" {
		if got := matchSets(sets, DefaultQuant); len(got) == 1 {
			return got[0], nil
		}
		if models := withoutProjectors(sets); len(models) == 1 {
			return models[0], nil
		}
		if len(sets) == 0 {
			return nil, &NoMatchError{Repo: repo}
		}
		return nil, &AmbiguousError{Repo: repo, Matches: names}
	}
	got := matchSets(sets, quant)
	if len(got) > 1 {
		if models := withoutProjectors(got); len(models) >= 1 {
			got = models
		}
	}
	switch len(got) {
	case 0:
		return nil, &NoMatchError{Repo: repo, Want: quant, Available: names}
	case 1:
		return got[0], nil
	}
	e := &AmbiguousError{Repo: repo, Want: quant}
	for _, set := range got {
		e.Matches = append(e.Matches, set[0].Path)
	}
	return nil, e
}

// groupShards groups files into models: a shard set (sorted, all of it) or a single file, in
// order of name.
func groupShards(files []sibling) [][]sibling {
	var sets [][]sibling
	index := map[string]int{}
	for _, f := range files {
		key := f.Path
		if m := shardPath.FindStringSubmatch(f.Path); m != nil {
			key = m[1] + "-of-" + m[2]
		}
		if i, ok := index[key]; ok {
			sets[i] = append(sets[i], f)
			continue
		}
		index[key] = len(sets)
		sets = append(sets, []sibling{f})
	}
	byPath := func(a, b sibling) int { return strings.Compare(a.Path, b.Path) }
	for _, set := range sets {
		slices.SortFunc(set, byPath)
	}
	// Sorted sets, so the lists in error messages do not depend on the hub's listing order.
	slices.SortFunc(sets, func(a, b []sibling) int { return byPath(a[0], b[0]) })
	return sets
}

func matchSets(sets [][]sibling, quant string) [][]sibling {
	var out [][]sibling
	for _, set := range sets {
		if hasQuant(set[0].Path, quant) {
			out = append(out, set)
		}
	}
	return out
}

func withoutProjectors(sets [][]sibling) [][]sibling {
	var out [][]sibling
	for _, set := range sets {
		if !strings.HasPrefix(strings.ToLower(path.Base(set[0].Path)), "mmproj") {
			out = append(out, set)
		}
	}
	return out
}

// hasQuant reports whether quant is a word of the file path: preceded by the start or one of
// - _ . /, and followed by the end or one of - . (an underscore after it would make it part of
// a longer name, as Q4_K is of Q4_K_M).
func hasQuant(filePath, quant string) bool {
	p, q := strings.ToLower(filePath), strings.ToLower(quant)
	if q == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(p[i:], q)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(q)
		before := start == 0 || strings.ContainsRune("-_./", rune(p[start-1]))
		after := end == len(p) || strings.ContainsRune("-.", rune(p[end]))
		if before && after {
			return true
		}
		i = start + 1
	}
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
