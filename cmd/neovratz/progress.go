package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// isTerminal reports whether f is a terminal (a *os.File on one); anything else, such as a
// pipe, a file or a test's buffer, is not.
func isTerminal(f any) bool {
	fd, ok := f.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(fd.Fd()))
}

// terminalWidth returns the width of the terminal w is on, or 80.
func terminalWidth(w any) int {
	if f, ok := w.(*os.File); ok {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 20 {
			return width
		}
	}
	return 80
}

// progressBar shows how far a task is: on a terminal a bar redrawn in place, elsewhere (a log,
// a pipe) a plain line now and then, so that logs stay readable.
type progressBar struct {
	w     io.Writer
	tty   bool
	width int
	now   func() time.Time
	// every is how often a line or redraw is written at most.
	every   time.Duration
	last    time.Time
	drawn   bool // a bar is on the current line and needs a newline before other output
	lastPct int  // plain mode: the last percentage written
}

func newProgressBar(w io.Writer, now func() time.Time) *progressBar {
	p := &progressBar{w: w, tty: isTerminal(w), now: now, lastPct: -1}
	p.width = terminalWidth(w)
	if p.tty {
		p.every = 100 * time.Millisecond
	} else {
		p.every = 5 * time.Second
	}
	return p
}

// update shows label at frac (0 to 1) with detail after the bar. force writes even within the
// throttle interval (the last step of a task). Plain lines are written at most every few
// seconds, and at each new tenth of the way.
func (p *progressBar) update(label string, frac float64, detail string, force bool) {
	frac = min(max(frac, 0), 1)
	pct := int(frac * 100)
	now := p.now()
	if p.tty {
		if !force && now.Sub(p.last) < p.every {
			return
		}
		p.last = now
		left := fmt.Sprintf("%s %3d%% ", label, pct)
		right := " " + detail
		barWidth := p.width - len([]rune(left)) - len([]rune(right)) - 3
		line := left + right
		if barWidth >= 10 {
			filled := int(frac * float64(barWidth))
			line = left + "[" + strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled) + "]" + right
		}
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.drawn = true
		return
	}
	if !force && (pct == p.lastPct || now.Sub(p.last) < p.every && pct/10 == p.lastPct/10) {
		return
	}
	p.last, p.lastPct = now, pct
	fmt.Fprintf(p.w, "%s: %d%% %s\n", label, pct, detail)
}

// done ends the bar's line, so that what follows starts on a line of its own.
func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
	p.lastPct = -1
	p.last = time.Time{}
}

// formatBytes writes a size in decimal units, as download pages do: 397.8 MB.
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}

// formatETA writes a remaining time briefly: 45s, 3m12s, 1h05m.
func formatETA(d time.Duration) string {
	switch {
	case d < 0:
		return "?"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()+0.5))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
