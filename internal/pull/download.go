package pull

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ChecksumError is a downloaded file whose sha256 is not the one its source published. The
// partial file is removed, so the next pull downloads it afresh.
type ChecksumError struct {
	Name      string
	Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: sha256 mismatch: the source publishes %s but the download is %s; the partial file was removed, pull again to start over",
		e.Name, e.Want, e.Got)
}

// transient is a failure that a resumed request may get past: a dropped connection, a 5xx.
type transient struct{ err error }

func (e *transient) Error() string { return e.err.Error() }
func (e *transient) Unwrap() error { return e.err }

// fetch brings one file into the directory, resuming its partial file when there is one.
func (p *Puller) fetch(ctx context.Context, f remote, opts Options) (File, error) {
	notice := opts.Notice
	if notice == nil {
		notice = func(string) {}
	}
	if err := os.MkdirAll(p.cfg.Dir, 0o755); err != nil {
		return File{}, fmt.Errorf("create models directory: %w", err)
	}
	dest := filepath.Join(p.cfg.Dir, f.name)
	// Held from the look at the file to its rename into place, so that no other pull of it
	// interleaves: two would append to one partial file.
	unlock, err := lockFile(lockPath(dest), f.name)
	if err != nil {
		return File{}, err
	}
	defer unlock()
	out := File{Name: f.name, Path: dest, SHA256: f.sha256}
	if st, err := os.Stat(dest); err == nil && !opts.Force {
		if f.size == 0 || st.Size() == f.size {
			out.Size, out.Present, out.SHA256 = st.Size(), true, ""
			return out, nil
		}
		return File{}, fmt.Errorf("%s exists with %d bytes, but the source has %d: remove it first (neovratz rm) or pull with --force",
			dest, st.Size(), f.size)
	}
	partial := partialPath(dest)
	wait := p.cfg.RetryWait
	for try := 0; ; try++ {
		start, sum, err := p.attempt(ctx, &f, partial, opts.Progress, notice)
		if try == 0 {
			out.Resumed = start
		}
		if err == nil {
			out.SHA256 = sum
			break
		}
		var tr *transient
		if ctx.Err() != nil {
			return File{}, fmt.Errorf("%s: %w (the partial file is kept: pull again to resume)", f.name, ctx.Err())
		}
		if !errors.As(err, &tr) {
			return File{}, err
		}
		have := fileSize(partial)
		if try >= p.cfg.Retries {
			return File{}, fmt.Errorf("%s: download interrupted at %s: %v (the partial file is kept: pull again to resume)",
				f.name, ofTotal(have, f.size), err)
		}
		notice(fmt.Sprintf("%s: %v at %s; resuming in %s (retry %d of %d)", f.name, err, ofTotal(have, f.size), wait, try+1, p.cfg.Retries))
		select {
		case <-ctx.Done():
			return File{}, fmt.Errorf("%s: %w (the partial file is kept: pull again to resume)", f.name, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
	if f.sha256 != "" && out.SHA256 != f.sha256 {
		os.Remove(partial)
		return File{}, &ChecksumError{Name: f.name, Want: f.sha256, Got: out.SHA256}
	}
	if !isSHA256(f.sha256) {
		out.SHA256 = "" // nothing to verify against: do not claim it was checked
	}
	if err := os.Rename(partial, dest); err != nil {
		return File{}, fmt.Errorf("%s: %w", f.name, err)
	}
	syncDir(p.cfg.Dir)
	out.Size = fileSize(dest)
	return out, nil
}

// attempt makes one request for the rest of the file, appends what arrives to the partial file,
// and returns the offset it started at and the sha256 of the whole partial file once complete.
func (p *Puller) attempt(ctx context.Context, f *remote, partial string, progress func(Progress), notice func(string)) (start int64, sum string, err error) {
	offset := fileSize(partial)
	if f.size > 0 && offset > f.size {
		notice(fmt.Sprintf("%s: the partial file is larger than the source; starting over", f.name))
		os.Remove(partial)
		offset = 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return 0, "", err
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, linked, err := p.download(req)
	if err != nil {
		return offset, "", &transient{err}
	}
	defer resp.Body.Close()
	if f.sha256 == "" {
		// The hub answers a file in LFS with a redirect whose X-Linked-Etag is the sha256.
		if tag := strings.Trim(strings.TrimPrefix(linked.Get("X-Linked-Etag"), "W/"), `"`); isSHA256(tag) {
			f.sha256 = strings.ToLower(tag)
		}
	}
	if f.size == 0 {
		f.size, _ = strconv.ParseInt(linked.Get("X-Linked-Size"), 10, 64)
	}
	total := int64(0)
	switch resp.StatusCode {
	case http.StatusOK:
		if offset > 0 {
			notice(fmt.Sprintf("%s: the server does not resume downloads; starting over", f.name))
			offset = 0
		}
		total = max(resp.ContentLength, 0)
	case http.StatusPartialContent:
		first, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || first != offset {
			os.Remove(partial)
			return offset, "", &transient{fmt.Errorf("the server resumed at the wrong place (Content-Range %q)", resp.Header.Get("Content-Range"))}
		}
		total = size
	case http.StatusRequestedRangeNotSatisfiable:
		if f.size > 0 && offset == f.size {
			total = offset // the partial file is whole: a previous run stopped just before renaming it
			break
		}
		os.Remove(partial)
		return offset, "", &transient{errors.New("the server cannot resume from the partial file; starting over")}
	default:
		err := p.statusError(resp, f.name)
		if resp.StatusCode >= 500 {
			return offset, "", &transient{err}
		}
		return offset, "", err
	}
	if total > 0 && f.size > 0 && total != f.size {
		return offset, "", fmt.Errorf("%s: the server sends %d bytes but the listing says %d", f.name, total, f.size)
	}
	if f.size == 0 {
		f.size = total
	}

	h := sha256.New()
	if offset > 0 {
		if err := hashPrefix(h, partial, offset); err != nil {
			return offset, "", err
		}
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if offset == 0 {
		flags |= os.O_TRUNC
	}
	out, err := os.OpenFile(partial, flags, 0o644)
	if err != nil {
		return offset, "", fmt.Errorf("%s: %w", f.name, err)
	}
	done := offset
	report := func() {
		if progress != nil {
			progress(Progress{File: f.name, Done: done, Total: f.size, Start: offset})
		}
	}
	report()
	buf := make([]byte, 256<<10)
	var copyErr error
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		for {
			n, rerr := resp.Body.Read(buf)
			if n > 0 {
				if _, werr := out.Write(buf[:n]); werr != nil {
					copyErr = fmt.Errorf("%s: %w", f.name, werr) // a full disk is not worth a retry
					break
				}
				h.Write(buf[:n])
				done += int64(n)
				report()
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				copyErr = &transient{rerr}
				break
			}
		}
	}
	if err := out.Sync(); err != nil && copyErr == nil {
		copyErr = err
	}
	if err := out.Close(); err != nil && copyErr == nil {
		copyErr = err
	}
	if copyErr != nil {
		return offset, "", copyErr
	}
	if f.size > 0 && done != f.size {
		return offset, "", &transient{fmt.Errorf("the connection closed early (%s)", ofTotal(done, f.size))}
	}
	return offset, hex.EncodeToString(h.Sum(nil)), nil
}

// download sends a download request and returns, besides the response, the headers of the
// first redirect (where the hub puts X-Linked-Etag and X-Linked-Size), or the response's own
// when there was none.
func (p *Puller) download(req *http.Request) (*http.Response, http.Header, error) {
	c := *p.client
	var linked http.Header
	c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if linked == nil && r.Response != nil {
			linked = r.Response.Header
		}
		if p.client.CheckRedirect != nil {
			return p.client.CheckRedirect(r, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	p2 := *p
	p2.client = &c
	resp, err := p2.do(req)
	if err != nil {
		return nil, nil, err
	}
	if linked == nil {
		linked = resp.Header
	}
	return resp, linked, nil
}

// parseContentRange parses "bytes FIRST-LAST/SIZE" (SIZE may be *).
func parseContentRange(s string) (first, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if sz != "*" {
		if size, err = strconv.ParseInt(sz, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return first, size, true
}

// hashPrefix feeds the first n bytes of the file at path to h.
func hashPrefix(h hash.Hash, path string, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(h, f, n); err != nil {
		return fmt.Errorf("read partial file: %w", err)
	}
	return nil
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// syncDir makes a rename in dir durable; where directories cannot be synced it does nothing.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func ofTotal(done, total int64) string {
	if total > 0 {
		return fmt.Sprintf("%d of %d bytes", done, total)
	}
	return fmt.Sprintf("%d bytes", done)
}
