//go:build !linux

package mapfile

// Populate maps every page of data (bytes Open returned) into the process now, so that the
// first pass over a model's weights does not take a page fault per 4 KiB, by touching a byte
// per page.
func Populate(data []byte) { touch(data) }
