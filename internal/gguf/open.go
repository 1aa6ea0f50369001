package gguf

import (
	"fmt"

	"github.com/neovratz/neovratz/internal/mapfile"
)

// Open maps the file at path read-only (on unix; elsewhere it is read into memory) and parses
// it. Tensor data slices point into the mapping, so nothing but the metadata is read until used.
// Close unmaps it. As with any mapping, the file must not be truncated while open: touching
// pages beyond its new end faults.
func Open(path string) (*File, error) {
	data, release, err := mapfile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		_ = release()
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	f.unmap = release
	return f, nil
}

// Populate maps every page of the file into the process now (mapfile.Populate), so that the
// first pass over its tensors does not fault page by page. An engine calls it once the model
// has loaded; readers that want the metadata only do not.
func (f *File) Populate() { mapfile.Populate(f.data) }
