package safetensors

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes. It must never panic, must fail only
// with the package's errors, and on success every tensor's data must be the
// input's bytes at its offset, with the size its shape and dtype give, and
// the tensors must tile the data section; the file must survive a rewrite.
//
//	go test -run='^$' -fuzz=FuzzParse -fuzztime=30s -parallel=1 ./internal/safetensors/
func FuzzParse(f *testing.F) {
	f.Add(sample(f))
	f.Add(file(`{}`, 0))
	f.Add(file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[],"data_offsets":[8,10]}}`, 10))
	f.Add(file(`{"__metadata__":{"k":"v"},"a":{"dtype":"F16","shape":[0],"data_offsets":[0,0]}}`, 0))
	f.Add(file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is not one of the package's errors", err)
			}
			return
		}
		pos := file.DataOffset()
		var rewrite []Data
		for _, ts := range file.Tensors() {
			if ts.Offset != pos {
				t.Fatalf("tensor %q at %d, want %d (tiling)", ts.Name, ts.Offset, pos)
			}
			if len(ts.Data) != ts.Elements()*ts.DType.Size() {
				t.Fatalf("tensor %q: %d bytes for shape %v of %s", ts.Name, len(ts.Data), ts.Shape, ts.DType)
			}
			if len(ts.Data) > 0 && &ts.Data[0] != &data[ts.Offset] {
				t.Fatalf("tensor %q: data is not input[%d:]", ts.Name, ts.Offset)
			}
			pos += int64(len(ts.Data))
			rewrite = append(rewrite, Data{TensorInfo{ts.Name, ts.DType, ts.Shape}, ts.Data})
		}
		if pos != int64(len(data)) {
			t.Fatalf("tensors end at %d of %d bytes", pos, len(data))
		}
		var b bytes.Buffer
		if err := Write(&b, rewrite, file.Metadata()); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		again, err := Parse(b.Bytes())
		if err != nil {
			t.Fatalf("parse rewrite: %v", err)
		}
		if len(again.Tensors()) != len(file.Tensors()) {
			t.Fatalf("rewrite has %d tensors, want %d", len(again.Tensors()), len(file.Tensors()))
		}
		for _, ts := range file.Tensors() {
			got, ok := again.Tensor(ts.Name)
			if !ok || !bytes.Equal(got.Data, ts.Data) || got.DType != ts.DType {
				t.Fatalf("rewrite lost tensor %q", ts.Name)
			}
		}
	})
}
