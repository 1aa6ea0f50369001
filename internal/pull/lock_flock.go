//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos

package pull

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes the lock at path for a pull of the file name: an exclusive flock, which the
// system releases when the process ends however it ends, so a crashed pull leaves no stale
// lock. The returned function removes the file and releases the lock.
func lockFile(path, name string) (unlock func(), err error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("%s: lock: %w", name, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			pid := readPID(f)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, &LockedError{Name: name, PID: pid}
			}
			return nil, fmt.Errorf("%s: lock %s: %w", name, path, err)
		}
		// A holder removes the file before it unlocks, so a lock won on a file no longer at
		// path (opened just before that removal) guards nothing: take the one there now.
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			if err := writePID(f); err != nil {
				os.Remove(path)
				f.Close()
				return nil, fmt.Errorf("%s: lock: %w", name, err)
			}
			return func() {
				os.Remove(path)
				f.Close() // releases the flock
			}, nil
		}
		f.Close()
		if err2 != nil && !errors.Is(err2, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: lock: %w", name, err2)
		}
	}
}
