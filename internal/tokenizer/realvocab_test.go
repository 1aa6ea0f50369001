package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// realVocabFile is what testdata/realvocab/export.mjs writes for one vocabulary.
type realVocabFile struct {
	Name           string    `json:"name"`
	Model          string    `json:"model"`
	Pre            string    `json:"pre"`
	Tokens         []string  `json:"tokens"`
	Scores         []float32 `json:"scores"`
	Types          []int32   `json:"types"`
	Merges         []string  `json:"merges"`
	BOS            int32     `json:"bos"`
	EOS            int32     `json:"eos"`
	EOT            int32     `json:"eot"`
	UNK            int32     `json:"unk"`
	PAD            int32     `json:"pad"`
	AddBOS         bool      `json:"add_bos"`
	AddEOS         bool      `json:"add_eos"`
	AddSpacePrefix bool      `json:"add_space_prefix"`
	Cases          []struct {
		Text         string  `json:"text"`
		AddSpecial   bool    `json:"add_special"`
		ParseSpecial bool    `json:"parse_special"`
		IDs          []int32 `json:"ids"`
	} `json:"cases"`
}

const (
	nextLine = "next\u0085line  \u0085 x"
	bom      = "bom\ufeff  \ufeffx"
	jsSpace  = "JavaScript's \\s excludes U+0085 and includes U+FEFF; llama.cpp (like the Rust regex " +
		"of Hugging Face tokenizers) uses Unicode White_Space, which is the other way round"
)

// referenceDiffers lists the cases where the reference encoder is known not to behave
// as llama.cpp does, so a mismatch there is the reference's, not ours. The key is the
// vocabulary name and the text.
var referenceDiffers = map[[2]string]string{
	{"llama3", nextLine}:            jsSpace,
	{"llama3", bom}:                 jsSpace,
	{"qwen3", nextLine}:             jsSpace,
	{"qwen3", bom}:                  jsSpace,
	{"llama2", ""}:                  "llama-tokenizer-js returns no tokens for empty text; llama.cpp still adds BOS",
	{"qwen3", "e\u0301 decomposed"}: "Hugging Face applies Qwen's NFC normalizer; llama.cpp does not normalize",
	{"qwen3", "</s>"}: "llama.cpp counts the ordinary token </s> as end of generation (for PaddleOCR), " +
		"which makes it a control token that parse_special splits out",
}

// TestRealVocabularies compares Encode with the encoders of npm packages that carry the
// real Llama 2, Llama 3 and Qwen3 vocabularies. Those vocabularies cannot be shipped
// with neovratz, so the test runs only when NEOVRATZ_REAL_VOCAB_DIR names the output of
// testdata/realvocab/export.mjs (see the README there).
func TestRealVocabularies(t *testing.T) {
	dir := os.Getenv("NEOVRATZ_REAL_VOCAB_DIR")
	if dir == "" {
		t.Skip("NEOVRATZ_REAL_VOCAB_DIR is not set; see testdata/realvocab/README.md")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vocabularies in %s (%v)", dir, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var v realVocabFile
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			tok, err := New(Vocab{Model: v.Model, Pre: v.Pre, Tokens: v.Tokens, Scores: v.Scores,
				Types: v.Types, Merges: v.Merges, BOS: v.BOS, EOS: v.EOS, EOT: v.EOT, UNK: v.UNK,
				PAD: v.PAD, AddBOS: v.AddBOS, AddEOS: v.AddEOS, AddSpacePrefix: v.AddSpacePrefix})
			if err != nil {
				t.Fatal(err)
			}
			match, known := 0, 0
			for _, c := range v.Cases {
				got := tok.Encode(c.Text, EncodeOptions{AddSpecial: c.AddSpecial, ParseSpecial: c.ParseSpecial})
				checkRoundTrip(t, tok, c.Text, got, c.AddSpecial)
				if slices.Equal(got, c.IDs) {
					match++
					continue
				}
				if why, ok := referenceDiffers[[2]string{v.Name, c.Text}]; ok {
					known++
					t.Logf("known difference %q (add_special=%v): %s\n got  %s\n want %s",
						c.Text, c.AddSpecial, why, showIDs(tok, got), showIDs(tok, c.IDs))
					continue
				}
				t.Errorf("Encode(%q, add_special=%v, parse_special=%v)\n got  %s\n want %s",
					c.Text, c.AddSpecial, c.ParseSpecial, showIDs(tok, got), showIDs(tok, c.IDs))
			}
			t.Logf("%s: %d/%d cases match the reference (%.1f%%); %d known reference differences",
				v.Name, match, len(v.Cases), 100*float64(match)/float64(len(v.Cases)), known)
		})
	}
}

// checkRoundTrip decodes ids, all at once and streamed, and compares with the text they
// came from.
func checkRoundTrip(t *testing.T, tok *Tokenizer, text string, ids []int32, addSpecial bool) {
	t.Helper()
	if !addSpecial {
		want := text
		if tok.kind == kindBPE && tok.pre.cleanSpaces {
			want = string(cleanSpaces([]byte(text)))
		}
		if got := tok.Detokenize(ids, DecodeOptions{UnparseSpecial: true}); got != want {
			t.Errorf("Detokenize(Encode(%q)) = %q, want %q", text, got, want)
		}
	}
	var all, streamed strings.Builder
	d := tok.NewDecoder()
	for _, id := range ids {
		all.WriteString(tok.Piece(id, false))
		s := d.Push(id)
		if !utf8.ValidString(s) && utf8.ValidString(text) {
			t.Errorf("streaming %q: Push(%d) returned invalid UTF-8 %q", text, id, s)
		}
		streamed.WriteString(s)
	}
	streamed.WriteString(d.Flush())
	if streamed.String() != all.String() {
		t.Errorf("streaming %q gave %q, want %q", text, streamed.String(), all.String())
	}
}

func showIDs(tok *Tokenizer, ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d:%q", id, tok.TokenText(id))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
