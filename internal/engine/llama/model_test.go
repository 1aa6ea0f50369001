package llama

import (
	"errors"
	"strings"
	"testing"

	"github.com/neovratz/neovratz/internal/engine/llama/llamatest"
	"github.com/neovratz/neovratz/internal/gguf"
)

// rebuild copies f into a new file, letting edit change or drop (by returning false) each
// key and tensor.
func rebuild(t *testing.T, f *gguf.File, editKV func(k string, v gguf.Value) (gguf.Value, bool), editT func(ti *gguf.TensorInfo, data []byte) ([]byte, bool)) *gguf.File {
	t.Helper()
	b := gguf.NewBuilder()
	for _, k := range f.Keys() {
		v, _ := f.Value(k)
		if editKV != nil {
			var keep bool
			if v, keep = editKV(k, v); !keep {
				continue
			}
		}
		if err := b.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, ti := range f.Tensors() {
		data, err := f.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		ti.Dims = append([]uint64(nil), ti.Dims...)
		if editT != nil {
			var keep bool
			if data, keep = editT(&ti, data); !keep {
				continue
			}
		}
		if err := b.AddTensor(ti.Name, ti.Type, ti.Dims, data); err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestLoadRefusesBadModels(t *testing.T) {
	data, err := llamatest.Build(llamatest.Small("qwen2", gguf.TypeF32))
	if err != nil {
		t.Fatal(err)
	}
	base, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	setKV := func(key string, val gguf.Value) func(string, gguf.Value) (gguf.Value, bool) {
		return func(k string, v gguf.Value) (gguf.Value, bool) {
			if k == key {
				return val, true
			}
			return v, true
		}
	}
	tests := []struct {
		name   string
		editKV func(string, gguf.Value) (gguf.Value, bool)
		editT  func(*gguf.TensorInfo, []byte) ([]byte, bool)
		is     error
		say    string
	}{
		{name: "unknown architecture", editKV: setKV("general.architecture", gguf.ValueOf("gpt2")), is: ErrUnsupported, say: "gpt2"},
		{name: "no heads", editKV: setKV("qwen2.attention.head_count", gguf.ValueOf(uint32(0))), is: ErrInvalidModel, say: "head_count"},
		{name: "kv heads not dividing", editKV: setKV("qwen2.attention.head_count_kv", gguf.ValueOf(uint32(3))), is: ErrInvalidModel, say: "multiple"},
		{name: "missing epsilon", editKV: func(k string, v gguf.Value) (gguf.Value, bool) {
			return v, k != "qwen2.attention.layer_norm_rms_epsilon"
		}, is: ErrInvalidModel, say: "epsilon"},
		{name: "missing tensor", editT: func(ti *gguf.TensorInfo, d []byte) ([]byte, bool) {
			return d, ti.Name != "blk.1.ffn_up.weight"
		}, is: ErrInvalidModel, say: "blk.1.ffn_up.weight"},
		{name: "missing bias", editT: func(ti *gguf.TensorInfo, d []byte) ([]byte, bool) {
			return d, ti.Name != "blk.0.attn_k.bias"
		}, is: ErrInvalidModel, say: "attn_k.bias"},
		{name: "wrong shape", editT: func(ti *gguf.TensorInfo, d []byte) ([]byte, bool) {
			if ti.Name == "blk.0.attn_k.weight" {
				ti.Dims[0], ti.Dims[1] = ti.Dims[1], ti.Dims[0]
			}
			return d, true
		}, is: ErrInvalidModel, say: "attn_k.weight"},
		{name: "unsupported type", editT: func(ti *gguf.TensorInfo, d []byte) ([]byte, bool) {
			if ti.Name == "blk.0.ffn_gate.weight" {
				// IQ4_NL: 32-element blocks of 18 bytes; 64×160 elements make 320 blocks.
				ti.Type = gguf.TypeIQ4_NL
				return make([]byte, 320*18), true
			}
			return d, true
		}, is: ErrUnsupported, say: "IQ4_NL"},
		{name: "vector of the wrong length", editT: func(ti *gguf.TensorInfo, d []byte) ([]byte, bool) {
			if ti.Name == "output_norm.weight" {
				ti.Dims[0] = 32
				return d[:32*4], true
			}
			return d, true
		}, is: ErrInvalidModel, say: "output_norm.weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(rebuild(t, base, tt.editKV, tt.editT))
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.say) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.is, tt.say)
			}
		})
	}
	if _, err := Load(rebuild(t, base, nil, nil)); err != nil {
		t.Fatalf("unedited copy: %v", err)
	}
}

func TestTiedEmbeddings(t *testing.T) {
	m := loadFixture(t, llamatest.Small("qwen2", gguf.TypeF32))
	if m.output != m.embd {
		t.Error("a model without output.weight does not use token_embd for the output")
	}
	m = loadFixture(t, llamatest.Small("llama", gguf.TypeF32))
	if m.output == m.embd {
		t.Error("a model with output.weight uses token_embd for the output")
	}
}

func TestForwardRefusesBadSteps(t *testing.T) {
	m := loadFixture(t, llamatest.Small("llama", gguf.TypeF32))
	r := m.NewRunner(1, 16)
	defer r.Close()
	c := m.NewKVCache(16)
	if err := r.Forward([]Step{{Cache: c, Tokens: []int32{int32(m.Params.Vocab)}}}); err == nil {
		t.Error("token out of range accepted")
	}
	if err := r.Forward([]Step{{Cache: c, Tokens: make([]int32, 17)}}); !errors.Is(err, ErrContextFull) {
		t.Errorf("17 tokens in a context of 16: err = %v", err)
	}
	if c.Len() != 0 {
		t.Errorf("cache holds %d positions after failed passes", c.Len())
	}
}
