//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos

package pull

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLockFileStale checks that a lock file a crashed pull left behind, which no process holds,
// does not block the next pull, and that a held lock does.
func TestLockFileStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf.partial.lock")
	if err := os.WriteFile(path, []byte("999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(path, "m.gguf")
	if err != nil {
		t.Fatalf("lock over a stale file: %v", err)
	}
	_, err = lockFile(path, "m.gguf")
	var locked *LockedError
	if !errors.As(err, &locked) || locked.PID != os.Getpid() || locked.Stale != "" {
		t.Errorf("second lock: %v, want a LockedError naming pid %d", err, os.Getpid())
	}
	unlock()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left behind (%v)", err)
	}
	unlock, err = lockFile(path, "m.gguf")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock()
}
