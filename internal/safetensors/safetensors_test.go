package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sample is a small file with all three dtypes, metadata and a scalar.
func sample(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	err := Write(&b, []Data{
		{TensorInfo{"a.weight", F32, []int{2, 3}}, seq(24)},
		{TensorInfo{"b.bias", F16, []int{3}}, seq(6)},
		{TensorInfo{"c", BF16, []int{}}, seq(2)},
		{TensorInfo{"empty", F32, []int{0, 4}}, nil},
	}, map[string]string{"format": "pt", "note": "<&>"})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func seq(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i + 1)
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	data := sample(t)
	if (binary.LittleEndian.Uint64(data)+8)%8 != 0 {
		t.Errorf("data section not 8-byte aligned")
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Metadata(), map[string]string{"format": "pt", "note": "<&>"}; !reflect.DeepEqual(got, want) {
		t.Errorf("metadata = %v, want %v", got, want)
	}
	tests := []struct {
		name  string
		dtype DType
		shape []int
		data  []byte
	}{
		{"a.weight", F32, []int{2, 3}, seq(24)},
		{"b.bias", F16, []int{3}, seq(6)},
		{"c", BF16, []int{}, seq(2)},
		{"empty", F32, []int{0, 4}, []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, ok := f.Tensor(tt.name)
			if !ok {
				t.Fatal("missing")
			}
			if ts.DType != tt.dtype || !reflect.DeepEqual(ts.Shape, tt.shape) || !bytes.Equal(ts.Data, tt.data) {
				t.Errorf("got %s %v %v, want %s %v %v", ts.DType, ts.Shape, ts.Data, tt.dtype, tt.shape, tt.data)
			}
			if len(ts.Data) > 0 && &ts.Data[0] != &data[ts.Offset] {
				t.Errorf("Data is not a slice of the input at Offset %d", ts.Offset)
			}
		})
	}
	if got := len(f.Tensors()); got != 4 {
		t.Errorf("%d tensors, want 4", got)
	}
}

func TestHeaderBytes(t *testing.T) {
	h, err := Header([]TensorInfo{{"x.weight", F16, []int{2, 3}}, {"y", F32, []int{1}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"x.weight":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"y":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}`
	for len(want)%8 != 0 {
		want += " "
	}
	if got := string(h[8:]); got != want {
		t.Errorf("header\n got %q\nwant %q", got, want)
	}
	if n := binary.LittleEndian.Uint64(h); n != uint64(len(want)) {
		t.Errorf("length %d, want %d", n, len(want))
	}
}

func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := os.WriteFile(path, sample(t), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ts, ok := f.Tensor("a.weight")
	if !ok || !bytes.Equal(ts.Data, seq(24)) {
		t.Errorf("a.weight = %v, want %v", ts, seq(24))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	short := filepath.Join(t.TempDir(), "short.safetensors")
	if err := os.WriteFile(short, []byte{1, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(short); !errors.Is(err, ErrMalformed) {
		t.Errorf("Open(short) = %v, want ErrMalformed", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Open(missing) succeeded")
	}
}

// TestTruncated cuts the sample at every length: each prefix must fail
// cleanly.
func TestTruncated(t *testing.T) {
	data := sample(t)
	for n := 0; n < len(data); n++ {
		if _, err := Parse(data[:n:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Parse(first %d of %d bytes) = %v, want ErrMalformed", n, len(data), err)
		}
	}
}

// file builds a file from a raw header and a data section.
func file(header string, dataLen int) []byte {
	b := make([]byte, 8, 8+len(header)+dataLen)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, dataLen)...)
}

func TestHostileHeaders(t *testing.T) {
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, MaxHeaderSize+1)
	wrap := make([]byte, 16)
	binary.LittleEndian.PutUint64(wrap, ^uint64(0))
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"header over the cap", append(huge, '{', '}'), ErrMalformed, "limit"},
		{"header length wraps", wrap, ErrMalformed, "limit"},
		{"header past the end", file(`{}`, 0)[:9], ErrMalformed, "exceeds"},
		{"not an object", file(`[]`, 0), ErrMalformed, "JSON object"},
		{"empty header", file(``, 0), ErrMalformed, "JSON object"},
		{"bad json", file(`{"a":`, 0), ErrMalformed, "header"},
		{"trailing value", file(`{}{}`, 0), ErrMalformed, "trailing"},
		{"duplicate tensor", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), ErrMalformed, "duplicate"},
		{"unsupported dtype", file(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, 8), ErrUnsupported, "I64"},
		{"unknown dtype", file(`{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,8]}}`, 8), ErrMalformed, "Q4"},
		{"no dtype", file(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, 4), ErrMalformed, "dtype"},
		{"no shape", file(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, 4), ErrMalformed, "shape"},
		{"one offset", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4), ErrMalformed, "data_offsets"},
		{"negative dim", file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), ErrMalformed, "a"},
		{"fractional dim", file(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, 4), ErrMalformed, "a"},
		{"begin after end", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, 4), ErrMalformed, "outside"},
		{"end past data", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), ErrMalformed, "outside"},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), ErrMalformed, "needs"},
		{"shape overflow", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}}`, 0), ErrMalformed, "overflow"},
		{"bytes overflow", file(`{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}`, 0), ErrMalformed, "needs"},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), ErrMalformed, "overlaps"},
		{"hole", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), ErrMalformed, "hole"},
		{"trailing data", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8), ErrMalformed, "cover"},
		{"metadata not strings", file(`{"__metadata__":{"a":1}}`, 0), ErrMalformed, "__metadata__"},
		{"duplicate metadata", file(`{"__metadata__":{},"__metadata__":{}}`, 0), ErrMalformed, "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.data)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Parse = %v, want %v mentioning %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestPaddingAccepted(t *testing.T) {
	f, err := Parse(file(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}   `, 4))
	if err != nil {
		t.Fatal(err)
	}
	if ts, _ := f.Tensor("a"); ts.Offset != f.DataOffset() {
		t.Errorf("offset %d, want %d", ts.Offset, f.DataOffset())
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []Data
	}{
		{"bad dtype", []Data{{TensorInfo{"a", "I8", []int{1}}, []byte{0}}}},
		{"wrong size", []Data{{TensorInfo{"a", F32, []int{2}}, []byte{0}}}},
		{"duplicate", []Data{{TensorInfo{"a", F16, []int{1}}, []byte{0, 0}}, {TensorInfo{"a", F16, []int{1}}, []byte{0, 0}}}},
		{"reserved", []Data{{TensorInfo{MetadataKey, F16, []int{1}}, []byte{0, 0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Write(&bytes.Buffer{}, tt.in, nil); err == nil {
				t.Error("Write succeeded")
			}
		})
	}
}
