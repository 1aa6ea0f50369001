package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/bits"
	"sort"
)

// File is a parsed safetensors file.
type File struct {
	tensors  []Tensor // in data order
	byName   map[string]int
	metadata map[string]string
	dataOff  int64
	unmap    func() error
}

// Tensors returns the tensors in the order of their data in the file. The
// slice is the File's own; do not modify it.
func (f *File) Tensors() []Tensor { return f.tensors }

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (*Tensor, bool) {
	i, ok := f.byName[name]
	if !ok {
		return nil, false
	}
	return &f.tensors[i], true
}

// Metadata returns the header's __metadata__ map (nil when absent).
func (f *File) Metadata() map[string]string { return f.metadata }

// DataOffset is where the data section starts: 8 + the header length.
func (f *File) DataOffset() int64 { return f.dataOff }

// Close releases the mapping, if Open made one. Tensor data must not be
// used after Close.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	u := f.unmap
	f.unmap = nil
	return u()
}

// entry is a tensor's description in the header.
type entry struct {
	DType       *string  `json:"dtype"`
	Shape       []uint64 `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// Parse parses a whole safetensors file held in data. Tensor data slices
// point into data.
func Parse(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, malformed("%d bytes is too short for the header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderSize {
		return nil, malformed("header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, malformed("header length %d exceeds the %d bytes after it (truncated file?)", n, len(data)-8)
	}
	header := data[8 : 8+n]
	if len(header) == 0 || header[0] != '{' {
		return nil, malformed("header is not a JSON object")
	}
	buf := data[8+n:]
	f := &File{byName: make(map[string]int), dataOff: int64(8 + n)}

	dec := json.NewDecoder(bytes.NewReader(header))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, malformed("header is not a JSON object")
	}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed("header: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, malformed("header: key %v is not a string", tok)
		}
		if name == MetadataKey {
			if seenMeta {
				return nil, malformed("header: duplicate %s", MetadataKey)
			}
			seenMeta = true
			if err := dec.Decode(&f.metadata); err != nil {
				return nil, malformed("header: %s: %v", MetadataKey, err)
			}
			continue
		}
		if _, dup := f.byName[name]; dup {
			return nil, malformed("header: duplicate tensor %q", name)
		}
		var e entry
		if err := dec.Decode(&e); err != nil {
			return nil, malformed("header: tensor %q: %v", name, err)
		}
		t, err := checkEntry(name, &e, uint64(len(buf)))
		if err != nil {
			return nil, err
		}
		t.Offset = f.dataOff + int64(e.DataOffsets[0])
		t.Data = buf[e.DataOffsets[0]:e.DataOffsets[1]:e.DataOffsets[1]]
		f.byName[name] = len(f.tensors)
		f.tensors = append(f.tensors, t)
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed("header: %v", err)
	}
	// Only spaces may pad the header after the object (writers pad it to
	// a multiple of 8 bytes); anything else is a second value or garbage.
	rest := header[dec.InputOffset():]
	if len(bytes.TrimRight(rest, " \t\r\n")) != 0 {
		return nil, malformed("header: trailing data after the JSON object")
	}
	if err := f.checkTiling(uint64(len(buf))); err != nil {
		return nil, err
	}
	return f, nil
}

// checkEntry validates one tensor's description against a data section of
// size bytes.
func checkEntry(name string, e *entry, size uint64) (Tensor, error) {
	if e.DType == nil {
		return Tensor{}, malformed("tensor %q: no dtype", name)
	}
	if e.Shape == nil {
		return Tensor{}, malformed("tensor %q: no shape", name)
	}
	if len(e.DataOffsets) != 2 {
		return Tensor{}, malformed("tensor %q: data_offsets has %d values, want 2", name, len(e.DataOffsets))
	}
	dt := DType(*e.DType)
	if dt.Size() == 0 {
		if knownDTypes[*e.DType] {
			return Tensor{}, unsupported("tensor %q: dtype %s is not supported (F32, F16 and BF16 are)", name, *e.DType)
		}
		return Tensor{}, malformed("tensor %q: unknown dtype %q", name, *e.DType)
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin > end || end > size {
		return Tensor{}, malformed("tensor %q: data_offsets [%d, %d] outside the %d-byte data section", name, begin, end, size)
	}
	// The product of the shape, overflow-checked; with end ≤ size it
	// then also fits in an int.
	elems := uint64(1)
	shape := make([]int, len(e.Shape))
	for i, d := range e.Shape {
		hi, lo := bits.Mul64(elems, d)
		if hi != 0 || d > math.MaxInt {
			return Tensor{}, malformed("tensor %q: shape %v overflows", name, e.Shape)
		}
		elems = lo
		shape[i] = int(d)
	}
	hi, nbytes := bits.Mul64(elems, uint64(dt.Size()))
	if hi != 0 || nbytes != end-begin {
		return Tensor{}, malformed("tensor %q: shape %v of %s needs %d×%d bytes, data_offsets give %d",
			name, e.Shape, dt, elems, dt.Size(), end-begin)
	}
	return Tensor{Name: name, DType: dt, Shape: shape}, nil
}

// checkTiling requires the tensors' byte ranges to cover the data section
// exactly: sorted by offset, each starts where the previous ended and the
// last ends at the end of the file. That rules out overlaps (two tensors
// sharing bytes), holes and trailing bytes, as the reference reader does.
// f.tensors ends up in data order.
func (f *File) checkTiling(size uint64) error {
	off := func(t *Tensor) uint64 { return uint64(t.Offset - f.dataOff) }
	sort.SliceStable(f.tensors, func(i, j int) bool {
		a, b := &f.tensors[i], &f.tensors[j]
		if off(a) != off(b) {
			return off(a) < off(b)
		}
		return len(a.Data) < len(b.Data)
	})
	pos := uint64(0)
	for i := range f.tensors {
		t := &f.tensors[i]
		if off(t) != pos {
			if off(t) < pos {
				return malformed("tensor %q at data offset %d overlaps the tensor before it (ending at %d)", t.Name, off(t), pos)
			}
			return malformed("hole in the data section: bytes [%d, %d) belong to no tensor", pos, off(t))
		}
		pos += uint64(len(t.Data))
		f.byName[t.Name] = i
	}
	if pos != size {
		return malformed("data section has %d bytes, tensors cover %d", size, pos)
	}
	return nil
}
