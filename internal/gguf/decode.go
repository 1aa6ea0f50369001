package gguf

import (
	"encoding/binary"
	"math"
	"strings"
)

// decoder reads little-endian fields from b, checking each against the
// bytes left.
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) short(what string, need uint64) error {
	return malformed("%s: need %d bytes at offset %d, only %d left", what, need, d.off, d.remaining())
}

func (d *decoder) u32(what string) (uint32, error) {
	if d.remaining() < 4 {
		return 0, d.short(what, 4)
	}
	x := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return x, nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if d.remaining() < 8 {
		return 0, d.short(what, 8)
	}
	x := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return x, nil
}

// bytes returns the next n bytes, which must be there.
func (d *decoder) bytes(what string, n uint64) ([]byte, error) {
	if n > uint64(d.remaining()) {
		return nil, d.short(what, n)
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p, nil
}

// strBytes reads a GGUF string (uint64 length, bytes) without copying it.
func (d *decoder) strBytes(what string) ([]byte, error) {
	n, err := d.u64(what)
	if err != nil {
		return nil, err
	}
	if n > uint64(d.remaining()) {
		return nil, malformed("%s length %d at offset %d exceeds the %d bytes left", what, n, d.off-8, d.remaining())
	}
	return d.bytes(what, n)
}

func (d *decoder) str(what string) (string, error) {
	p, err := d.strBytes(what)
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// value reads one value of type t; depth counts the arrays it is nested in.
func (d *decoder) value(t ValueType, depth int) (Value, error) {
	if !t.known() {
		return Value{}, malformed("unknown value type %d at offset %d", uint32(t), d.off-4)
	}
	switch t {
	case ValueString:
		s, err := d.str("string")
		return Value{typ: ValueString, str: s}, err
	case ValueArray:
		return d.array(depth + 1)
	}
	p, err := d.bytes("value", t.size())
	if err != nil {
		return Value{}, err
	}
	v := Value{typ: t}
	switch t {
	case ValueUint8:
		v.num = uint64(p[0])
	case ValueInt8:
		v.num = uint64(int64(int8(p[0])))
	case ValueUint16:
		v.num = uint64(binary.LittleEndian.Uint16(p))
	case ValueInt16:
		v.num = uint64(int64(int16(binary.LittleEndian.Uint16(p))))
	case ValueUint32, ValueFloat32:
		v.num = uint64(binary.LittleEndian.Uint32(p))
	case ValueInt32:
		v.num = uint64(int64(int32(binary.LittleEndian.Uint32(p))))
	case ValueUint64, ValueInt64, ValueFloat64:
		v.num = binary.LittleEndian.Uint64(p)
	case ValueBool:
		if p[0] > 1 {
			return Value{}, malformed("bool value %d at offset %d, want 0 or 1", p[0], d.off-1)
		}
		v.num = uint64(p[0])
	}
	return v, nil
}

// array reads an array's element type, length and elements. The length is
// checked against the bytes left (at the element type's smallest encoding)
// before the slice is allocated.
func (d *decoder) array(depth int) (Value, error) {
	if depth > MaxArrayDepth {
		return Value{}, malformed("arrays nested deeper than %d at offset %d", MaxArrayDepth, d.off)
	}
	et, err := d.u32("array element type")
	if err != nil {
		return Value{}, err
	}
	t := ValueType(et)
	if !t.known() {
		return Value{}, malformed("unknown array element type %d at offset %d", et, d.off-4)
	}
	n64, err := d.u64("array length")
	if err != nil {
		return Value{}, err
	}
	if rest := uint64(d.remaining()); n64 > rest/t.size() {
		return Value{}, malformed("array of %d %s at offset %d needs at least %d bytes per element, only %d bytes left", n64, t, d.off-8, t.size(), rest)
	}
	n := int(n64)
	v := Value{typ: ValueArray, elem: t}
	switch t {
	case ValueString:
		v.arr, err = d.strings(n)
		return v, err
	case ValueArray:
		vs := make([]Value, n)
		for i := range vs {
			if vs[i], err = d.value(ValueArray, depth); err != nil {
				return Value{}, wrap(err, "array element %d", i)
			}
		}
		v.arr = vs
		return v, nil
	}
	p, err := d.bytes("array", n64*t.size()) // n64*size <= remaining: no overflow
	if err != nil {
		return Value{}, err
	}
	v.arr, err = decodeFixed(t, p, n, d.off-len(p))
	return v, err
}

// decodeFixed decodes n fixed-size elements of type t from p.
func decodeFixed(t ValueType, p []byte, n, at int) (any, error) {
	le := binary.LittleEndian
	switch t {
	case ValueUint8:
		return append([]uint8(nil), p...), nil
	case ValueInt8:
		xs := make([]int8, n)
		for i := range xs {
			xs[i] = int8(p[i])
		}
		return xs, nil
	case ValueBool:
		xs := make([]bool, n)
		for i := range xs {
			if p[i] > 1 {
				return nil, malformed("bool value %d at offset %d, want 0 or 1", p[i], at+i)
			}
			xs[i] = p[i] == 1
		}
		return xs, nil
	case ValueUint16:
		xs := make([]uint16, n)
		for i := range xs {
			xs[i] = le.Uint16(p[2*i:])
		}
		return xs, nil
	case ValueInt16:
		xs := make([]int16, n)
		for i := range xs {
			xs[i] = int16(le.Uint16(p[2*i:]))
		}
		return xs, nil
	case ValueUint32:
		xs := make([]uint32, n)
		for i := range xs {
			xs[i] = le.Uint32(p[4*i:])
		}
		return xs, nil
	case ValueInt32:
		xs := make([]int32, n)
		for i := range xs {
			xs[i] = int32(le.Uint32(p[4*i:]))
		}
		return xs, nil
	case ValueFloat32:
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = math.Float32frombits(le.Uint32(p[4*i:]))
		}
		return xs, nil
	case ValueUint64:
		xs := make([]uint64, n)
		for i := range xs {
			xs[i] = le.Uint64(p[8*i:])
		}
		return xs, nil
	case ValueInt64:
		xs := make([]int64, n)
		for i := range xs {
			xs[i] = int64(le.Uint64(p[8*i:]))
		}
		return xs, nil
	case ValueFloat64:
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = math.Float64frombits(le.Uint64(p[8*i:]))
		}
		return xs, nil
	}
	return nil, malformed("array of %s cannot be decoded as fixed-size", t) // not reached
}

// strings reads n strings. It walks them once to find their total length,
// then copies all their bytes into one allocation and slices it, so a
// 150k-token vocabulary costs two allocations, not 150k.
func (d *decoder) strings(n int) ([]string, error) {
	start := d.off
	total := 0
	for i := 0; i < n; i++ {
		p, err := d.strBytes("string")
		if err != nil {
			return nil, wrap(err, "array element %d", i)
		}
		total += len(p)
	}
	var sb strings.Builder
	sb.Grow(total)
	d.off = start
	for i := 0; i < n; i++ { // the lengths were checked above
		l := int(binary.LittleEndian.Uint64(d.b[d.off:]))
		sb.Write(d.b[d.off+8 : d.off+8+l])
		d.off += 8 + l
	}
	all := sb.String()
	xs := make([]string, n)
	pos := 0
	d.off = start
	for i := range xs {
		l := int(binary.LittleEndian.Uint64(d.b[d.off:]))
		d.off += 8 + l
		xs[i] = all[pos : pos+l]
		pos += l
	}
	return xs, nil
}
