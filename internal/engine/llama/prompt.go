package llama

import (
	"sync"

	"github.com/neovratz/neovratz/internal/engine/llama/chattemplate"
	"github.com/neovratz/neovratz/internal/tokenizer"
)

// AddsBOS reports whether the vocabulary asks for a BOS token before a text
// (tokenizer.ggml.add_bos_token, or llama.cpp's default for the tokenizer).
func (m *Model) AddsBOS() bool {
	t := m.Tokenizer
	ids := t.Encode("", tokenizer.EncodeOptions{AddSpecial: true})
	return t.BOS() >= 0 && len(ids) > 0 && ids[0] == t.BOS()
}

// Encode tokenizes text as the input of a generation: BOS first when the vocabulary asks for
// one and the text does not already start with it, then the text, with the text of special
// tokens recognised as those tokens when special is set (as llama-server does for prompts and
// rendered chat templates) or taken as plain text.
func (m *Model) Encode(text string, special bool) []int32 {
	ids := m.Tokenizer.Encode(text, tokenizer.EncodeOptions{ParseSpecial: special})
	if m.AddsBOS() && (len(ids) == 0 || ids[0] != m.Tokenizer.BOS()) {
		ids = append([]int32{m.Tokenizer.BOS()}, ids...)
	}
	return ids
}

// ChatPrompt renders messages with the model's chat template (ChatML when the file has none),
// ending with the opening of the assistant's turn, and tokenizes the result with Encode.
// The error, from a template that cannot render these messages, matches
// chattemplate.ErrTemplate.
func (m *Model) ChatPrompt(messages []chattemplate.Message) ([]int32, error) {
	tmpl, err := m.template()
	if err != nil {
		return nil, err
	}
	text, err := tmpl.Render(messages, true, nil)
	if err != nil {
		return nil, err
	}
	return m.Encode(text, true), nil
}

// template compiles the chat template once.
func (m *Model) template() (*chattemplate.Template, error) {
	m.tmplOnce.Do(func() {
		tok := m.Tokenizer
		m.tmpl, m.tmplErr = chattemplate.New(m.ChatTemplate, tokenText(tok, tok.BOS()), tokenText(tok, tok.EOS()))
	})
	return m.tmpl, m.tmplErr
}

func tokenText(t *tokenizer.Tokenizer, id int32) string {
	if id < 0 {
		return ""
	}
	return t.TokenText(id)
}

// templateState is the Model's lazily compiled chat template.
type templateState struct {
	tmplOnce sync.Once
	tmpl     *chattemplate.Template
	tmplErr  error
}
