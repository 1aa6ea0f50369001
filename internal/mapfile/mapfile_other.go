//go:build !unix

package mapfile

import "os"

// Open returns the bytes of the file at path and a function that releases them. Without mmap
// support here, the file is read into memory.
func Open(path string) (data []byte, release func() error, err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
