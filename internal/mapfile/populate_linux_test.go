package mapfile

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// TestPopulate checks that Populate maps a file's pages into the process: the mapping's
// resident size in /proc/self/smaps goes from nothing (nothing read yet) to the whole file.
func TestPopulate(t *testing.T) {
	const size = 8 << 20
	path := filepath.Join(t.TempDir(), "weights")
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i / pageSize)
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	data, release, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if rss := mappingRSS(t, data); rss > size/4 {
		t.Fatalf("the mapping holds %d bytes before anything read it: the test cannot tell", rss)
	}
	Populate(data)
	if rss := mappingRSS(t, data); rss < size*3/4 {
		t.Errorf("after Populate the mapping holds %d of %d bytes", rss, size)
	}
	Populate(nil) // nothing to do, and no panic

	// The fallback for kernels without MADV_POPULATE_READ, and other systems.
	other, release2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	touch(other)
	if rss := mappingRSS(t, other); rss < size*3/4 {
		t.Errorf("after touch the mapping holds %d of %d bytes", rss, size)
	}
}

// mappingRSS returns the resident bytes of the mapping that starts at data, from smaps.
func mappingRSS(t *testing.T, data []byte) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(&data[0])))
	// The mapping's header line starts with its address range; its Rss line is the first after.
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, start) {
			found = true
			continue
		}
		if found && strings.HasPrefix(line, "Rss:") {
			kb, err := strconv.Atoi(strings.Fields(line)[1])
			if err != nil {
				t.Fatalf("smaps line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no mapping at %s in smaps (err %v)", start, sc.Err())
	return 0
}
