package modelstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neovratz/neovratz/internal/gguf"
)

// ggufSpec describes a small but real GGUF file for a test.
type ggufSpec struct {
	arch     string
	title    string
	ctx      uint32
	fileType int // -1: no general.file_type key
	tensors  []tensorSpec
	extra    map[string]gguf.Value
}

type tensorSpec struct {
	name string
	typ  gguf.Type
	dims []uint64
}

// writeGGUF writes a GGUF file with the gguf package's writer, tensors filled with zeros of
// the right size.
func writeGGUF(t *testing.T, path string, s ggufSpec) {
	t.Helper()
	b := gguf.NewBuilder()
	set := func(k string, v gguf.Value) {
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if s.arch != "" {
		set("general.architecture", gguf.ValueOf(s.arch))
		set(s.arch+".context_length", gguf.ValueOf(s.ctx))
	}
	if s.title != "" {
		set("general.name", gguf.ValueOf(s.title))
	}
	if s.fileType >= 0 {
		set("general.file_type", gguf.ValueOf(uint32(s.fileType)))
	}
	for k, v := range s.extra {
		set(k, v)
	}
	for _, ts := range s.tensors {
		n, err := gguf.TensorSize(ts.typ, ts.dims)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.AddTensor(ts.name, ts.typ, ts.dims, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFile(path); err != nil {
		t.Fatal(err)
	}
}

// llamaTensors is a tiny llama-shaped model: 256*8*2 + 8 + 256*4 = 5128 parameters, most of
// the bytes in Q4_K matrices.
var llamaTensors = []tensorSpec{
	{"token_embd.weight", gguf.TypeQ4_K, []uint64{256, 8}},
	{"blk.0.attn_q.weight", gguf.TypeQ4_K, []uint64{256, 8}},
	{"blk.0.attn_norm.weight", gguf.TypeF32, []uint64{8}},
	{"output.weight", gguf.TypeQ6_K, []uint64{256, 4}},
}

// writeSafetensors writes a safetensors file with the given tensors (dtype, shape) and metadata.
func writeSafetensors(t *testing.T, path string, tensors map[string][]uint64, dtype string, meta map[string]string) {
	t.Helper()
	header := map[string]any{}
	if meta != nil {
		header["__metadata__"] = meta
	}
	size := map[string]int{"F16": 2, "F32": 4}[dtype]
	off := uint64(0)
	for name, shape := range tensors {
		n := uint64(size)
		for _, d := range shape {
			n *= d
		}
		header[name] = safetensorsTensor{DType: dtype, Shape: shape, DataOffsets: []uint64{off, off + n}}
		off += n
	}
	js, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	out = append(out, js...)
	out = append(out, make([]byte, off)...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	writeGGUF(t, filepath.Join(dir, "tiny-llama-Q4_K_M.gguf"), ggufSpec{arch: "llama", title: "Tiny Llama", ctx: 4096, fileType: 15, tensors: llamaTensors})
	// No general.file_type: the quantization is the type that holds most matrix bytes.
	writeGGUF(t, filepath.Join(dir, "guessed.gguf"), ggufSpec{arch: "qwen2", ctx: 32768, fileType: -1, tensors: llamaTensors})
	// A model split in two shards is one model; only the first has the metadata.
	writeGGUF(t, filepath.Join(dir, "big-00001-of-00002.gguf"), ggufSpec{arch: "qwen3", ctx: 40960, fileType: 7,
		tensors: []tensorSpec{{"a", gguf.TypeQ8_0, []uint64{64, 10}}}})
	writeGGUF(t, filepath.Join(dir, "big-00002-of-00002.gguf"), ggufSpec{fileType: -1,
		tensors: []tensorSpec{{"b", gguf.TypeQ8_0, []uint64{64, 5}}}})
	writeGGUF(t, filepath.Join(dir, "family", "nested.gguf"), ggufSpec{arch: "llama", ctx: 2048, fileType: 1,
		tensors: []tensorSpec{{"w", gguf.TypeF16, []uint64{3, 3}}}})
	writeSafetensors(t, filepath.Join(dir, "sd15.safetensors"), map[string][]uint64{
		"model.diffusion_model.input_blocks.0.0.weight":                   {320, 4, 3, 3},
		"cond_stage_model.transformer.text_model.embeddings.position_ids": {1, 77},
		"first_stage_model.decoder.conv_in.bias":                          {512},
	}, "F16", nil)
	writeSafetensors(t, filepath.Join(dir, "xl.safetensors"), map[string][]uint64{"w": {2, 2}}, "F32",
		map[string]string{"modelspec.architecture": "stable-diffusion-xl-v1-base", "modelspec.title": "SDXL"})
	if err := os.WriteFile(filepath.Join(dir, "broken.gguf"), []byte("GGUF\x03\x00\x00\x00 truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Not models: a download in progress, a hidden file, a README.
	for _, name := range []string{"next.gguf.partial", ".hidden.gguf", "README.md"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	models, err := New(dir).List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range models {
		names = append(names, m.Name)
	}
	wantNames := []string{"big", "broken", "family/nested", "guessed", "sd15", "tiny-llama-Q4_K_M", "xl"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("names = %q, want %q", names, wantNames)
	}
	byName := map[string]Model{}
	for _, m := range models {
		byName[m.Name] = m
	}

	tests := []struct {
		name                       string
		format                     Format
		title, arch, params, quant string
		ctx                        uint64
		files                      int
	}{
		{"tiny-llama-Q4_K_M", FormatGGUF, "Tiny Llama", "llama", "5K", "Q4_K_M", 4096, 1},
		{"guessed", FormatGGUF, "", "qwen2", "5K", "Q4_K", 32768, 1},
		{"big", FormatGGUF, "", "qwen3", "960", "Q8_0", 40960, 2},
		{"family/nested", FormatGGUF, "", "llama", "9", "F16", 2048, 1},
		{"sd15", FormatSafetensors, "", "stable-diffusion-1", "12K", "F16", 0, 1},
		{"xl", FormatSafetensors, "SDXL", "stable-diffusion-xl-v1-base", "4", "F32", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := byName[tt.name]
			if m.Err != nil {
				t.Fatalf("Err = %v", m.Err)
			}
			if m.Format != tt.format || m.Title != tt.title || m.Architecture != tt.arch || m.ParamsString() != tt.params ||
				m.Quantization != tt.quant || m.ContextLength != tt.ctx || len(m.Files) != tt.files {
				t.Errorf("got %s %q %s %s %s ctx %d files %d; want %s %q %s %s %s ctx %d files %d",
					m.Format, m.Title, m.Architecture, m.ParamsString(), m.Quantization, m.ContextLength, len(m.Files),
					tt.format, tt.title, tt.arch, tt.params, tt.quant, tt.ctx, tt.files)
			}
			var size int64
			for _, f := range m.Files {
				st, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				size += st.Size()
			}
			if m.Size != size || m.Path != m.Files[0] || m.Modified.IsZero() {
				t.Errorf("size %d path %s modified %v; want size %d path %s", m.Size, m.Path, m.Modified, size, m.Files[0])
			}
		})
	}
	if m := byName["big"]; !strings.HasSuffix(m.Path, "big-00001-of-00002.gguf") || m.Parameters != 64*15 {
		t.Errorf("split model path %s params %d, want the first shard and 960", m.Path, m.Parameters)
	}
	if m := byName["broken"]; m.Err == nil || !errors.Is(m.Err, gguf.ErrMalformed) {
		t.Errorf("broken.gguf Err = %v, want a malformed GGUF", m.Err)
	}
}

func TestListIncompleteSplit(t *testing.T) {
	dir := t.TempDir()
	writeGGUF(t, filepath.Join(dir, "big-00001-of-00003.gguf"), ggufSpec{arch: "llama", fileType: 7,
		tensors: []tensorSpec{{"a", gguf.TypeQ8_0, []uint64{32, 1}}}})
	writeGGUF(t, filepath.Join(dir, "big-00003-of-00003.gguf"), ggufSpec{fileType: -1})
	models, err := New(dir).List()
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 1 || models[0].Err == nil || !strings.Contains(models[0].Err.Error(), "incomplete split model") {
		t.Fatalf("models = %+v, want one incomplete split model", models)
	}
}

func TestListMissingDir(t *testing.T) {
	models, err := New(filepath.Join(t.TempDir(), "nope")).List()
	if err != nil || len(models) != 0 {
		t.Fatalf("List = %v, %v; want no models and no error", models, err)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"Qwen2.5-0.5B-Q4_K_M.gguf", "llama-Q8_0.gguf", "Dup.gguf", "dup.gguf"} {
		writeGGUF(t, filepath.Join(dir, name), ggufSpec{arch: "llama", fileType: 7, tensors: []tensorSpec{{"a", gguf.TypeQ8_0, []uint64{32, 1}}}})
	}
	s := New(dir)
	tests := []struct {
		ask, want string
		err       string
	}{
		{ask: "llama-Q8_0", want: "llama-Q8_0"},
		{ask: "llama-Q8_0.gguf", want: "llama-Q8_0"},
		{ask: "qwen2.5-0.5b-q4_k_m", want: "Qwen2.5-0.5B-Q4_K_M"},
		{ask: "dup", want: "dup"},
		{ask: "DUP", err: `model "DUP" is ambiguous: it could be Dup, dup`},
		{ask: "qwen2.5", err: `model "qwen2.5" not found in ` + dir + ` (did you mean Qwen2.5-0.5B-Q4_K_M?)`},
		{ask: "mistral", err: `model "mistral" not found in ` + dir},
	}
	for _, tt := range tests {
		t.Run(tt.ask, func(t *testing.T) {
			m, err := s.Resolve(tt.ask)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil || m.Name != tt.want || m.Architecture != "llama" {
				t.Fatalf("Resolve = %q %q, %v; want %q", m.Name, m.Architecture, err, tt.want)
			}
		})
	}
	if _, err := s.Resolve("mistral"); !errors.Is(err, ErrNotFound) {
		t.Errorf("errors.Is(%v, ErrNotFound) = false", err)
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	shards := []string{filepath.Join(dir, "big-00001-of-00002.gguf"), filepath.Join(dir, "big-00002-of-00002.gguf")}
	for _, p := range shards {
		writeGGUF(t, p, ggufSpec{fileType: -1})
	}
	keep := filepath.Join(dir, "keep.gguf")
	writeGGUF(t, keep, ggufSpec{fileType: -1})
	// A resumed download of a shard that was being replaced goes with the model.
	if err := os.WriteFile(shards[1]+PartialSuffix, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(dir)
	m, err := s.Remove("big")
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "big" || !slices.Equal(m.Files, shards) || m.Size == 0 {
		t.Errorf("removed %+v", m)
	}
	for _, p := range append(shards, shards[1]+PartialSuffix) {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there (%v)", p, err)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("keep.gguf: %v", err)
	}
	if _, err := s.Remove("big"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
}

func TestInspect(t *testing.T) {
	p := filepath.Join(t.TempDir(), "one.gguf")
	writeGGUF(t, p, ggufSpec{arch: "qwen3", ctx: 8192, fileType: 18, tensors: llamaTensors})
	m, err := Inspect(p)
	if err != nil || m.Name != "one" || m.Quantization != "Q6_K" || m.ContextLength != 8192 {
		t.Fatalf("Inspect = %+v, %v", m, err)
	}
	if _, err := Inspect(filepath.Join(t.TempDir(), "x.bin")); err == nil {
		t.Error("Inspect(x.bin) succeeded")
	}
}

func TestFormatParams(t *testing.T) {
	for _, tt := range []struct {
		n    uint64
		want string
	}{{0, ""}, {9, "9"}, {5128, "5K"}, {494_032_768, "494M"}, {7_615_616_512, "7.6B"}, {8_000_000_000, "8B"}, {70_553_706_496, "70.6B"}} {
		if got := formatParams(tt.n); got != tt.want {
			t.Errorf("formatParams(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
