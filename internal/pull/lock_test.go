package pull

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestPullSameFileTwice runs a second pull of a file while a first one is still downloading it
// from a slow server: the second is refused, naming the first's process, without touching the
// partial file, and the first completes a good file.
func TestPullSameFileTwice(t *testing.T) {
	body := content(300_000, 9)
	started := make(chan struct{}, 8)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case <-release:
			w.Write(body[len(body)/2:])
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel() // before srv.Close: ends a download still waiting on release

	dir := t.TempDir()
	p, err := New(Config{Dir: dir, HubURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ref := mustRef(t, srv.URL+"/slow.gguf")
	first := make(chan error, 1)
	go func() {
		_, err := p.Pull(ctx, ref, Options{})
		first <- err
	}()
	select {
	case <-started:
	case err := <-first:
		t.Fatalf("first pull ended before the server sent it all: %v", err)
	case <-ctx.Done():
		t.Fatal("the first pull never reached the server")
	}

	_, err = p.Pull(ctx, ref, Options{})
	var locked *LockedError
	if !errors.As(err, &locked) || locked.PID != os.Getpid() {
		t.Fatalf("second pull: %v, want a LockedError naming pid %d", err, os.Getpid())
	}
	if want := fmt.Sprintf("another pull of slow.gguf is running (pid %d)", os.Getpid()); err.Error() != want {
		t.Errorf("second pull: %q, want %q", err, want)
	}
	if len(started) != 0 {
		t.Error("the refused pull still sent a request")
	}

	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first pull: %v", err)
	}
	dest := filepath.Join(dir, "slow.gguf")
	checkFile(t, dest, body)
	if _, err := os.Stat(lockPath(dest)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left behind (%v)", err)
	}

	// The lock is free again: a third pull finds the file in place.
	res, err := p.Pull(ctx, ref, Options{})
	if err != nil || len(res.Files) != 1 || !res.Files[0].Present {
		t.Fatalf("third pull: %+v, %v; want the file present", res, err)
	}
}
