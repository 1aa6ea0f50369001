package mapfile

import "golang.org/x/sys/unix"

// Populate maps every page of data (bytes Open returned) into the process now, so that the
// first pass over a model's weights does not take a page fault per 4 KiB: llama.cpp maps its
// models with MAP_POPULATE for the same reason. It uses MADV_POPULATE_READ (Linux 5.14), and
// touches a byte per page where the kernel lacks it.
func Populate(data []byte) {
	if len(data) == 0 {
		return
	}
	if unix.Madvise(data, unix.MADV_POPULATE_READ) == nil {
		return
	}
	touch(data)
}
