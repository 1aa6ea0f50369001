// Package mapfile gives the model readers (gguf, safetensors) a file's bytes without copying
// them: a read-only shared memory mapping on unix, the file read into memory elsewhere. Model
// files are gigabytes, and a mapping lets tensors be read straight from the page cache and shared
// by every process that serves the same model.
package mapfile

import "fmt"

// tooLarge is the error for a file whose size does not fit in an int on this platform.
func tooLarge(path string, size int64) error {
	return fmt.Errorf("%s: %d bytes is too large to map on this platform", path, size)
}
