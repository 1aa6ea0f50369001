package pull

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// LockedError is a pull refused because another pull of the same file is running: two pulls
// appending to one partial file would corrupt it.
type LockedError struct {
	Name string // the local file name
	PID  int    // the other pull's process; 0 when unknown
	// Stale is the lock file to remove when no other pull runs after all, where a lock can
	// outlive a crashed pull (systems without flock); "" where the system releases it.
	Stale string
}

func (e *LockedError) Error() string {
	msg := "another pull of " + e.Name + " is running"
	if e.PID > 0 {
		msg += fmt.Sprintf(" (pid %d)", e.PID)
	}
	if e.Stale != "" {
		msg += "; if none is, remove " + e.Stale
	}
	return msg
}

// lockPath is the lock file of a download in progress, beside its partial file.
func lockPath(dest string) string { return partialPath(dest) + ".lock" }

// writePID records this process in a lock file just taken, for the message of a pull refused.
func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// readPID returns the process recorded in a lock file, or 0.
func readPID(r io.ReaderAt) int {
	b := make([]byte, 32)
	n, _ := r.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
