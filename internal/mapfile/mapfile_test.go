package mapfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content []byte
	}{
		{"small", []byte("GGUF and more")},
		{"empty", nil},
		{"pages", bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 3000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			data, release, err := Open(path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(data, tc.content) {
				t.Errorf("got %d bytes, want %d bytes of the file", len(data), len(tc.content))
			}
			if err := release(); err != nil {
				t.Errorf("release: %v", err)
			}
		})
	}
}

func TestOpenMissing(t *testing.T) {
	_, _, err := Open(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing file: %v, want fs.ErrNotExist", err)
	}
}
