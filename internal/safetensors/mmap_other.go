//go:build !unix

package safetensors

import (
	"fmt"
	"os"
)

// Open reads the file at path into memory and parses it. (On unix systems
// Open maps the file instead; here it is read whole.) Close releases it.
func Open(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return f, nil
}
