package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// TensorInfo describes a tensor to write: its data follows the header in
// the order given, with no gaps.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
}

// Header returns the file's first bytes for these tensors: the 8-byte
// length, then the JSON header with the tensors in the given order (after
// __metadata__, when metadata is non-empty), no spaces, padded with spaces
// to a multiple of 8 bytes so the data starts aligned. This is the layout
// of the reference writer, so a file built from the same tensors matches it
// byte for byte.
func Header(tensors []TensorInfo, metadata map[string]string) ([]byte, error) {
	var h bytes.Buffer
	h.WriteByte('{')
	if len(metadata) > 0 {
		h.WriteString(quote(MetadataKey))
		h.WriteByte(':')
		m, err := json.Marshal(metadata) // sorted keys
		if err != nil {
			return nil, fmt.Errorf("safetensors: metadata: %w", err)
		}
		h.Write(m)
	}
	seen := make(map[string]bool, len(tensors))
	var off uint64
	for i, t := range tensors {
		if t.DType.Size() == 0 {
			return nil, fmt.Errorf("safetensors: tensor %q: cannot write dtype %q", t.Name, t.DType)
		}
		if seen[t.Name] || t.Name == MetadataKey {
			return nil, fmt.Errorf("safetensors: duplicate or reserved tensor name %q", t.Name)
		}
		seen[t.Name] = true
		if i > 0 || len(metadata) > 0 {
			h.WriteByte(',')
		}
		n := uint64(t.DType.Size())
		h.WriteString(quote(t.Name))
		h.WriteString(`:{"dtype":"`)
		h.WriteString(string(t.DType))
		h.WriteString(`","shape":[`)
		for j, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors: tensor %q: negative dimension in %v", t.Name, t.Shape)
			}
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
			n *= uint64(d)
		}
		h.WriteString(`],"data_offsets":[`)
		h.WriteString(strconv.FormatUint(off, 10))
		h.WriteByte(',')
		off += n
		h.WriteString(strconv.FormatUint(off, 10))
		h.WriteString("]}")
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	out := make([]byte, 8, 8+h.Len())
	binary.LittleEndian.PutUint64(out, uint64(h.Len()))
	return append(out, h.Bytes()...), nil
}

// quote writes s as a JSON string without HTML escaping, as Python's
// json.dumps would (the reference writer's escaping of < > & differs from
// encoding/json's default).
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// Data is a tensor with its bytes, for Write.
type Data struct {
	TensorInfo
	// Bytes is the tensor's data, little-endian, row-major.
	Bytes []byte
}

// Write writes a whole file: the header, then each tensor's bytes.
func Write(w io.Writer, tensors []Data, metadata map[string]string) error {
	infos := make([]TensorInfo, len(tensors))
	for i, t := range tensors {
		infos[i] = t.TensorInfo
		want := t.DType.Size()
		for _, d := range t.Shape {
			want *= d
		}
		if len(t.Bytes) != want {
			return fmt.Errorf("safetensors: tensor %q: %d bytes, shape %v of %s needs %d", t.Name, len(t.Bytes), t.Shape, t.DType, want)
		}
	}
	h, err := Header(infos, metadata)
	if err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return fmt.Errorf("safetensors: write header: %w", err)
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Bytes); err != nil {
			return fmt.Errorf("safetensors: write %q: %w", t.Name, err)
		}
	}
	return nil
}
