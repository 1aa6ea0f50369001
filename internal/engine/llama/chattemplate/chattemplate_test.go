package chattemplate

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The templates in testdata/templates are those of real models (Llama 3.2 Instruct, Qwen2.5
// Instruct, Qwen3, SmolLM2 Instruct, Mistral 7B Instruct v0.1). testdata/golden/rendered.json
// is what Python's Jinja2, set up as Hugging Face's apply_chat_template sets it up, renders
// for the conversations in testdata/cases.json (testdata/render_golden.py makes it).

var special = map[string][2]string{
	"llama3.2": {"<|begin_of_text|>", "<|eot_id|>"},
	"mistral":  {"<s>", "</s>"},
	"qwen2.5":  {"<|endoftext|>", "<|im_end|>"},
	"qwen3":    {"<|endoftext|>", "<|im_end|>"},
	"smollm2":  {"<|im_start|>", "<|im_end|>"},
}

func TestRealTemplates(t *testing.T) {
	var cases []struct {
		Name     string    `json:"name"`
		Messages []Message `json:"messages"`
		AddGen   bool      `json:"add_generation_prompt"`
	}
	readJSON(t, "testdata/cases.json", &cases)
	var golden map[string]struct {
		Text  *string `json:"text"`
		Error string  `json:"error"`
	}
	readJSON(t, "testdata/golden/rendered.json", &golden)
	for name, tok := range special {
		src, err := os.ReadFile(filepath.Join("testdata", "templates", name+".jinja"))
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := New(string(src), tok[0], tok[1])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, c := range cases {
			t.Run(name+"/"+c.Name, func(t *testing.T) {
				want := golden[name+"/"+c.Name]
				got, err := tmpl.Render(c.Messages, c.AddGen, map[string]any{"date_string": "26 Jul 2024"})
				if want.Text == nil {
					if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), want.Error) {
						t.Fatalf("err = %v, want an ErrTemplate with %q", err, want.Error)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got != *want.Text {
					t.Errorf("rendered\n%q\nwant\n%q", got, *want.Text)
				}
			})
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestChatMLFallback(t *testing.T) {
	tmpl, err := New("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render([]Message{{"system", "Be brief."}, {"user", "Hi"}}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	if _, err := New("{% for x in %}", "", ""); !errors.Is(err, ErrTemplate) {
		t.Errorf("syntax error: err = %v, want ErrTemplate", err)
	}
	tmpl, err := New("{{ raise_exception('no system role') }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Render(nil, true, nil); !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), "no system role") {
		t.Errorf("raise_exception: err = %v", err)
	}
}
