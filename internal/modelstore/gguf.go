package modelstore

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/gguf"
)

// readGGUF fills m's facts from the GGUF metadata of its files. Only the first shard holds the
// metadata; every shard holds tensors, so the parameter count is summed over all of them.
func readGGUF(m *Model) error {
	var tensors []gguf.TensorInfo
	for i, path := range m.Files {
		f, err := gguf.Open(path)
		if err != nil {
			return err
		}
		if i == 0 {
			describeGGUF(m, f)
		}
		tensors = append(tensors, f.Tensors()...)
		f.Close()
	}
	for _, t := range tensors {
		m.Parameters += t.Elements()
	}
	if m.Quantization == "" {
		m.Quantization = dominantType(tensors)
	}
	return nil
}

// describeGGUF reads the metadata keys of the first (or only) file.
func describeGGUF(m *Model, f *gguf.File) {
	m.Title, _ = f.String("general.name")
	m.Architecture, _ = f.String("general.architecture")
	if m.Architecture != "" {
		m.ContextLength, _ = f.Uint(m.Architecture + ".context_length")
	}
	if ft, ok := f.Uint("general.file_type"); ok {
		if name, ok := fileTypeName(ft); ok {
			m.Quantization = name
		} else if ft != 1024 { // LLAMA_FTYPE_GUESSED: the tensor types tell
			m.Quantization = fmt.Sprintf("file type %d", ft)
		}
	}
}
