package gguf

import (
	"fmt"
	"math"
	"strings"
)

// ValueType is the type of a metadata value, numbered as in the GGUF spec.
type ValueType uint32

// The GGUF metadata value types.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

var valueTypeNames = [...]string{
	ValueUint8:   "uint8",
	ValueInt8:    "int8",
	ValueUint16:  "uint16",
	ValueInt16:   "int16",
	ValueUint32:  "uint32",
	ValueInt32:   "int32",
	ValueFloat32: "float32",
	ValueBool:    "bool",
	ValueString:  "string",
	ValueArray:   "array",
	ValueUint64:  "uint64",
	ValueInt64:   "int64",
	ValueFloat64: "float64",
}

// String returns the spec's name for t ("uint32"), or "valuetype(N)".
func (t ValueType) String() string {
	if t.known() {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(t))
}

func (t ValueType) known() bool { return t <= ValueFloat64 }

// size returns the encoded size of a fixed-size value, or, for strings and
// arrays, the size of the shortest encoding (an empty string is its 8-byte
// length; an empty array its 4-byte type and 8-byte length). The reader uses
// it to bound array lengths by the bytes left before allocating.
func (t ValueType) size() uint64 {
	switch t {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueUint64, ValueInt64, ValueFloat64, ValueString:
		return 8
	case ValueArray:
		return 12
	}
	return 0
}

func (t ValueType) isInt() bool {
	switch t {
	case ValueUint8, ValueInt8, ValueUint16, ValueInt16, ValueUint32, ValueInt32, ValueUint64, ValueInt64:
		return true
	}
	return false
}

func (t ValueType) isSigned() bool {
	return t == ValueInt8 || t == ValueInt16 || t == ValueInt32 || t == ValueInt64
}

// Value is one metadata value: a scalar, a string, or an array whose
// elements all have one type. Arrays keep their elements in a typed slice
// ([]uint32, []string, …; []Value for arrays of arrays) so that large arrays
// such as a tokenizer's vocabulary cost one allocation, not one per element.
//
// Values are immutable once built; slices returned by its methods are shared
// with the Value and must not be modified. The zero Value is the uint8 0.
type Value struct {
	typ  ValueType
	elem ValueType // element type of an array
	num  uint64    // integers (signed ones sign-extended), bool, float bits
	str  string
	arr  any // typed slice, see above
}

// Scalar lists the Go types that map to a GGUF scalar or string value.
type Scalar interface {
	uint8 | int8 | uint16 | int16 | uint32 | int32 | uint64 | int64 | float32 | float64 | bool | string
}

// Element lists the Go types that can be array elements: the scalars, and
// Value for arrays of arrays (each element then must itself be an array).
type Element interface {
	Scalar | Value
}

// ValueOf returns the Value holding x, typed after x's Go type:
// ValueOf(uint32(32)) is a GGUF uint32.
func ValueOf[T Scalar](x T) Value {
	switch x := any(x).(type) {
	case uint8:
		return Value{typ: ValueUint8, num: uint64(x)}
	case int8:
		return Value{typ: ValueInt8, num: uint64(int64(x))}
	case uint16:
		return Value{typ: ValueUint16, num: uint64(x)}
	case int16:
		return Value{typ: ValueInt16, num: uint64(int64(x))}
	case uint32:
		return Value{typ: ValueUint32, num: uint64(x)}
	case int32:
		return Value{typ: ValueInt32, num: uint64(int64(x))}
	case uint64:
		return Value{typ: ValueUint64, num: x}
	case int64:
		return Value{typ: ValueInt64, num: uint64(x)}
	case float32:
		return Value{typ: ValueFloat32, num: uint64(math.Float32bits(x))}
	case float64:
		return Value{typ: ValueFloat64, num: math.Float64bits(x)}
	case bool:
		v := Value{typ: ValueBool}
		if x {
			v.num = 1
		}
		return v
	case string:
		return Value{typ: ValueString, str: x}
	}
	panic("unreachable")
}

// ArrayOf returns an array Value holding xs (not a copy). For []Value every
// element must be an array; the Builder refuses the value otherwise.
func ArrayOf[T Element](xs []T) Value {
	v := Value{typ: ValueArray, arr: xs}
	switch any(xs).(type) {
	case []uint8:
		v.elem = ValueUint8
	case []int8:
		v.elem = ValueInt8
	case []uint16:
		v.elem = ValueUint16
	case []int16:
		v.elem = ValueInt16
	case []uint32:
		v.elem = ValueUint32
	case []int32:
		v.elem = ValueInt32
	case []uint64:
		v.elem = ValueUint64
	case []int64:
		v.elem = ValueInt64
	case []float32:
		v.elem = ValueFloat32
	case []float64:
		v.elem = ValueFloat64
	case []bool:
		v.elem = ValueBool
	case []string:
		v.elem = ValueString
	case []Value:
		v.elem = ValueArray
	}
	return v
}

// Type returns the value's type.
func (v Value) Type() ValueType { return v.typ }

// ElemType returns the element type of an array value, and ok false for
// other values.
func (v Value) ElemType() (t ValueType, ok bool) {
	if v.typ != ValueArray {
		return 0, false
	}
	return v.elem, true
}

// Len returns the number of elements of an array value, and 0 otherwise.
func (v Value) Len() int {
	switch a := v.arr.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float32:
		return len(a)
	case []float64:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []Value:
		return len(a)
	}
	return 0
}

// AsUint returns an integer value of any width or signedness as a uint64,
// and ok false if v is not an integer or is negative.
func (v Value) AsUint() (uint64, bool) {
	if !v.typ.isInt() || (v.typ.isSigned() && int64(v.num) < 0) {
		return 0, false
	}
	return v.num, true
}

// AsInt returns an integer value of any width or signedness as an int64, and
// ok false if v is not an integer or is a uint64 above math.MaxInt64.
func (v Value) AsInt() (int64, bool) {
	if !v.typ.isInt() || (!v.typ.isSigned() && v.num > math.MaxInt64) {
		return 0, false
	}
	return int64(v.num), true
}

// AsFloat returns a float32 or float64 value as a float64. Integer values
// are converted too (exactly up to 2^53); other types give ok false.
func (v Value) AsFloat() (float64, bool) {
	switch {
	case v.typ == ValueFloat32:
		return float64(math.Float32frombits(uint32(v.num))), true
	case v.typ == ValueFloat64:
		return math.Float64frombits(v.num), true
	case v.typ.isSigned():
		return float64(int64(v.num)), true
	case v.typ.isInt():
		return float64(v.num), true
	}
	return 0, false
}

// AsBool returns a bool value, and ok false for other types.
func (v Value) AsBool() (b, ok bool) {
	if v.typ != ValueBool {
		return false, false
	}
	return v.num != 0, true
}

// AsString returns a string value, and ok false for other types.
func (v Value) AsString() (string, bool) {
	if v.typ != ValueString {
		return "", false
	}
	return v.str, true
}

// AsStrings returns an array of strings. The slice is shared with v.
func (v Value) AsStrings() ([]string, bool) {
	a, ok := v.arr.([]string)
	return a, ok
}

// AsInts returns an array of any integer type as a new []int64, and ok false
// if v is not an integer array or holds a uint64 above math.MaxInt64.
func (v Value) AsInts() ([]int64, bool) {
	switch a := v.arr.(type) {
	case []uint8:
		return widen(a), true
	case []int8:
		return widen(a), true
	case []uint16:
		return widen(a), true
	case []int16:
		return widen(a), true
	case []uint32:
		return widen(a), true
	case []int32:
		return widen(a), true
	case []int64:
		return append([]int64(nil), a...), true
	case []uint64:
		out := make([]int64, len(a))
		for i, x := range a {
			if x > math.MaxInt64 {
				return nil, false
			}
			out[i] = int64(x)
		}
		return out, true
	}
	return nil, false
}

func widen[T uint8 | int8 | uint16 | int16 | uint32 | int32](a []T) []int64 {
	out := make([]int64, len(a))
	for i, x := range a {
		out[i] = int64(x)
	}
	return out
}

// AsFloats returns an array of float32 or float64 as a new []float64, and
// ok false for other arrays. Use Interface for the stored []float32 itself.
func (v Value) AsFloats() ([]float64, bool) {
	switch a := v.arr.(type) {
	case []float32:
		out := make([]float64, len(a))
		for i, x := range a {
			out[i] = float64(x)
		}
		return out, true
	case []float64:
		return append([]float64(nil), a...), true
	}
	return nil, false
}

// AsArray returns an array of arrays ([]Value, shared with v), and ok false
// for other values.
func (v Value) AsArray() ([]Value, bool) {
	a, ok := v.arr.([]Value)
	return a, ok
}

// Interface returns the value as its Go type: uint8 … float64, bool,
// string, or for arrays the stored typed slice ([]float32, []string,
// []Value, …), shared with v and not to be modified.
func (v Value) Interface() any {
	switch v.typ {
	case ValueUint8:
		return uint8(v.num)
	case ValueInt8:
		return int8(v.num)
	case ValueUint16:
		return uint16(v.num)
	case ValueInt16:
		return int16(v.num)
	case ValueUint32:
		return uint32(v.num)
	case ValueInt32:
		return int32(v.num)
	case ValueUint64:
		return v.num
	case ValueInt64:
		return int64(v.num)
	case ValueFloat32:
		return math.Float32frombits(uint32(v.num))
	case ValueFloat64:
		return math.Float64frombits(v.num)
	case ValueBool:
		return v.num != 0
	case ValueString:
		return v.str
	case ValueArray:
		return v.arr
	}
	return nil
}

// maxShown is how many array elements String prints before eliding.
const maxShown = 8

// String formats v for people: scalars as Go prints them, strings quoted,
// arrays with at most a few elements and their length.
func (v Value) String() string {
	switch v.typ {
	case ValueString:
		return fmt.Sprintf("%q", v.str)
	case ValueArray:
		n := v.Len()
		var sb strings.Builder
		sb.WriteString("[")
		for i := 0; i < n && i < maxShown; i++ {
			if i > 0 {
				sb.WriteString(" ")
			}
			sb.WriteString(v.index(i).String())
		}
		if n > maxShown {
			fmt.Fprintf(&sb, " … (%d %s)", n, v.elem)
		}
		sb.WriteString("]")
		return sb.String()
	}
	return fmt.Sprint(v.Interface())
}

// index returns element i of an array as a Value (boxing; for String only).
func (v Value) index(i int) Value {
	switch a := v.arr.(type) {
	case []uint8:
		return ValueOf(a[i])
	case []int8:
		return ValueOf(a[i])
	case []uint16:
		return ValueOf(a[i])
	case []int16:
		return ValueOf(a[i])
	case []uint32:
		return ValueOf(a[i])
	case []int32:
		return ValueOf(a[i])
	case []uint64:
		return ValueOf(a[i])
	case []int64:
		return ValueOf(a[i])
	case []float32:
		return ValueOf(a[i])
	case []float64:
		return ValueOf(a[i])
	case []bool:
		return ValueOf(a[i])
	case []string:
		return ValueOf(a[i])
	case []Value:
		return a[i]
	}
	return Value{}
}
