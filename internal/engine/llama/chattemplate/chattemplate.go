// Package chattemplate renders a model's chat template — the Jinja template stored in a GGUF
// file's tokenizer.chat_template — into the prompt text the model was trained on. It uses
// github.com/ardanlabs/jinja, a pure-Go Jinja engine written for LLM chat templates: it
// applies the trim_blocks and lstrip_blocks settings Hugging Face's apply_chat_template uses
// and has the functions, filters, tests and Python string methods real templates call
// (raise_exception, namespace, loop controls, .strip(), .startswith(), tojson, …). A model
// without a template gets ChatML.
package chattemplate

import (
	"errors"
	"fmt"

	"github.com/ardanlabs/jinja"
)

// ChatML is the template used when a model has none: the <|im_start|>role … <|im_end|> format
// that llama.cpp also falls back to.
const ChatML = `{%- for message in messages -%}
{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%}`

// ErrTemplate matches the errors of a template that does not compile or does not render
// (a syntax error, or raise_exception called because the conversation does not suit it).
var ErrTemplate = errors.New("chat template")

// Message is one message of a conversation.
type Message struct {
	Role    string
	Content string
}

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	t        *jinja.Template
	bos, eos string
}

// New compiles source (ChatML when empty); bos and eos are the texts of the model's BOS and
// EOS tokens, which templates insert as bos_token and eos_token.
func New(source, bos, eos string) (*Template, error) {
	if source == "" {
		source = ChatML
	}
	t, err := jinja.Compile(source)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	return &Template{t: t, bos: bos, eos: eos}, nil
}

// Render renders the conversation, ending with the opening of the assistant's turn when
// addGenerationPrompt is set. vars adds or overrides template variables (for example
// date_string for Llama 3's templates); it may be nil.
func (t *Template) Render(messages []Message, addGenerationPrompt bool, vars map[string]any) (s string, err error) {
	// A template is code from a model file: a bug in the engine's evaluation of some odd
	// construct must fail the request, not the process.
	defer func() {
		if r := recover(); r != nil {
			s, err = "", fmt.Errorf("%w: render panicked: %v", ErrTemplate, r)
		}
	}()
	msgs := make([]any, len(messages))
	for i, m := range messages {
		msgs[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	data := map[string]any{
		"messages":              msgs,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             t.bos,
		"eos_token":             t.eos,
	}
	for k, v := range vars {
		data[k] = v
	}
	out, err := t.t.Render(data)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	return out, nil
}
