package openai

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestContentForms(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{`"hello"`, "hello", false},
		{`null`, "", false},
		{`[{"type":"text","text":"a"},{"type":"text","text":"b"}]`, "ab", false},
		{`[{"type":"image_url","image_url":{"url":"x"}}]`, "", true},
		{`[{"type":"text"}]`, "", true},
		{`42`, "", true},
	}
	for _, tc := range tests {
		var m Message
		err := json.Unmarshal([]byte(`{"role":"user","content":`+tc.in+`}`), &m)
		if (err != nil) != tc.wantErr {
			t.Errorf("content %s: err = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && string(m.Content) != tc.want {
			t.Errorf("content %s = %q, want %q", tc.in, m.Content, tc.want)
		}
	}
}

func TestStopAndPromptForms(t *testing.T) {
	var r CompletionRequest
	if err := json.Unmarshal([]byte(`{"model":"m","prompt":"hi","stop":"\n"}`), &r); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Prompt, []string{"hi"}) || !slices.Equal(r.Stop, []string{"\n"}) {
		t.Fatalf("prompt %v stop %v", r.Prompt, r.Stop)
	}
	if err := json.Unmarshal([]byte(`{"model":"m","prompt":["a","b"],"stop":["x","y"]}`), &r); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Prompt, []string{"a", "b"}) || !slices.Equal(r.Stop, []string{"x", "y"}) {
		t.Fatalf("prompt %v stop %v", r.Prompt, r.Stop)
	}
	if err := json.Unmarshal([]byte(`{"prompt":{"a":1}}`), &r); err == nil {
		t.Error("an object prompt was accepted")
	}
	if err := json.Unmarshal([]byte(`{"stop":5}`), &r); err == nil {
		t.Error("a numeric stop was accepted")
	}
	b, _ := json.Marshal(Prompt{"one"})
	if string(b) != `"one"` {
		t.Errorf("single prompt marshals as %s, want a string", b)
	}
}

func TestChunkUsageIsNullUntilTheEnd(t *testing.T) {
	b, err := json.Marshal(ChatCompletionChunk{ID: "c", Object: "chat.completion.chunk", Choices: []ChatChunkChoice{{Delta: ChatDelta{Content: "x"}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"c","object":"chat.completion.chunk","created":0,"model":"","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}],"usage":null}`
	if string(b) != want {
		t.Fatalf("chunk = %s\nwant    %s", b, want)
	}
}
