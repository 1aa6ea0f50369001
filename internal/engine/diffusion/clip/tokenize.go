package clip

// Context is CLIP's context length: BOS, 75 tokens, EOS.
const (
	Context  = 77
	chunkLen = Context - 2
)

// Padding tokens: SD 1.x pads its context with EOS, SD 2.x (OpenCLIP) with 0.
const (
	PadSD1 = EOS
	PadSD2 = 0
)

// Tokens is a tokenized prompt: one or more 77-token chunks, each BOS, up
// to 75 tokens, EOS, then padding; and each token's emphasis weight (1 for
// BOS, EOS and padding).
type Tokens struct {
	IDs     []int
	Weights []float32
}

// Chunks is the number of 77-token chunks.
func (t Tokens) Chunks() int { return len(t.IDs) / Context }

// Tokenize turns a prompt into chunks as stable-diffusion.cpp does for SD
// 1.x and 2.x: emphasis parsed (ParseEmphasis), each segment encoded on its
// own, a BREAK padding the current chunk to its end with EOS, then the
// tokens cut into chunks of 75, each wrapped in BOS/EOS and padded with pad.
// An empty prompt is one chunk.
func (t *Tokenizer) Tokenize(prompt string, pad int) Tokens {
	var ids []int
	var weights []float32
	for _, seg := range ParseEmphasis(prompt) {
		if seg.Break {
			for len(ids)%chunkLen != 0 {
				ids = append(ids, EOS)
				weights = append(weights, 1)
			}
			continue
		}
		n := len(ids)
		ids = t.encodeSegment(ids, seg.Text)
		for range len(ids) - n {
			weights = append(weights, seg.Weight)
		}
	}
	var out Tokens
	for off := 0; off == 0 || off < len(ids); off += chunkLen {
		end := min(off+chunkLen, len(ids))
		out.IDs = append(out.IDs, BOS)
		out.Weights = append(out.Weights, 1)
		out.IDs = append(out.IDs, ids[off:end]...)
		out.Weights = append(out.Weights, weights[off:end]...)
		out.IDs = append(out.IDs, EOS)
		out.Weights = append(out.Weights, 1)
		for len(out.IDs)%Context != 0 {
			out.IDs = append(out.IDs, pad)
			out.Weights = append(out.Weights, 1)
		}
	}
	return out
}

func (t *Tokenizer) encodeSegment(dst []int, text string) []int {
	return append(dst, t.Encode(text)...)
}
