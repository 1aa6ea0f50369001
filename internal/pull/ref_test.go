package pull

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		err  string
	}{
		{in: "hf://acme/m/m.gguf", want: Ref{Kind: RefHubFile, Repo: "acme/m", File: "m.gguf"}},
		{in: "hf://acme/m@v1.0/sub/dir/m.gguf", want: Ref{Kind: RefHubFile, Repo: "acme/m", Revision: "v1.0", File: "sub/dir/m.gguf"}},
		{in: "acme/Qwen2.5-0.5B-GGUF:Q4_K_M", want: Ref{Kind: RefHubQuant, Repo: "acme/Qwen2.5-0.5B-GGUF", Quant: "Q4_K_M"}},
		{in: "acme/m", want: Ref{Kind: RefHubQuant, Repo: "acme/m"}},
		{in: "acme/m@abc123:q8_0", want: Ref{Kind: RefHubQuant, Repo: "acme/m", Revision: "abc123", Quant: "q8_0"}},
		{in: "https://example.com/x/m.gguf", want: Ref{Kind: RefURL, URL: "https://example.com/x/m.gguf"}},
		{in: "http://mirror.lan:8000/m.gguf", want: Ref{Kind: RefURL, URL: "http://mirror.lan:8000/m.gguf"}},
		{in: "", err: "empty"},
		{in: "hf://acme/m", err: "want hf://owner/repo/path/to/file.gguf"},
		{in: "hf://acme/m/../x.gguf", err: "not a file path"},
		{in: "ftp://x/m.gguf", err: "unsupported scheme"},
		{in: "qwen", err: "not an owner/repo name"},
		{in: "a/b/c:Q4", err: "not an owner/repo name"},
		{in: "acme/m:Q4:x", err: "not a quantization name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRef(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRef = %+v, %v; want %+v", got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestPickQuant(t *testing.T) {
	files := func(paths ...string) []sibling {
		var out []sibling
		for _, p := range paths {
			out = append(out, sibling{Path: p})
		}
		return out
	}
	repo := files("README.md", "m-Q4_K.gguf", "m-Q4_K_M.gguf", "m-IQ4_XS.gguf", "m.Q8_0.gguf", "m-f16.gguf", "mmproj-m-F16.gguf",
		"x/m-Q2_K-00002-of-00002.gguf", "x/m-Q2_K-00001-of-00002.gguf")
	tests := []struct {
		name, quant string
		files       []sibling
		want        []string
		err         string
	}{
		{name: "exact", quant: "Q4_K_M", files: repo, want: []string{"m-Q4_K_M.gguf"}},
		{name: "any case", quant: "q4_k_m", files: repo, want: []string{"m-Q4_K_M.gguf"}},
		{name: "a prefix of another quant is its own", quant: "Q4_K", files: repo, want: []string{"m-Q4_K.gguf"}},
		{name: "not inside another word", quant: "Q4_XS", files: repo, err: "has no Q4_XS file"},
		{name: "dot separated", quant: "Q8_0", files: repo, want: []string{"m.Q8_0.gguf"}},
		{name: "projector gives way", quant: "F16", files: repo, want: []string{"m-f16.gguf"}},
		{name: "shards together", quant: "Q2_K", files: repo, want: []string{"x/m-Q2_K-00001-of-00002.gguf", "x/m-Q2_K-00002-of-00002.gguf"}},
		{name: "default Q4_K_M", files: repo, want: []string{"m-Q4_K_M.gguf"}},
		{name: "default the only model", files: files("m-Q8_0.gguf", "mmproj-m-f16.gguf", "config.json"), want: []string{"m-Q8_0.gguf"}},
		{name: "default ambiguous", files: files("m-Q8_0.gguf", "m-Q6_K.gguf"), err: "2 files match a GGUF file"},
		{name: "ambiguous", quant: "Q8_0", files: files("a-Q8_0.gguf", "b-Q8_0.gguf"), err: "2 files match Q8_0:\n  a-Q8_0.gguf\n  b-Q8_0.gguf"},
		{name: "no GGUF", files: files("model.safetensors"), err: "has no GGUF file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickQuant("acme/m", tt.files, tt.quant)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one saying %q", err, tt.err)
				}
				var nm *NoMatchError
				var am *AmbiguousError
				if !errors.As(err, &nm) && !errors.As(err, &am) {
					t.Errorf("err is %T, want *NoMatchError or *AmbiguousError", err)
				}
				return
			}
			var paths []string
			for _, f := range got {
				paths = append(paths, f.Path)
			}
			if err != nil || !slices.Equal(paths, tt.want) {
				t.Fatalf("pickQuant = %q, %v; want %q", paths, err, tt.want)
			}
		})
	}
}
