package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// fixtureTensor is one tensor of the round-trip fixture.
type fixtureTensor struct {
	name string
	typ  Type
	dims []uint64
}

// fixtureTensors covers plain, half, and block-quantized types, every rank,
// and an empty tensor; sizes are not multiples of the alignment, so the
// writer must pad.
var fixtureTensors = []fixtureTensor{
	{"token_embd.weight", TypeF32, []uint64{3, 2}},
	{"norm.weight", TypeF16, []uint64{5}},
	{"bf16", TypeBF16, []uint64{2, 2, 3}},
	{"blk.0.attn_q.weight", TypeQ8_0, []uint64{64, 3}},
	{"blk.0.ffn_up.weight", TypeQ4_K, []uint64{256}},
	{"blk.0.ffn_down.weight", TypeQ6_K, []uint64{512, 1, 1, 2}},
	{"q4_0", TypeQ4_0, []uint64{32, 1, 3}},
	{"empty", TypeF32, []uint64{0, 4}},
	{"ids", TypeI32, []uint64{7}},
}

// fixtureValues has every metadata type, edge values, and arrays of every
// element type including nested ones.
func fixtureValues() []struct {
	key string
	v   Value
} {
	nested := ArrayOf([]Value{
		ArrayOf([]uint8{1, 2}),
		ArrayOf([]string{"a", ""}),
		ArrayOf([]Value{ArrayOf([]float64{math.Pi})}),
		ArrayOf([]int16{}),
	})
	deep := ArrayOf([]int8{-1})
	for range MaxArrayDepth - 1 {
		deep = ArrayOf([]Value{deep})
	}
	return []struct {
		key string
		v   Value
	}{
		{"general.architecture", ValueOf("llama")},
		{"u8", ValueOf(uint8(255))},
		{"i8", ValueOf(int8(-128))},
		{"u16", ValueOf(uint16(65535))},
		{"i16", ValueOf(int16(-32768))},
		{"u32", ValueOf(uint32(math.MaxUint32))},
		{"i32", ValueOf(int32(math.MinInt32))},
		{"u64", ValueOf(uint64(math.MaxUint64))},
		{"i64", ValueOf(int64(math.MinInt64))},
		{"f32", ValueOf(float32(1.5))},
		{"f32.nan", ValueOf(math.Float32frombits(0x7fc00123))},
		{"f64", ValueOf(-math.MaxFloat64)},
		{"true", ValueOf(true)},
		{"false", ValueOf(false)},
		{"string", ValueOf("héllo\x00wörld")},
		{"empty", ValueOf("")},
		{"a.u8", ArrayOf([]uint8{0, 1, 255})},
		{"a.i8", ArrayOf([]int8{-128, 0, 127})},
		{"a.u16", ArrayOf([]uint16{1, 65535})},
		{"a.i16", ArrayOf([]int16{-32768, 32767})},
		{"a.u32", ArrayOf([]uint32{7, math.MaxUint32})},
		{"a.i32", ArrayOf([]int32{-1, 2})},
		{"a.u64", ArrayOf([]uint64{0, math.MaxUint64})},
		{"a.i64", ArrayOf([]int64{math.MinInt64, math.MaxInt64})},
		{"a.f32", ArrayOf([]float32{0.25, -1})},
		{"a.f64", ArrayOf([]float64{1e300, -0.5})},
		{"a.bool", ArrayOf([]bool{true, false, true})},
		{"a.string", ArrayOf([]string{"<s>", "", "▁the", "\xff"})},
		{"a.empty", ArrayOf([]string{})},
		{"a.nested", nested},
		{"a.deep", deep},
	}
}

// buildFixture writes the round-trip fixture and returns its bytes and the
// tensor data it holds.
func buildFixture(t testing.TB, align uint32, version uint32) ([]byte, map[string][]byte) {
	t.Helper()
	b := NewBuilder()
	if err := b.SetVersion(version); err != nil {
		t.Fatal(err)
	}
	for _, kv := range fixtureValues() {
		if err := b.Set(kv.key, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	if align != DefaultAlignment {
		if err := b.SetAlignment(align); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := map[string][]byte{}
	for _, ft := range fixtureTensors {
		size, err := TensorSize(ft.typ, ft.dims)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, size)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		if err := b.AddTensor(ft.name, ft.typ, ft.dims, p); err != nil {
			t.Fatal(err)
		}
		data[ft.name] = p
	}
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out, data
}

// sameValue compares values by type and encoding, so NaNs compare by bits.
func sameValue(a, b Value) bool {
	return a.typ == b.typ && bytes.Equal(appendValue(nil, a), appendValue(nil, b))
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		align   uint32
		version uint32
	}{
		{"v3 default alignment", DefaultAlignment, 3},
		{"v3 alignment 64", 64, 3},
		{"v3 alignment 1", 1, 3},
		{"v2", DefaultAlignment, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, data := buildFixture(t, tt.align, tt.version)
			f, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			checkFixture(t, f, raw, data, uint64(tt.align), tt.version)
		})
	}
}

func checkFixture(t *testing.T, f *File, raw []byte, data map[string][]byte, align uint64, version uint32) {
	t.Helper()
	if f.Version() != version {
		t.Errorf("Version() = %d, want %d", f.Version(), version)
	}
	if f.Alignment() != align {
		t.Errorf("Alignment() = %d, want %d", f.Alignment(), align)
	}
	if f.DataOffset()%align != 0 {
		t.Errorf("DataOffset() = %d, not aligned to %d", f.DataOffset(), align)
	}
	var wantKeys []string
	for _, kv := range fixtureValues() {
		wantKeys = append(wantKeys, kv.key)
		got, ok := f.Value(kv.key)
		if !ok {
			t.Errorf("Value(%q) missing", kv.key)
			continue
		}
		if !sameValue(got, kv.v) {
			t.Errorf("Value(%q) = %v (%s), want %v (%s)", kv.key, got, got.Type(), kv.v, kv.v.Type())
		}
	}
	if align != DefaultAlignment {
		wantKeys = append(wantKeys, KeyAlignment)
	}
	if got := f.Keys(); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("Keys() = %q, want %q", got, wantKeys)
	}
	if len(f.Tensors()) != len(fixtureTensors) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors()), len(fixtureTensors))
	}
	for i, ft := range fixtureTensors {
		ti := f.Tensors()[i]
		if ti.Name != ft.name || ti.Type != ft.typ || !reflect.DeepEqual(ti.Dims, ft.dims) {
			t.Errorf("tensor %d = %s %s %v, want %s %s %v", i, ti.Name, ti.Type, ti.Dims, ft.name, ft.typ, ft.dims)
		}
		if byName, ok := f.Tensor(ft.name); !ok || !reflect.DeepEqual(byName, ti) {
			t.Errorf("Tensor(%q) = %+v, %v; want %+v", ft.name, byName, ok, ti)
		}
		if ti.Offset%align != 0 {
			t.Errorf("tensor %q offset %d not aligned to %d", ti.Name, ti.Offset, align)
		}
		got, err := f.TensorData(ft.name)
		if err != nil {
			t.Fatalf("TensorData(%q): %v", ft.name, err)
		}
		if !bytes.Equal(got, data[ft.name]) {
			t.Errorf("TensorData(%q) differs from what was written", ft.name)
		}
		if len(got) > 0 && &got[0] != &raw[f.DataOffset()+ti.Offset] {
			t.Errorf("TensorData(%q) is a copy, want a slice of the input", ft.name)
		}
		var elems uint64 = 1
		for _, d := range ft.dims {
			elems *= d
		}
		if ti.Elements() != elems {
			t.Errorf("tensor %q Elements() = %d, want %d", ft.name, ti.Elements(), elems)
		}
	}
	if _, ok := f.Tensor("missing"); ok {
		t.Error("Tensor(missing) found")
	}
	if _, err := f.TensorData("missing"); err == nil {
		t.Error("TensorData(missing): no error")
	}
}

func TestAccessors(t *testing.T) {
	raw, _ := buildFixture(t, DefaultAlignment, 3)
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		v  any
		ok bool
	}
	r := func(v any, ok bool) result { return result{v, ok} }
	tests := []struct {
		name string
		got  result
		want result
	}{
		{"String", r(f.String("general.architecture")), r("llama", true)},
		{"String of int", r(f.String("u8")), r("", false)},
		{"String missing", r(f.String("nope")), r("", false)},
		{"Uint u8", r(f.Uint("u8")), r(uint64(255), true)},
		{"Uint u64", r(f.Uint("u64")), r(uint64(math.MaxUint64), true)},
		{"Uint negative i8", r(f.Uint("i8")), r(uint64(0), false)},
		{"Uint of float", r(f.Uint("f32")), r(uint64(0), false)},
		{"Uint missing", r(f.Uint("nope")), r(uint64(0), false)},
		{"Int i64", r(f.Int("i64")), r(int64(math.MinInt64), true)},
		{"Int i16", r(f.Int("i16")), r(int64(-32768), true)},
		{"Int u32", r(f.Int("u32")), r(int64(math.MaxUint32), true)},
		{"Int u64 too big", r(f.Int("u64")), r(int64(0), false)},
		{"Int of string", r(f.Int("string")), r(int64(0), false)},
		{"Float f32", r(f.Float("f32")), r(1.5, true)},
		{"Float f64", r(f.Float("f64")), r(-math.MaxFloat64, true)},
		{"Float of int", r(f.Float("i16")), r(-32768.0, true)},
		{"Float of bool", r(f.Float("true")), r(0.0, false)},
		{"Bool true", r(f.Bool("true")), r(true, true)},
		{"Bool false", r(f.Bool("false")), r(false, true)},
		{"Bool of u8", r(f.Bool("u8")), r(false, false)},
		{"Strings", r(f.Strings("a.string")), r([]string{"<s>", "", "▁the", "\xff"}, true)},
		{"Strings empty", r(f.Strings("a.empty")), r([]string{}, true)},
		{"Strings of ints", r(f.Strings("a.i32")), r([]string(nil), false)},
		{"Ints i32", r(f.Ints("a.i32")), r([]int64{-1, 2}, true)},
		{"Ints u8", r(f.Ints("a.u8")), r([]int64{0, 1, 255}, true)},
		{"Ints u64 too big", r(f.Ints("a.u64")), r([]int64(nil), false)},
		{"Ints of floats", r(f.Ints("a.f32")), r([]int64(nil), false)},
		{"Floats f32", r(f.Floats("a.f32")), r([]float64{0.25, -1}, true)},
		{"Floats f64", r(f.Floats("a.f64")), r([]float64{1e300, -0.5}, true)},
		{"Floats of scalar", r(f.Floats("f32")), r([]float64(nil), false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}

	v, _ := f.Value("a.nested")
	if et, ok := v.ElemType(); !ok || et != ValueArray || v.Len() != 4 {
		t.Errorf("a.nested: ElemType = %s, %v; Len = %d; want array, true, 4", et, ok, v.Len())
	}
	inner, _ := v.AsArray()
	if got, _ := inner[1].AsStrings(); !reflect.DeepEqual(got, []string{"a", ""}) {
		t.Errorf("a.nested[1] = %q, want [a \"\"]", got)
	}
	if got := v.String(); got != `[[1 2] ["a" ""] [[3.141592653589793]] []]` {
		t.Errorf("a.nested String() = %s", got)
	}
	if got, ok := f.Value("a.f32"); !ok || !reflect.DeepEqual(got.Interface(), []float32{0.25, -1}) {
		t.Errorf("a.f32 Interface() = %#v, want []float32", got.Interface())
	}
}

func TestValueString(t *testing.T) {
	long := make([]uint32, 100)
	tests := []struct {
		v    Value
		want string
	}{
		{ValueOf(int8(-3)), "-3"},
		{ValueOf("x\"y"), `"x\"y"`},
		{ValueOf(true), "true"},
		{ValueOf(float32(0.5)), "0.5"},
		{ArrayOf([]bool{true}), "[true]"},
		{ArrayOf(long), "[0 0 0 0 0 0 0 0 … (100 uint32)]"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
}

func TestOpen(t *testing.T) {
	raw, data := buildFixture(t, 64, 3)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.gguf")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.TensorData("q4_0")
	if err != nil || !bytes.Equal(got, data["q4_0"]) {
		t.Errorf("TensorData(q4_0) = %d bytes, %v; want the written data", len(got), err)
	}
	if s, _ := f.String("general.architecture"); s != "llama" {
		t.Errorf("architecture = %q, want llama", s)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, name := range []string{"q4_0", "empty"} {
		if _, err := f.TensorData(name); err == nil {
			t.Errorf("TensorData(%q) after Close: no error", name)
		}
	}
	if s, _ := f.String("general.architecture"); s != "llama" {
		t.Errorf("architecture after Close = %q, want llama", s)
	}

	// Builder.WriteFile, then Open, agree with Parse.
	b := NewBuilder()
	if err := b.Set("k", ValueOf(uint32(1))); err != nil {
		t.Fatal(err)
	}
	if err := b.AddTensor("t", TypeF32, []uint64{2}, EncodeF32([]float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small.gguf")
	if err := b.WriteFile(small); err != nil {
		t.Fatal(err)
	}
	f, err = Open(small)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := f.TensorData("t")
	if xs, _ := DecodeF32(p); !reflect.DeepEqual(xs, []float32{1, 2}) {
		t.Errorf("tensor t = %v, want [1 2]", xs)
	}
	f.Close()

	tests := []struct {
		name    string
		content []byte
		wantErr error
	}{
		{"empty file", nil, ErrNotGGUF},
		{"short file", []byte("GGUF\x03\x00\x00\x00"), ErrMalformed},
		{"not gguf", []byte(strings.Repeat("x", 100)), ErrNotGGUF},
		{"truncated", raw[:len(raw)/2], ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open = %v, want %v naming the path", err, tt.wantErr)
			}
		})
	}
	if _, err := Open(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(absent) = %v, want fs.ErrNotExist", err)
	}
}

// TestTruncated cuts a valid file at every byte: every cut before the end
// of the last tensor's data must fail cleanly, every cut after it (in the
// final padding) must still parse.
func TestTruncated(t *testing.T) {
	raw, _ := buildFixture(t, DefaultAlignment, 3)
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var end uint64
	for _, ti := range f.Tensors() {
		end = max(end, f.DataOffset()+ti.Offset+ti.Size)
	}
	if end == uint64(len(raw)) {
		t.Fatal("fixture has no final padding; the test wants some")
	}
	for n := range len(raw) {
		_, err := Parse(raw[:n])
		if uint64(n) < end && err == nil {
			t.Fatalf("Parse of the first %d of %d bytes succeeded", n, len(raw))
		}
		if uint64(n) >= end && err != nil {
			t.Fatalf("Parse of the first %d bytes (data ends at %d): %v", n, end, err)
		}
		if err != nil && !isParseError(err) {
			t.Fatalf("Parse of the first %d bytes: %v is not one of the package's errors", n, err)
		}
	}
}

func isParseError(err error) bool {
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrNotGGUF) || errors.Is(err, ErrUnsupported)
}

// enc writes GGUF fields by hand, to build files the Builder would refuse.
type enc struct{ b []byte }

func header(version uint32, nTensors, nKV uint64) *enc {
	e := &enc{b: []byte(magic)}
	return e.u32(version).u64(nTensors).u64(nKV)
}

func (e *enc) u8(x uint8) *enc   { e.b = append(e.b, x); return e }
func (e *enc) u32(x uint32) *enc { e.b = binary.LittleEndian.AppendUint32(e.b, x); return e }
func (e *enc) u64(x uint64) *enc { e.b = binary.LittleEndian.AppendUint64(e.b, x); return e }
func (e *enc) str(s string) *enc { return e.u64(uint64(len(s))).raw([]byte(s)) }
func (e *enc) raw(p []byte) *enc { e.b = append(e.b, p...); return e }

// kv appends a key and a value type tag.
func (e *enc) kv(key string, t ValueType) *enc { return e.str(key).u32(uint32(t)) }

// tensor appends a tensor info.
func (e *enc) tensor(name string, t Type, off uint64, dims ...uint64) *enc {
	e.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		e.u64(d)
	}
	return e.u32(uint32(t)).u64(off)
}

// pad pads to a multiple of a, then appends n data bytes.
func (e *enc) pad(a, n int) *enc {
	for len(e.b)%a != 0 {
		e.b = append(e.b, 0)
	}
	e.b = append(e.b, make([]byte, n)...)
	return e
}

func TestParseErrors(t *testing.T) {
	validV3 := header(3, 0, 0).b
	swapped := append([]byte(nil), validV3...)
	binary.BigEndian.PutUint32(swapped[4:], 3)
	tests := []struct {
		name    string
		data    []byte
		wantErr error
		wantMsg string
	}{
		{"empty", nil, ErrNotGGUF, `magic ""`},
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), ErrNotGGUF, `magic "GGML"`},
		{"legacy ggjt", []byte("tjgg\x03\x00\x00\x00"), ErrNotGGUF, "pre-GGUF"},
		{"version 1", header(1, 0, 0).b, ErrUnsupported, "version 1 is not supported"},
		{"version 4", header(4, 0, 0).b, ErrUnsupported, "unsupported GGUF version 4"},
		{"version 0", header(0, 0, 0).b, ErrUnsupported, "unsupported GGUF version 0"},
		{"truncated magic", []byte("GGU"), ErrMalformed, "file is 3 bytes"},
		{"big-endian", swapped, ErrUnsupported, "big-endian"},
		{"short header", validV3[:20], ErrMalformed, "shorter than the 24-byte header"},
		{"kv count huge", header(3, 0, 1<<62).b, ErrMalformed, "metadata count 4611686018427387904"},
		{"tensor count huge", header(3, 1<<62, 0).b, ErrMalformed, "tensor count 4611686018427387904"},
		{"counts together too big", header(3, 1, 2).raw(make([]byte, 40)).b, ErrMalformed, "tensor count 1 with metadata count 2"},
		{"key length huge", header(3, 0, 1).u64(1 << 40).raw(make([]byte, 8)).b, ErrMalformed, "metadata entry 0: key length 1099511627776"},
		{"string value huge", header(3, 0, 1).kv("k", ValueString).u64(1 << 40).b, ErrMalformed, `metadata "k": string length 1099511627776`},
		{"duplicate key", header(3, 0, 2).kv("k", ValueUint8).u8(1).kv("k", ValueUint8).u8(2).b, ErrMalformed, `duplicate metadata key "k"`},
		{"unknown value type", header(3, 0, 1).kv("k", 13).u8(0).b, ErrMalformed, `metadata "k": unknown value type 13`},
		{"bad bool", header(3, 0, 1).kv("k", ValueBool).u8(2).b, ErrMalformed, "bool value 2"},
		{"bad bool in array", header(3, 0, 1).kv("k", ValueArray).u32(uint32(ValueBool)).u64(2).u8(1).u8(7).b, ErrMalformed, "bool value 7"},
		{"array length huge", header(3, 0, 1).kv("k", ValueArray).u32(uint32(ValueUint64)).u64(1 << 40).raw(make([]byte, 16)).b, ErrMalformed, "array of 1099511627776 uint64"},
		{"string array length huge", header(3, 0, 1).kv("k", ValueArray).u32(uint32(ValueString)).u64(1 << 61).b, ErrMalformed, "array of 2305843009213693952 string"},
		{"string in array too long", header(3, 0, 1).kv("k", ValueArray).u32(uint32(ValueString)).u64(2).str("a").u64(99).b, ErrMalformed, `metadata "k": array element 1: string length 99`},
		{"unknown array type", header(3, 0, 1).kv("k", ValueArray).u32(99).u64(0).b, ErrMalformed, "unknown array element type 99"},
		{"arrays too deep", deepArray(MaxArrayDepth + 1), ErrMalformed, "nested deeper than 8"},
		{"alignment not power of two", header(3, 0, 1).kv(KeyAlignment, ValueUint32).u32(48).b, ErrMalformed, "general.alignment is 48"},
		{"alignment zero", header(3, 0, 1).kv(KeyAlignment, ValueUint32).u32(0).b, ErrMalformed, "general.alignment is 0"},
		{"alignment huge", header(3, 0, 1).kv(KeyAlignment, ValueUint64).u64(1 << 40).b, ErrMalformed, "general.alignment is 1099511627776"},
		{"alignment string", header(3, 0, 1).kv(KeyAlignment, ValueString).str("32").b, ErrMalformed, "general.alignment is a string"},
		{"duplicate tensor", header(3, 2, 0).tensor("x", TypeF32, 0, 1).tensor("x", TypeF32, 32, 1).pad(32, 64).b, ErrMalformed, `duplicate tensor name "x"`},
		{"n_dims zero", header(3, 1, 0).tensor("x", TypeF32, 0).raw(make([]byte, 8)).b, ErrMalformed, `tensor "x": n_dims 0`},
		{"n_dims five", header(3, 1, 0).tensor("x", TypeF32, 0, 1, 1, 1, 1, 1).b, ErrMalformed, `tensor "x": n_dims 5`},
		{"dim beyond int64", header(3, 1, 0).tensor("x", TypeF32, 0, 1<<63).b, ErrMalformed, "beyond int64"},
		{"unknown tensor type", header(3, 1, 0).tensor("x", 99, 0, 1).b, ErrMalformed, `tensor "x": unknown tensor type 99`},
		{"retired tensor type", header(3, 1, 0).tensor("x", 31, 0, 32).b, ErrMalformed, "type 31 (Q4_0_4_4) was removed"},
		{"row not a block multiple", header(3, 1, 0).tensor("x", TypeQ4_K, 0, 128).b, ErrMalformed, "row length 128 is not a multiple of the Q4_K block size 256"},
		{"size overflows", header(3, 1, 0).tensor("x", TypeF32, 0, 1<<40, 1<<40).b, ErrMalformed, "overflows"},
		{"misaligned offset", header(3, 1, 0).tensor("x", TypeF32, 4, 1).pad(32, 64).b, ErrMalformed, "offset 4 is not a multiple of the alignment 32"},
		{"data beyond end", header(3, 1, 0).tensor("x", TypeF32, 0, 8).pad(32, 16).b, ErrMalformed, `tensor "x": data at offset 64+0 size 32 beyond end of file (size 80)`},
		{"offset beyond end", header(3, 1, 0).tensor("x", TypeF32, 1<<62, 1).pad(32, 4).b, ErrMalformed, "beyond end of file"},
		{"offset near 2^64", header(3, 1, 0).tensor("x", TypeF32, math.MaxUint64&^31, 1).pad(32, 4).b, ErrMalformed, "beyond end of file"},
		{"huge tensor", header(3, 1, 0).tensor("x", TypeF32, 0, 1<<30, 1<<30).pad(32, 4).b, ErrMalformed, "size 4611686018427387904 beyond end of file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse succeeded with %d tensors, want error", len(f.Tensors()))
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Parse error %q is not %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.HasPrefix(err.Error(), "gguf: ") {
				t.Errorf("Parse error = %q, want it to start with gguf: and contain %q", err, tt.wantMsg)
			}
		})
	}
}

// deepArray returns a file with one key holding arrays nested depth deep.
func deepArray(depth int) []byte {
	e := header(3, 0, 1).kv("deep", ValueArray)
	for range depth - 1 {
		e.u32(uint32(ValueArray)).u64(1)
	}
	return e.u32(uint32(ValueUint8)).u64(1).u8(7).b
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"no tensors, no padding", header(3, 0, 1).kv("k", ValueUint8).u8(1).b},
		{"max nesting", deepArray(MaxArrayDepth)},
		{"alignment as uint64", header(3, 1, 1).kv(KeyAlignment, ValueUint64).u64(8).tensor("x", TypeF32, 0, 1).pad(8, 4).b},
		{"alignment 1, odd offsets", header(3, 2, 1).kv(KeyAlignment, ValueUint8).u8(1).tensor("x", TypeI8, 0, 3).tensor("y", TypeI8, 3, 1).pad(1, 4).b},
		{"overlapping tensors", header(3, 2, 0).tensor("x", TypeF32, 0, 8).tensor("y", TypeF32, 0, 4).pad(32, 32).b},
		{"version 2", header(2, 0, 0).b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.data); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestHostileAllocations checks that absurd counts and lengths are refused
// before anything is sized by them: each Parse must allocate next to nothing.
func TestHostileAllocations(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"2^62 metadata entries", header(3, 0, 1<<62).raw(make([]byte, 64)).b},
		{"2^62 tensors", header(3, 1<<62, 0).raw(make([]byte, 64)).b},
		{"2^40-byte key", header(3, 0, 1).u64(1 << 40).raw(make([]byte, 64)).b},
		{"2^40-byte string", header(3, 0, 1).kv("k", ValueString).u64(1 << 40).raw(make([]byte, 64)).b},
		{"2^40 uint64s", header(3, 0, 1).kv("k", ValueArray).u32(uint32(ValueUint64)).u64(1 << 40).raw(make([]byte, 64)).b},
		{"2^60 strings", header(3, 0, 1).kv("k", ValueArray).u32(uint32(ValueString)).u64(1 << 60).raw(make([]byte, 64)).b},
		{"2^59 arrays", header(3, 0, 1).kv("k", ValueArray).u32(uint32(ValueArray)).u64(1 << 59).raw(make([]byte, 64)).b},
		{"2^40 x 2^40 tensor", header(3, 1, 0).tensor("x", TypeF32, 0, 1<<40, 1<<40).pad(32, 64).b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			allocated := bytesAllocated(func() { _, err = Parse(tt.data) })
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error = %v, want ErrMalformed", err)
			}
			if allocated > 16<<10 {
				t.Errorf("Parse allocated %d bytes for a %d-byte input", allocated, len(tt.data))
			}
			// A handful of allocations (the error and its wrapping: 4 to 6 here, up to
			// 17 under the race detector), never a number that grows with the claim.
			if n := testing.AllocsPerRun(10, func() { Parse(tt.data) }); n > 64 {
				t.Errorf("Parse made %v allocations, want at most 64", n)
			}
		})
	}
}

// bytesAllocated returns the bytes allocated on the heap while fn ran.
func bytesAllocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// vocabFile writes a file shaped like a tokenizer's metadata: n tokens,
// their scores and types.
func vocabFile(t testing.TB, n int) []byte {
	t.Helper()
	tokens := make([]string, n)
	scores := make([]float32, n)
	types := make([]int32, n)
	for i := range tokens {
		tokens[i] = "tok" + strings.Repeat("x", i%7)
		scores[i] = float32(-i)
		types[i] = 1
	}
	b := NewBuilder()
	for _, kv := range []struct {
		k string
		v Value
	}{
		{"tokenizer.ggml.model", ValueOf("gpt2")},
		{"tokenizer.ggml.tokens", ArrayOf(tokens)},
		{"tokenizer.ggml.scores", ArrayOf(scores)},
		{"tokenizer.ggml.token_type", ArrayOf(types)},
	} {
		if err := b.Set(kv.k, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestLargeVocabAllocations checks that a 150k-entry vocabulary costs a
// handful of allocations, not one per token.
func TestLargeVocabAllocations(t *testing.T) {
	const n = 150_000
	raw := vocabFile(t, n)
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) != n || toks[n-1] != "tok"+strings.Repeat("x", (n-1)%7) {
		t.Fatalf("tokens: ok %v, len %d", ok, len(toks))
	}
	if allocs := testing.AllocsPerRun(3, func() { Parse(raw) }); allocs > 40 {
		t.Errorf("Parse made %v allocations for a %d-token vocabulary, want at most 40", allocs, n)
	}
	if allocated := bytesAllocated(func() { Parse(raw) }); allocated > 4*uint64(len(raw)) {
		t.Errorf("Parse allocated %d bytes for a %d-byte file", allocated, len(raw))
	}
}

func BenchmarkParseVocab(b *testing.B) {
	raw := vocabFile(b, 150_000)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
