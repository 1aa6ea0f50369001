//go:build unix

package mapfile

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open returns the bytes of the file at path and a function that releases them. The bytes are a
// read-only mapping: writing to them faults, and so does reading pages past the end of a file
// that another process truncates while it is mapped. Empty and non-regular files, which cannot be
// mapped, are read into memory instead.
func Open(path string) (data []byte, release func() error, err error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close() // the mapping outlives the descriptor
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if size == 0 || !st.Mode().IsRegular() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		return data, func() error { return nil }, nil
	}
	if int64(int(size)) != size {
		return nil, nil, tooLarge(path, size)
	}
	data, err = unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	release = func() error {
		if err := unix.Munmap(data); err != nil {
			return fmt.Errorf("munmap %s: %w", path, err)
		}
		return nil
	}
	return data, release, nil
}
