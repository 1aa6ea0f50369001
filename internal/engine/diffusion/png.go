package diffusion

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"strings"
)

// EncodePNG encodes img as PNG with a tEXt chunk "parameters" holding
// text, where AUTOMATIC1111 records generation settings (and where tools
// that read them look).
func EncodePNG(img image.Image, text string) ([]byte, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("diffusion: png: %w", err)
	}
	p := b.Bytes()
	// Signature (8 bytes), then IHDR: 4 length + 4 type + 13 data + 4 CRC.
	const afterIHDR = 8 + 4 + 4 + 13 + 4
	if len(p) < afterIHDR || string(p[12:16]) != "IHDR" {
		return nil, fmt.Errorf("diffusion: png: unexpected encoder output")
	}
	// tEXt is Latin-1 with a NUL after the keyword; keep the text to
	// bytes that cannot end it early.
	data := append([]byte("parameters\x00"), strings.ReplaceAll(text, "\x00", " ")...)
	chunk := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(chunk, uint32(len(data)))
	copy(chunk[4:], "tEXt")
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := make([]byte, 0, len(p)+len(chunk))
	out = append(out, p[:afterIHDR]...)
	out = append(out, chunk...)
	return append(out, p[afterIHDR:]...), nil
}

// ParametersText formats the settings as AUTOMATIC1111 writes them.
func ParametersText(p Params, model string) string {
	var b strings.Builder
	b.WriteString(p.Prompt)
	if p.Negative != "" {
		b.WriteString("\nNegative prompt: " + p.Negative)
	}
	sched := p.Scheduler
	if sched == "" {
		sched = "default"
	}
	fmt.Fprintf(&b, "\nSteps: %d, Sampler: %s, Schedule type: %s, CFG scale: %g, Seed: %d, Size: %dx%d, RNG: %s",
		p.Steps, p.Sampler, sched, p.CFGScale, p.Seed, align64(p.Width), align64(p.Height), p.RNG)
	if model != "" {
		b.WriteString(", Model: " + model)
	}
	return b.String()
}
