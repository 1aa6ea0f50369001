package llama

import (
	"errors"
	"fmt"

	"github.com/neovratz/neovratz/internal/gguf"
	"github.com/neovratz/neovratz/internal/tokenizer"
)

// Model is a loaded GGUF model: hyperparameters, tokenizer, chat template and the weights,
// which stay in the file's read-only mapping. A Model is immutable and safe for concurrent
// use; sequences and forward passes hold their own state.
type Model struct {
	Params    Params
	Tokenizer *tokenizer.Tokenizer
	// ChatTemplate is tokenizer.chat_template, "" when the file has none.
	ChatTemplate string

	file   *gguf.File
	embd   *matrix // token_embd: Vocab rows of Embd
	norm   []float32
	output *matrix // output, or token_embd when the embeddings are tied
	layers []layer
	// ropeFreqs are llama 3's per-dimension frequency divisors (rope_freqs.weight), nil if absent.
	ropeFreqs []float32

	templateState
}

type layer struct {
	attnNorm          []float32
	wq, wk, wv, wo    *matrix
	bq, bk, bv, bo    []float32 // biases: qwen2 has Q, K and V; llama may have any
	qNorm, kNorm      []float32 // qwen3's per-head RMS norms of Q and K
	ffnNorm           []float32
	gate, up, down    *matrix
	gateB, upB, downB []float32
}

// Open maps the GGUF file at path and loads the model in it. Close releases the mapping.
func Open(path string) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := Load(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Populate() // the weights in page tables now, not a fault at a time in the first prompt
	return m, nil
}

// Close releases the file the model was opened from. The model must not be used afterwards.
func (m *Model) Close() error { return m.file.Close() }

// Load builds a Model on a parsed GGUF file, checking every tensor it needs for presence, type
// and shape. The Model keeps f; closing f ends the Model.
func Load(f *gguf.File) (*Model, error) {
	p, err := readParams(f)
	if err != nil {
		return nil, err
	}
	tok, err := loadTokenizer(f)
	if err != nil {
		return nil, err
	}
	m := &Model{Params: p, Tokenizer: tok, file: f}
	m.ChatTemplate, _ = f.String("tokenizer.chat_template")

	info, ok := f.Tensor("token_embd.weight")
	if !ok {
		return nil, fmt.Errorf("%w: tensor token_embd.weight is missing", ErrInvalidModel)
	}
	if len(info.Dims) != 2 || info.Dims[1] == 0 || info.Dims[1] > 1<<24 {
		return nil, fmt.Errorf("%w: tensor token_embd.weight has shape %v", ErrInvalidModel, info.Dims)
	}
	m.Params.Vocab = int(info.Dims[1])
	p = m.Params
	if tok.Len() > p.Vocab {
		return nil, fmt.Errorf("%w: the tokenizer has %d tokens but token_embd only %d rows", ErrInvalidModel, tok.Len(), p.Vocab)
	}

	var errs []error
	mat := func(name string, cols, rows int) *matrix {
		w, err := loadMatrix(f, name, cols, rows)
		if err != nil {
			errs = append(errs, err)
		}
		return w
	}
	vec := func(name string, n int) []float32 {
		v, err := vector(f, name, n)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	optVec := func(name string, n int) []float32 {
		if _, ok := f.Tensor(name); !ok {
			return nil
		}
		return vec(name, n)
	}

	m.embd = mat("token_embd.weight", p.Embd, p.Vocab)
	m.norm = vec("output_norm.weight", p.Embd)
	if _, ok := f.Tensor("output.weight"); ok {
		m.output = mat("output.weight", p.Embd, p.Vocab)
	} else {
		m.output = m.embd // tied embeddings
	}
	if p.Arch == "llama" {
		m.ropeFreqs = optVec("rope_freqs.weight", p.Rot/2)
	}
	qd, kvd := p.qDim(), p.kvDim()
	m.layers = make([]layer, p.Layers)
	for i := range m.layers {
		l := &m.layers[i]
		n := func(s string) string { return fmt.Sprintf("blk.%d.%s", i, s) }
		if _, fused := f.Tensor(n("attn_qkv.weight")); fused {
			return nil, fmt.Errorf("%w: fused attn_qkv tensors", ErrUnsupported)
		}
		l.attnNorm = vec(n("attn_norm.weight"), p.Embd)
		l.wq = mat(n("attn_q.weight"), p.Embd, qd)
		l.wk = mat(n("attn_k.weight"), p.Embd, kvd)
		l.wv = mat(n("attn_v.weight"), p.Embd, kvd)
		l.wo = mat(n("attn_output.weight"), qd, p.Embd)
		switch p.Arch {
		case "qwen2":
			l.bq = vec(n("attn_q.bias"), qd)
			l.bk = vec(n("attn_k.bias"), kvd)
			l.bv = vec(n("attn_v.bias"), kvd)
		case "qwen3":
			l.qNorm = vec(n("attn_q_norm.weight"), p.HeadDimK)
			l.kNorm = vec(n("attn_k_norm.weight"), p.HeadDimK)
		case "llama":
			l.bq = optVec(n("attn_q.bias"), qd)
			l.bk = optVec(n("attn_k.bias"), kvd)
			l.bv = optVec(n("attn_v.bias"), kvd)
			l.bo = optVec(n("attn_output.bias"), p.Embd)
			l.gateB = optVec(n("ffn_gate.bias"), p.FF)
			l.upB = optVec(n("ffn_up.bias"), p.FF)
			l.downB = optVec(n("ffn_down.bias"), p.Embd)
		}
		if _, moe := f.Tensor(n("ffn_gate_inp.weight")); moe {
			return nil, fmt.Errorf("%w: mixture-of-experts layers", ErrUnsupported)
		}
		l.ffnNorm = vec(n("ffn_norm.weight"), p.Embd)
		l.gate = mat(n("ffn_gate.weight"), p.Embd, p.FF)
		l.up = mat(n("ffn_up.weight"), p.Embd, p.FF)
		l.down = mat(n("ffn_down.weight"), p.FF, p.Embd)
		if len(errs) > 8 {
			break // enough to say what is wrong
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// loadTokenizer builds the tokenizer from the tokenizer.ggml.* keys, with llama.cpp's defaults
// for the keys a file leaves out.
func loadTokenizer(f *gguf.File) (*tokenizer.Tokenizer, error) {
	model, _ := f.String("tokenizer.ggml.model")
	pre, _ := f.String("tokenizer.ggml.pre")
	tokens, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok {
		return nil, fmt.Errorf("%w: tokenizer.ggml.tokens is missing", ErrInvalidModel)
	}
	d := tokenizer.DefaultsFor(model, pre)
	v := tokenizer.Vocab{Model: model, Pre: pre, Tokens: tokens,
		BOS: d.BOS, EOS: d.EOS, EOT: -1, UNK: d.UNK, PAD: -1,
		AddBOS: d.AddBOS, AddEOS: d.AddEOS, AddSpacePrefix: d.AddSpacePrefix}
	if val, ok := f.Value("tokenizer.ggml.scores"); ok {
		s, ok := val.Interface().([]float32)
		if !ok {
			return nil, fmt.Errorf("%w: tokenizer.ggml.scores is not an array of float32", ErrInvalidModel)
		}
		v.Scores = s
	}
	if ts, ok := f.Ints("tokenizer.ggml.token_type"); ok {
		v.Types = make([]int32, len(ts))
		for i, t := range ts {
			v.Types[i] = int32(t)
		}
	}
	v.Merges, _ = f.Strings("tokenizer.ggml.merges")
	id := func(key string, dst *int32) {
		if x, ok := f.Int(key); ok && x >= 0 && x < int64(len(tokens)) {
			*dst = int32(x)
		}
	}
	id("tokenizer.ggml.bos_token_id", &v.BOS)
	id("tokenizer.ggml.eos_token_id", &v.EOS)
	id("tokenizer.ggml.eot_token_id", &v.EOT)
	id("tokenizer.ggml.unknown_token_id", &v.UNK)
	id("tokenizer.ggml.padding_token_id", &v.PAD)
	flag := func(key string, dst *bool) {
		if b, ok := f.Bool(key); ok {
			*dst = b
		}
	}
	flag("tokenizer.ggml.add_bos_token", &v.AddBOS)
	flag("tokenizer.ggml.add_eos_token", &v.AddEOS)
	flag("tokenizer.ggml.add_space_prefix", &v.AddSpacePrefix)
	t, err := tokenizer.New(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModel, err)
	}
	return t, nil
}
