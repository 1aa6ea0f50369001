package safetensors

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/mapfile"
)

// Open maps the file at path read-only (on unix; elsewhere it is read into memory) and parses
// its header. Tensor data slices point into the mapping. Close unmaps it; the file must not be
// truncated while open.
func Open(path string) (*File, error) {
	data, release, err := mapfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		_ = release()
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	f.unmap = release
	return f, nil
}
