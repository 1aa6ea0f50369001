package modelstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSafetensorsHeader bounds the JSON header read from a safetensors file. Real checkpoints
// have headers of a few hundred KiB; the format itself allows up to 100 MB.
const maxSafetensorsHeader = 100 << 20

// safetensorsTensor is one entry of a safetensors header.
type safetensorsTensor struct {
	DType       string   `json:"dtype"`
	Shape       []uint64 `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// readSafetensors fills m's facts from the header of a safetensors file: an 8-byte
// little-endian length, then that many bytes of JSON describing every tensor, with optional
// string metadata under "__metadata__".
func readSafetensors(m *Model) error {
	f, err := os.Open(m.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return errors.New("safetensors: file too short for a header")
	}
	if n < 2 || n > maxSafetensorsHeader || int64(n) > m.Size-8 {
		return fmt.Errorf("safetensors: bad header length %d", n)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(f, raw); err != nil {
		return fmt.Errorf("safetensors: read header: %w", err)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw, &header); err != nil {
		return fmt.Errorf("safetensors: header is not JSON: %w", err)
	}
	var meta map[string]string
	bytesByType := map[string]uint64{}
	names := make([]string, 0, len(header))
	for name, v := range header {
		if name == "__metadata__" {
			_ = json.Unmarshal(v, &meta) // informational only
			continue
		}
		var t safetensorsTensor
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		elems := uint64(1)
		for _, d := range t.Shape {
			elems *= d
		}
		m.Parameters += elems
		if len(t.DataOffsets) == 2 && t.DataOffsets[1] >= t.DataOffsets[0] {
			bytesByType[strings.ToUpper(t.DType)] += t.DataOffsets[1] - t.DataOffsets[0]
		}
		names = append(names, name)
	}
	most := uint64(0)
	for typ, b := range bytesByType {
		if b > most || b == most && typ < m.Quantization {
			m.Quantization, most = typ, b
		}
	}
	m.Title = meta["modelspec.title"]
	m.Architecture = meta["modelspec.architecture"]
	if m.Architecture == "" {
		m.Architecture = guessCheckpoint(names)
	}
	return nil
}

// guessCheckpoint names the Stable Diffusion family of a checkpoint from its tensor names, as
// the original (CompVis/Stability) checkpoints lay them out: the UNet under
// model.diffusion_model, and the text encoder that tells the generations apart.
func guessCheckpoint(names []string) string {
	has := func(prefix string) bool {
		for _, n := range names {
			if strings.HasPrefix(n, prefix) {
				return true
			}
		}
		return false
	}
	switch {
	case !has("model.diffusion_model."):
		return ""
	case has("conditioner.embedders.1."):
		return "stable-diffusion-xl"
	case has("cond_stage_model.model."): // OpenCLIP ViT-H
		return "stable-diffusion-2"
	case has("cond_stage_model.transformer."): // CLIP ViT-L
		return "stable-diffusion-1"
	}
	return "stable-diffusion"
}
