package gguf

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestBuilderErrors(t *testing.T) {
	tooDeep := ArrayOf([]uint8{1})
	for range MaxArrayDepth {
		tooDeep = ArrayOf([]Value{tooDeep})
	}
	tests := []struct {
		name    string
		do      func(b *Builder) error
		wantErr string
	}{
		{"version 1", func(b *Builder) error { return b.SetVersion(1) }, "cannot write version 1"},
		{"alignment 3", func(b *Builder) error { return b.SetAlignment(3) }, "general.alignment is 3"},
		{"alignment as string", func(b *Builder) error { return b.Set(KeyAlignment, ValueOf("32")) }, "want an unsigned integer"},
		{"arrays too deep", func(b *Builder) error { return b.Set("k", tooDeep) }, "nested deeper than 8"},
		{"array of arrays holding a scalar", func(b *Builder) error {
			return b.Set("k", ArrayOf([]Value{ArrayOf([]int8{1}), ValueOf(int8(2))}))
		}, "element 1 of an array of arrays is a int8"},
		{"wrong data size", func(b *Builder) error { return b.AddTensor("t", TypeF32, []uint64{4}, make([]byte, 15)) }, "15 bytes of data, want 16"},
		{"row not a block multiple", func(b *Builder) error { return b.AddTensor("t", TypeQ8_0, []uint64{16}, nil) }, "not a multiple of the Q8_0 block size"},
		{"unknown type", func(b *Builder) error { return b.AddTensor("t", 77, []uint64{1}, nil) }, "unknown tensor type 77"},
		{"five dims", func(b *Builder) error { return b.AddTensor("t", TypeI8, []uint64{1, 1, 1, 1, 1}, []byte{0}) }, "5 dimensions"},
		{"duplicate tensor", func(b *Builder) error {
			if err := b.AddTensor("t", TypeI8, []uint64{1}, []byte{0}); err != nil {
				return err
			}
			return b.AddTensor("t", TypeI8, []uint64{1}, []byte{0})
		}, `add tensor "t": duplicate name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(NewBuilder())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestBuilderSetReplaces checks that setting a key again replaces its value
// in place, keeping the first position.
func TestBuilderSetReplaces(t *testing.T) {
	b := NewBuilder()
	for _, kv := range []struct {
		k string
		v Value
	}{{"a", ValueOf(uint8(1))}, {"b", ValueOf("x")}, {"a", ValueOf(int64(-5))}} {
		if err := b.Set(kv.k, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Keys(), ","); got != "a,b" {
		t.Errorf("Keys() = %s, want a,b", got)
	}
	if got, ok := f.Int("a"); !ok || got != -5 {
		t.Errorf("Int(a) = %d, %v; want -5, true", got, ok)
	}
}

// TestBuilderLayout checks the bytes of a small file against the layout
// the GGUF spec gives, field by field.
func TestBuilderLayout(t *testing.T) {
	b := NewBuilder()
	if err := b.Set("k", ValueOf(uint16(7))); err != nil {
		t.Fatal(err)
	}
	if err := b.AddTensor("ab", TypeI8, []uint64{3}, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddTensor("c", TypeI8, []uint64{1}, []byte{9}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	want := header(3, 2, 1).kv("k", ValueUint16).raw([]byte{7, 0}).
		tensor("ab", TypeI8, 0, 3).tensor("c", TypeI8, 32, 1).
		pad(32, 0).raw([]byte{1, 2, 3}).pad(32, 0).raw([]byte{9}).pad(32, 0).b
	if !bytes.Equal(got, want) {
		t.Errorf("Bytes() =\n%x\nwant\n%x", got, want)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n < len(p) {
		n := w.n
		w.n = 0
		return n, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestBuilderWriteError(t *testing.T) {
	b := NewBuilder()
	if err := b.AddTensor("t", TypeI8, []uint64{100}, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	n, err := b.WriteTo(&failWriter{n: 50})
	if err == nil || !strings.Contains(err.Error(), "disk full") || n != 50 {
		t.Errorf("WriteTo = %d, %v; want 50, disk full", n, err)
	}
}
