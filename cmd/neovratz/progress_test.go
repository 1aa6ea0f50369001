package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/neovratz/neovratz/internal/pull"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestProgressBarPlain(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Unix(1000, 0)}
	bar := newProgressBar(&out, clock.now)
	// Every percent, a tenth of a second apart: lines only at each new tenth of the way, and
	// every five seconds in between.
	for pct := 0; pct <= 100; pct++ {
		bar.update("f", float64(pct)/100, "d", pct == 100)
		clock.t = clock.t.Add(100 * time.Millisecond)
	}
	bar.done()
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		got = append(got, strings.TrimSuffix(strings.TrimPrefix(l, "f: "), " d"))
	}
	want := []string{"0%", "10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%", "100%"}
	if !slices.Equal(got, want) {
		t.Errorf("lines %q, want %q", got, want)
	}
}

func TestProgressBarTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 60, Rows: 20}); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Unix(1000, 0)}
	bar := newProgressBar(tty, clock.now)
	if !bar.tty || bar.width != 60 {
		t.Fatalf("tty %v width %d, want a 60-column terminal", bar.tty, bar.width)
	}
	bar.update("model.gguf", 0.5, "1.0 MB/2.0 MB", false)
	bar.update("model.gguf", 0.6, "skipped: within 100ms", false)
	clock.t = clock.t.Add(time.Second)
	bar.update("model.gguf", 1, "2.0 MB/2.0 MB", true)
	bar.done()
	tty.Close()
	b, _ := io.ReadAll(ptmx)
	screen := string(b)
	for _, want := range []string{"\rmodel.gguf  50% [=====", "\rmodel.gguf 100% [=================", "] 2.0 MB/2.0 MB\x1b[K"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen %q lacks %q", screen, want)
		}
	}
	if strings.Contains(screen, "skipped") {
		t.Errorf("a redraw within 100ms was not skipped: %q", screen)
	}
}

func TestTransferRate(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	tr := newTransferRate(clock.now)
	// A download resumed at 1 MB of 11 MB, then 1 MB a second.
	if rate, eta := tr.update(pull.Progress{File: "f", Start: 1e6, Done: 1e6, Total: 11e6}); rate != 0 || eta >= 0 {
		t.Errorf("first update: rate %v eta %v, want unknown", rate, eta)
	}
	var rate float64
	var eta time.Duration
	for i := 1; i <= 5; i++ {
		clock.t = clock.t.Add(time.Second)
		rate, eta = tr.update(pull.Progress{File: "f", Start: 1e6, Done: 1e6 + int64(i)*1e6, Total: 11e6})
	}
	if rate != 1e6 || eta != 5*time.Second {
		t.Errorf("rate %v eta %v, want 1 MB/s and 5s", rate, eta)
	}
}

func TestFormatBytesAndETA(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 397_821_952: "397.8 MB", 4_920_000_000: "4.9 GB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{-1: "?", 4400 * time.Millisecond: "4s", 192 * time.Second: "3m12s", 3900 * time.Second: "1h05m"} {
		if got := formatETA(d); got != want {
			t.Errorf("formatETA(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	var out, host string
	var local bool
	f := newFlagSet("x", "", "")
	f.String(&out, "output", "", "", nil)
	f.String(&host, "host", "", "", nil)
	f.Bool(&local, "local", false, "")
	tests := []struct {
		args            []string
		flags, position []string
	}{
		{[]string{"m", "a", "b"}, nil, []string{"m", "a", "b"}},
		{[]string{"--host", "h", "m", "p"}, []string{"--host", "h"}, []string{"m", "p"}},
		{[]string{"m", "--local", "p", "-o", "f.png"}, []string{"--local", "--output", "f.png"}, []string{"m", "p"}},
		{[]string{"m", "--host=h", "-o=x", "p"}, []string{"--host=h", "--output=x"}, []string{"m", "p"}},
		{[]string{"m", "--", "--not-a-flag", "-"}, nil, []string{"m", "--not-a-flag", "-"}},
		{[]string{"m", "--unknown", "p"}, []string{"--unknown"}, []string{"m", "p"}},
	}
	for _, tt := range tests {
		flags, pos := splitArgs(f, tt.args, map[string]string{"o": "output"})
		if !slices.Equal(flags, tt.flags) || !slices.Equal(pos, tt.position) {
			t.Errorf("splitArgs(%q) = %q, %q; want %q, %q", tt.args, flags, pos, tt.flags, tt.position)
		}
	}
}
