package gguf

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes. Parse must never panic, must fail
// only with the package's errors, and when it succeeds every tensor's data
// must lie inside the input, and the File must survive a rewrite: writing it
// with the Builder and parsing that gives the same metadata and tensors.
//
//	go test -run='^$' -fuzz=FuzzParse -fuzztime=60s -parallel=1 ./internal/gguf/
func FuzzParse(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if !isParseError(err) {
				t.Fatalf("error %v is not one of the package's errors", err)
			}
			return
		}
		for _, ti := range file.Tensors() {
			p, err := file.TensorData(ti.Name)
			if err != nil {
				t.Fatalf("TensorData(%q): %v", ti.Name, err)
			}
			start := file.DataOffset() + ti.Offset
			if start < file.DataOffset() || start+ti.Size < start || start+ti.Size > uint64(len(data)) {
				t.Fatalf("tensor %q: [%d, +%d) outside the %d-byte input", ti.Name, start, ti.Size, len(data))
			}
			if uint64(len(p)) != ti.Size || (len(p) > 0 && &p[0] != &data[start]) {
				t.Fatalf("tensor %q: data slice is not input[%d:+%d]", ti.Name, start, ti.Size)
			}
		}
		checkRewrite(t, file)
	})
}

// checkRewrite writes f with the Builder, parses the result, and compares.
func checkRewrite(t *testing.T, f *File) {
	t.Helper()
	b := NewBuilder()
	if err := b.SetVersion(f.Version()); err != nil {
		t.Fatal(err)
	}
	for _, k := range f.Keys() {
		v, _ := f.Value(k)
		if err := b.Set(k, v); err != nil {
			t.Fatalf("Builder refuses what Parse accepted: %v", err)
		}
	}
	for _, ti := range f.Tensors() {
		p, _ := f.TensorData(ti.Name)
		if err := b.AddTensor(ti.Name, ti.Type, ti.Dims, p); err != nil {
			t.Fatalf("Builder refuses what Parse accepted: %v", err)
		}
	}
	raw, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse of the rewritten file: %v", err)
	}
	if len(g.Keys()) != len(f.Keys()) || g.Alignment() != f.Alignment() {
		t.Fatalf("rewrite: %d keys, alignment %d; want %d, %d", len(g.Keys()), g.Alignment(), len(f.Keys()), f.Alignment())
	}
	for i, k := range f.Keys() {
		v, _ := f.Value(k)
		w, ok := g.Value(k)
		if g.Keys()[i] != k || !ok || !sameValue(v, w) {
			t.Fatalf("rewrite: key %d %q = %v, want %q = %v", i, g.Keys()[i], w, k, v)
		}
	}
	if len(g.Tensors()) != len(f.Tensors()) {
		t.Fatalf("rewrite: %d tensors, want %d", len(g.Tensors()), len(f.Tensors()))
	}
	for i, ti := range f.Tensors() {
		tj := g.Tensors()[i]
		p, _ := f.TensorData(ti.Name)
		q, _ := g.TensorData(tj.Name)
		if tj.Name != ti.Name || tj.Type != ti.Type || tj.Size != ti.Size || !bytes.Equal(p, q) {
			t.Fatalf("rewrite: tensor %d = %q %s %d bytes, want %q %s %d bytes", i, tj.Name, tj.Type, tj.Size, ti.Name, ti.Type, ti.Size)
		}
	}
}

// fuzzSeeds returns valid files of several shapes, written by the Builder,
// and a few broken ones.
func fuzzSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	full, _ := buildFixture(tb, DefaultAlignment, 3)
	seeds = append(seeds, full)
	v2, _ := buildFixture(tb, 8, 2)
	seeds = append(seeds, v2)
	seeds = append(seeds, vocabFile(tb, 20))

	build := func(fn func(b *Builder) error) {
		b := NewBuilder()
		if err := fn(b); err != nil {
			tb.Fatal(err)
		}
		raw, err := b.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, raw)
	}
	// Empty; one small tensor at alignment 1; quantized tensors and no
	// metadata; nested arrays only.
	build(func(b *Builder) error { return nil })
	build(func(b *Builder) error {
		if err := b.SetAlignment(1); err != nil {
			return err
		}
		return b.AddTensor("w", TypeF16, []uint64{3}, EncodeF16([]float32{1, -2, 0.5}))
	})
	build(func(b *Builder) error {
		if err := b.AddTensor("q", TypeQ8_0, []uint64{32, 2}, make([]byte, 68)); err != nil {
			return err
		}
		return b.AddTensor("k", TypeQ4_K, []uint64{256}, make([]byte, 144))
	})
	build(func(b *Builder) error {
		return b.Set("n", ArrayOf([]Value{ArrayOf([]Value{ArrayOf([]bool{true})}), ArrayOf([]uint16{9})}))
	})

	swapped := append([]byte(nil), full...)
	binary.BigEndian.PutUint32(swapped[4:], 3)
	seeds = append(seeds,
		nil,
		[]byte("GGUF"),
		header(1, 0, 0).b,
		swapped,
		header(3, 1<<62, 1<<62).b,
		header(3, 0, 1).kv("k", ValueString).u64(1<<40).b,
		deepArray(MaxArrayDepth+1),
		header(3, 1, 0).tensor("x", TypeF32, 0, 8).pad(32, 16).b,
	)
	return seeds
}

// TestFuzzSeeds checks that the seed corpus holds enough valid files for
// the fuzzer to mutate (go test also runs FuzzParse on every seed).
func TestFuzzSeeds(t *testing.T) {
	valid := 0
	for _, seed := range fuzzSeeds(t) {
		if f, err := Parse(seed); err == nil {
			valid++
			checkRewrite(t, f)
		}
	}
	if valid < 7 {
		t.Errorf("%d valid seeds, want at least 7", valid)
	}
}
