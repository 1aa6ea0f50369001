// Package mapfile gives the model readers (gguf, safetensors) a file's bytes without copying
// them: a read-only shared memory mapping on unix, the file read into memory elsewhere. Model
// files are gigabytes, and a mapping lets tensors be read straight from the page cache and shared
// by every process that serves the same model.
package mapfile

import (
	"fmt"
	"runtime"
)

// tooLarge is the error for a file whose size does not fit in an int on this platform.
func tooLarge(path string, size int64) error {
	return fmt.Errorf("%s: %d bytes is too large to map on this platform", path, size)
}

// pageSize is the smallest page of the platforms we run on; touching more often costs little.
const pageSize = 4096

// touch reads one byte of every page of data.
func touch(data []byte) {
	var s byte
	for i := 0; i < len(data); i += pageSize {
		s += data[i]
	}
	runtime.KeepAlive(s) // the reads are the point
}
