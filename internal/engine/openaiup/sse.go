package openaiup

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxEventBytes bounds one server-sent event; a chunk of a few tokens is well under 1 KiB.
const maxEventBytes = 4 << 20

// errDone is returned by readEvents when the stream sent its "data: [DONE]" terminator.
var errDone = errors.New("[DONE]")

// readEvents reads a server-sent event stream and calls fn with the data of each event (the
// "data:" lines of one event joined by newlines), until "[DONE]", the end of the stream, or an
// error from fn. Comments (":" lines, which servers send to keep a connection open) and other
// fields are skipped. It returns nil after [DONE], io.ErrUnexpectedEOF when the stream ended
// without it, and fn's error otherwise.
func readEvents(r io.Reader, fn func(data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	var data []byte
	has := false
	dispatch := func() error {
		if !has {
			return nil
		}
		d := data
		data, has = data[:0], false
		if bytes.Equal(bytes.TrimSpace(d), []byte("[DONE]")) {
			return errDone
		}
		return fn(d)
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if err := dispatch(); err != nil {
				return doneIsNil(err)
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		if string(field) != "data" {
			continue // a comment (empty field), event:, id:, retry:
		}
		value = bytes.TrimPrefix(value, []byte(" "))
		if has {
			data = append(data, '\n')
		}
		data = append(data, value...)
		has = true
	}
	if err := sc.Err(); err != nil {
		return err
	}
	// A last event without its blank line still counts.
	if err := dispatch(); err != nil {
		return doneIsNil(err)
	}
	return io.ErrUnexpectedEOF
}

func doneIsNil(err error) error {
	if errors.Is(err, errDone) {
		return nil
	}
	return err
}
