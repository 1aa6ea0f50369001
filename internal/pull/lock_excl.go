//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos)

package pull

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// lockFile takes the lock at path for a pull of the file name where there is no flock: the
// file is created exclusively and removed by the returned function. A pull that crashes leaves
// it behind; the error refusing the next pull names it, to remove by hand.
func lockFile(path, name string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		e := &LockedError{Name: name, Stale: path}
		if f, err := os.Open(path); err == nil {
			e.PID = readPID(f)
			f.Close()
		}
		return nil, e
	}
	if err != nil {
		return nil, fmt.Errorf("%s: lock: %w", name, err)
	}
	err = writePID(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("%s: lock: %w", name, err)
	}
	return func() { os.Remove(path) }, nil
}
