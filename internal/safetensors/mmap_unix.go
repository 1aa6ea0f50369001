//go:build unix

package safetensors

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open maps the file at path read-only and parses it. Tensor data slices
// point into the mapping, so nothing but the metadata is read until used.
// Close unmaps it. As with any mapping, the file must not be truncated
// while open: touching pages beyond its new end faults.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fd.Close() // the mapping outlives the descriptor
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	size := st.Size()
	if size < 8 || !st.Mode().IsRegular() {
		// Too short to be safetensors (or not a file): parse what is there for
		// the error, as mmap cannot map zero bytes.
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
	if int64(int(size)) != size {
		return nil, fmt.Errorf("safetensors: %s: %d bytes is too large to map on this platform", path, size)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("safetensors: mmap %s: %w", path, err)
	}
	f, err := Parse(data)
	if err != nil {
		_ = unix.Munmap(data)
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	f.unmap = func() error {
		if err := unix.Munmap(data); err != nil {
			return fmt.Errorf("safetensors: munmap %s: %w", path, err)
		}
		return nil
	}
	return f, nil
}
