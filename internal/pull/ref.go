package pull

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// RefKind says how a Ref names what to download.
type RefKind int

// The kinds of reference.
const (
	RefHubFile  RefKind = iota + 1 // hf://owner/repo/path/file.gguf: one file of a Hugging Face repository
	RefHubQuant                    // owner/repo:QUANT (or owner/repo): the GGUF file of that quantization
	RefURL                         // https://host/path/file.gguf: any URL
)

// Ref is what `neovratz pull` was asked for.
type Ref struct {
	Kind     RefKind
	Repo     string // owner/repo, for the hub kinds
	Revision string // branch, tag or commit, for the hub kinds; "" means main
	File     string // path of the file in the repository (RefHubFile)
	Quant    string // quantization to pick (RefHubQuant); "" prefers Q4_K_M
	URL      string // RefURL
}

// String writes the reference back in the form it is parsed from.
func (r Ref) String() string {
	rev := ""
	if r.Revision != "" {
		rev = "@" + r.Revision
	}
	switch r.Kind {
	case RefHubFile:
		return "hf://" + r.Repo + rev + "/" + r.File
	case RefHubQuant:
		if r.Quant == "" {
			return r.Repo + rev
		}
		return r.Repo + rev + ":" + r.Quant
	}
	return r.URL
}

// repoName is what Hugging Face accepts as an owner or repository name.
var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseRef parses a reference to a model:
//
//	hf://owner/repo/file.gguf            a file of a Hugging Face repository (any path inside it)
//	hf://owner/repo@revision/file.gguf   the same at a branch, tag or commit
//	owner/repo:Q4_K_M                    the repository's GGUF file of that quantization
//	owner/repo                           its Q4_K_M file, or its only GGUF file
//	https://host/path/model.gguf         any URL (http:// too, for a local mirror)
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Ref{}, fmt.Errorf("empty model reference")
	case strings.HasPrefix(s, "https://"), strings.HasPrefix(s, "http://"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return Ref{}, fmt.Errorf("%q is not a valid URL", s)
		}
		return Ref{Kind: RefURL, URL: s}, nil
	case strings.HasPrefix(s, "hf://"):
		parts := strings.SplitN(strings.TrimPrefix(s, "hf://"), "/", 3)
		if len(parts) < 3 || parts[2] == "" {
			return Ref{}, fmt.Errorf("%q: want hf://owner/repo/path/to/file.gguf", s)
		}
		repo, rev, err := parseRepo(parts[0] + "/" + parts[1])
		if err != nil {
			return Ref{}, fmt.Errorf("%q: %w", s, err)
		}
		file := path.Clean(parts[2])
		if strings.HasPrefix(file, "../") || file == ".." || file == "." || strings.HasSuffix(parts[2], "/") {
			return Ref{}, fmt.Errorf("%q: %q is not a file path", s, parts[2])
		}
		return Ref{Kind: RefHubFile, Repo: repo, Revision: rev, File: file}, nil
	case strings.Contains(s, "://"):
		return Ref{}, fmt.Errorf("%q: unsupported scheme (want hf://, https:// or owner/repo:QUANT)", s)
	}
	repoPart, quant, _ := strings.Cut(s, ":")
	repo, rev, err := parseRepo(repoPart)
	if err != nil {
		return Ref{}, fmt.Errorf("%q: %w (want owner/repo:QUANT, hf://owner/repo/file.gguf or a URL)", s, err)
	}
	if strings.ContainsAny(quant, "/:") {
		return Ref{}, fmt.Errorf("%q: %q is not a quantization name such as Q4_K_M", s, quant)
	}
	return Ref{Kind: RefHubQuant, Repo: repo, Revision: rev, Quant: quant}, nil
}

// parseRepo splits owner/repo[@revision].
func parseRepo(s string) (repo, rev string, err error) {
	s, rev, _ = strings.Cut(s, "@")
	owner, name, ok := strings.Cut(s, "/")
	if !ok || !repoName.MatchString(owner) || !repoName.MatchString(name) || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%q is not an owner/repo name", s)
	}
	return s, rev, nil
}
