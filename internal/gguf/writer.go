package gguf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Builder assembles a GGUF file: metadata in the order first set, tensors in
// the order added. It writes version 3, little-endian, with each tensor's
// data aligned to general.alignment (32 unless set). It exists mainly to
// write test fixtures; it holds the tensor data it is given until written.
type Builder struct {
	version uint32
	keys    []string
	values  []Value
	keyIdx  map[string]int
	tensors []builderTensor
	names   map[string]bool
}

type builderTensor struct {
	info TensorInfo
	data []byte
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{version: 3, keyIdx: map[string]int{}, names: map[string]bool{}}
}

// SetVersion selects the GGUF version written: 3 (the default) or 2. The two
// share one layout; version 2 is only useful to test readers.
func (b *Builder) SetVersion(v uint32) error {
	if v != 2 && v != 3 {
		return fmt.Errorf("gguf: cannot write version %d, only 2 or 3", v)
	}
	b.version = v
	return nil
}

// Set sets key to v. A key set again keeps its first position. It refuses
// values the reader would refuse: unknown types, arrays nested deeper than
// MaxArrayDepth, arrays of arrays holding non-arrays, and a bad
// general.alignment.
func (b *Builder) Set(key string, v Value) error {
	if err := checkValue(v, 0); err != nil {
		return fmt.Errorf("gguf: set %q: %w", key, err)
	}
	if key == KeyAlignment {
		if _, err := checkAlignment(v); err != nil {
			return fmt.Errorf("gguf: set %q: %w", key, err)
		}
	}
	if i, ok := b.keyIdx[key]; ok {
		b.values[i] = v
		return nil
	}
	b.keyIdx[key] = len(b.keys)
	b.keys = append(b.keys, key)
	b.values = append(b.values, v)
	return nil
}

// SetAlignment sets general.alignment (as a uint32, as ggml writes it).
func (b *Builder) SetAlignment(n uint32) error {
	return b.Set(KeyAlignment, ValueOf(n))
}

func checkValue(v Value, depth int) error {
	if !v.typ.known() {
		return fmt.Errorf("unknown value type %d", uint32(v.typ))
	}
	if v.typ != ValueArray {
		return nil
	}
	depth++
	if depth > MaxArrayDepth {
		return fmt.Errorf("arrays nested deeper than %d", MaxArrayDepth)
	}
	if v.arr == nil {
		return errors.New("array value without elements slice (use ArrayOf)")
	}
	if vs, ok := v.arr.([]Value); ok {
		for i, e := range vs {
			if e.typ != ValueArray {
				return fmt.Errorf("element %d of an array of arrays is a %s", i, e.typ)
			}
			if err := checkValue(e, depth); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	}
	return nil
}

// AddTensor adds a tensor with the given type, dimensions (row length first)
// and raw data, whose length must be the size the type and dimensions give
// (see TensorSize). The data is not copied and must not change until written.
func (b *Builder) AddTensor(name string, t Type, dims []uint64, data []byte) error {
	if b.names[name] {
		return fmt.Errorf("gguf: add tensor %q: duplicate name", name)
	}
	size, err := TensorSize(t, dims)
	if err != nil {
		return fmt.Errorf("gguf: add tensor %q: %w", name, err)
	}
	if uint64(len(data)) != size {
		return fmt.Errorf("gguf: add tensor %q: %d bytes of data, want %d for %s %v", name, len(data), size, t, dims)
	}
	b.names[name] = true
	info := TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: t, Size: size}
	b.tensors = append(b.tensors, builderTensor{info: info, data: data})
	return nil
}

func (b *Builder) alignment() uint64 {
	if i, ok := b.keyIdx[KeyAlignment]; ok {
		a, _ := b.values[i].AsUint() // checked by Set
		return a
	}
	return DefaultAlignment
}

// WriteTo writes the file to w and returns the bytes written.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	align := b.alignment()
	le := binary.LittleEndian

	// Everything before the data section is built in memory: it is small
	// next to the tensors, which are streamed after it.
	head := []byte(magic)
	head = le.AppendUint32(head, b.version)
	head = le.AppendUint64(head, uint64(len(b.tensors)))
	head = le.AppendUint64(head, uint64(len(b.keys)))
	for i, k := range b.keys {
		head = appendString(head, k)
		head = le.AppendUint32(head, uint32(b.values[i].typ))
		head = appendValue(head, b.values[i])
	}
	var off uint64
	for i := range b.tensors {
		t := &b.tensors[i].info
		t.Offset = off
		head = appendString(head, t.Name)
		head = le.AppendUint32(head, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			head = le.AppendUint64(head, d)
		}
		head = le.AppendUint32(head, uint32(t.Type))
		head = le.AppendUint64(head, t.Offset)
		off = alignUp(off+t.Size, align)
	}
	head = append(head, make([]byte, alignUp(uint64(len(head)), align)-uint64(len(head)))...)

	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<16)
	bw.Write(head) // bufio keeps the first error; Flush reports it
	for _, t := range b.tensors {
		bw.Write(t.data)
		for n := alignUp(t.info.Size, align) - t.info.Size; n > 0; n-- {
			bw.WriteByte(0)
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("gguf: write: %w", err)
	}
	return cw.n, nil
}

// Bytes returns the file's bytes.
func (b *Builder) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteFile writes the file to path, creating or truncating it.
func (b *Builder) WriteFile(path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("gguf: %w", cerr)
		}
	}()
	_, err = b.WriteTo(f)
	return err
}

func alignUp(x, a uint64) uint64 { return (x + a - 1) &^ (a - 1) }

func appendString(p []byte, s string) []byte {
	p = binary.LittleEndian.AppendUint64(p, uint64(len(s)))
	return append(p, s...)
}

// appendValue appends v's encoding, without its type tag.
func appendValue(p []byte, v Value) []byte {
	le := binary.LittleEndian
	switch v.typ {
	case ValueUint8, ValueInt8, ValueBool:
		return append(p, byte(v.num))
	case ValueUint16, ValueInt16:
		return le.AppendUint16(p, uint16(v.num))
	case ValueUint32, ValueInt32, ValueFloat32:
		return le.AppendUint32(p, uint32(v.num))
	case ValueUint64, ValueInt64, ValueFloat64:
		return le.AppendUint64(p, v.num)
	case ValueString:
		return appendString(p, v.str)
	}
	// An array: element type, length, elements.
	p = le.AppendUint32(p, uint32(v.elem))
	p = le.AppendUint64(p, uint64(v.Len()))
	switch a := v.arr.(type) {
	case []uint8:
		return append(p, a...)
	case []int8:
		for _, x := range a {
			p = append(p, byte(x))
		}
	case []bool:
		for _, x := range a {
			if x {
				p = append(p, 1)
			} else {
				p = append(p, 0)
			}
		}
	case []uint16:
		for _, x := range a {
			p = le.AppendUint16(p, x)
		}
	case []int16:
		for _, x := range a {
			p = le.AppendUint16(p, uint16(x))
		}
	case []uint32:
		for _, x := range a {
			p = le.AppendUint32(p, x)
		}
	case []int32:
		for _, x := range a {
			p = le.AppendUint32(p, uint32(x))
		}
	case []float32:
		for _, x := range a {
			p = le.AppendUint32(p, math.Float32bits(x))
		}
	case []uint64:
		for _, x := range a {
			p = le.AppendUint64(p, x)
		}
	case []int64:
		for _, x := range a {
			p = le.AppendUint64(p, uint64(x))
		}
	case []float64:
		for _, x := range a {
			p = le.AppendUint64(p, math.Float64bits(x))
		}
	case []string:
		for _, x := range a {
			p = appendString(p, x)
		}
	case []Value:
		// Elements of an array of arrays carry no type tag of their own:
		// each is its element type, length and elements (as gguf-py writes).
		for _, x := range a {
			p = appendValue(p, x)
		}
	}
	return p
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
