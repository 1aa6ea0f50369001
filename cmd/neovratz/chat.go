package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/neovratz/neovratz/internal/client"
)

// chatBackend answers chats: a server (the default) or an engine in this process (--local).
type chatBackend interface {
	Chat(ctx context.Context, req client.ChatRequest, onDelta func(string)) (client.ChatResult, error)
	Close() error
}

// remoteChat is a server reached through the client.
type remoteChat struct {
	c   *client.Client
	cfg clientConfig
}

func (r remoteChat) Chat(ctx context.Context, req client.ChatRequest, onDelta func(string)) (client.ChatResult, error) {
	res, err := r.c.Chat(ctx, req, onDelta)
	var apiErr *client.Error
	if errors.As(err, &apiErr) && apiErr.Code == "model_not_found" {
		return res, fmt.Errorf("%w; to run a model file of this machine without a server: neovratz run --local MODEL", err)
	}
	return res, r.cfg.explain(err)
}

func (r remoteChat) Close() error { return nil }

func (c *runCommand) openRemote(cfg runConfig) (chatBackend, error) {
	cl, err := cfg.Client.newClient()
	if err != nil {
		return nil, err
	}
	return remoteChat{c: cl, cfg: cfg.Client}, nil
}

// chatSession is one conversation with a model: what was said so far, and how to show it.
type chatSession struct {
	backend     chatBackend
	model       string
	system      string
	maxTokens   int
	temperature *float64
	history     []client.Message // user and assistant turns, oldest first
	out, errOut io.Writer
}

// ask sends text as the next user turn, streams the answer to out, and keeps both in the
// history once the answer is complete (a failed turn leaves the history as it was, so the
// person can simply ask again).
func (s *chatSession) ask(ctx context.Context, text string) error {
	var msgs []client.Message
	if s.system != "" {
		msgs = append(msgs, client.Message{Role: "system", Content: s.system})
	}
	msgs = append(msgs, s.history...)
	msgs = append(msgs, client.Message{Role: "user", Content: text})
	endsLine := true
	res, err := s.backend.Chat(ctx, client.ChatRequest{Model: s.model, Messages: msgs, MaxTokens: s.maxTokens, Temperature: s.temperature},
		func(d string) {
			io.WriteString(s.out, d)
			endsLine = strings.HasSuffix(d, "\n")
		})
	if !endsLine {
		fmt.Fprintln(s.out)
	}
	if err != nil {
		return err
	}
	if res.FinishReason == "length" && s.maxTokens == 0 { // asked for with --max-tokens: no news
		fmt.Fprintln(s.errOut, "(the answer reached the token limit and was cut short)")
	}
	s.history = append(s.history, client.Message{Role: "user", Content: text}, client.Message{Role: "assistant", Content: res.Text})
	return nil
}

// oneShot answers a single prompt.
func (s *chatSession) oneShot(ctx context.Context, prompt string) error {
	return s.ask(ctx, prompt)
}

const chatHelp = `Commands:
  /bye               leave (Ctrl-D too)
  /clear             forget the chat so far
  /set system TEXT   set the system prompt (/set system alone removes it)
  /?, /help          this help
  Ctrl-C             stop the answer being written

End a line with \ to go on typing on the next line, or put a message between """ lines:
  >>> """
  ... a message
  ... over several lines
  ... """
`

// errInterrupted is a Ctrl-C while the chat waits for input.
var errInterrupted = errors.New("interrupted")

// The prompts of the chat: for a message, and for the next line of one.
const (
	promptMessage = ">>> "
	promptMore    = "... "
)

// interactive chats until /bye, the end of input (Ctrl-D), or ctx ending. Each receive from
// intr is a Ctrl-C: it stops the answer being written, whose request is canceled (the server
// then cancels the job), or drops the message being typed; the chat goes on either way.
func (s *chatSession) interactive(ctx context.Context, in io.Reader, intr <-chan struct{}) error {
	lines := readLines(in)
	defer lines.stop()
	fmt.Fprintf(s.out, "Chatting with %s. Type /? for help, /bye or Ctrl-D to leave.\n", s.model)
	for {
		prompt := ""
		text, err := readMessage(func(p string) (string, error) {
			prompt = p
			io.WriteString(s.out, p)
			return lines.next(ctx, intr)
		})
		if errors.Is(err, errInterrupted) {
			// The terminal echoed ^C and threw away the line typed so far.
			fmt.Fprintln(s.out)
			if prompt == promptMessage {
				fmt.Fprintln(s.out, "Use /bye or Ctrl-D to leave.")
			}
			continue
		}
		if err != nil {
			fmt.Fprintln(s.out)
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			return err
		}
		trimmed := strings.TrimSpace(text)
		switch {
		case trimmed == "":
			continue
		case strings.HasPrefix(trimmed, "/"):
			if s.command(trimmed) {
				return nil
			}
			continue
		}
		if stopped, err := s.answer(ctx, text, intr); err != nil && !stopped {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(s.errOut, "error: %v\n", err)
		}
		fmt.Fprintln(s.out)
	}
}

// answer asks text, stopping at a Ctrl-C from intr: the answer's context is canceled, which
// closes its stream. The stopped turn is not kept, as a failed one. It reports whether the
// answer was stopped so.
func (s *chatSession) answer(ctx context.Context, text string, intr <-chan struct{}) (stopped bool, err error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	interrupted := make(chan bool, 1)
	go func() {
		select {
		case <-intr:
			cancel()
			interrupted <- true
		case <-done:
			interrupted <- false
		}
	}()
	err = s.ask(actx, text)
	close(done)
	// A Ctrl-C that came as a complete answer ended stopped nothing.
	return <-interrupted && err != nil, err
}

// command runs a /command and reports whether the chat ends.
func (s *chatSession) command(line string) (bye bool) {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/bye", "/exit":
		return true
	case "/clear":
		s.history = nil
		fmt.Fprintln(s.out, "Cleared the chat history.")
	case "/set":
		what, text, _ := strings.Cut(arg, " ")
		if what != "system" {
			fmt.Fprintln(s.out, "Usage: /set system TEXT")
			break
		}
		s.system = strings.TrimSpace(text)
		if s.system == "" {
			fmt.Fprintln(s.out, "Removed the system prompt.")
		} else {
			fmt.Fprintln(s.out, "Set the system prompt.")
		}
	case "/?", "/help":
		fmt.Fprint(s.out, chatHelp)
	default:
		fmt.Fprintf(s.out, "Unknown command %s (type /? for help)\n", name)
	}
	return false
}

// readMessage reads one message with next, which shows a prompt and returns a line: a single
// line; lines joined while they end with a backslash; or the lines between """ and """.
func readMessage(next func(prompt string) (string, error)) (string, error) {
	line, err := next(promptMessage)
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if rest, ok := strings.CutPrefix(strings.TrimLeft(line, " \t"), `"""`); ok {
		if before, _, closed := strings.Cut(rest, `"""`); closed {
			return before, nil
		}
		parts := []string{}
		if rest != "" {
			parts = append(parts, rest)
		}
		for {
			line, err := next(promptMore)
			if err != nil {
				if err == io.EOF && len(parts) > 0 {
					return strings.Join(parts, "\n"), nil
				}
				return "", err
			}
			line = strings.TrimRight(line, "\r\n")
			if before, _, closed := strings.Cut(line, `"""`); closed {
				if before != "" {
					parts = append(parts, before)
				}
				return strings.Join(parts, "\n"), nil
			}
			parts = append(parts, line)
		}
	}
	var parts []string
	for {
		cont, more := strings.CutSuffix(line, `\`)
		parts = append(parts, cont)
		if !more {
			return strings.Join(parts, "\n"), nil
		}
		line, err = next(promptMore)
		if err != nil {
			if err == io.EOF {
				return strings.Join(parts, "\n"), nil
			}
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
	}
}

// lineReader reads lines in a goroutine, so that waiting for input gives way to ctx ending
// (SIGTERM) or to Ctrl-C at the prompt. A read from a terminal cannot be interrupted: after
// Ctrl-C the goroutine stays blocked in it, and the next line typed is the next message.
type lineReader struct {
	lines chan lineOrErr
	quit  chan struct{}
}

type lineOrErr struct {
	line string
	err  error
}

func readLines(in io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan lineOrErr), quit: make(chan struct{})}
	go func() {
		defer close(lr.lines)
		br := bufio.NewReader(in)
		for {
			line, err := br.ReadString('\n')
			if line != "" || err != nil {
				if err == io.EOF && line != "" {
					err = nil // the last line without a newline; EOF comes next
				}
				select {
				case lr.lines <- lineOrErr{line, err}:
				case <-lr.quit:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return lr
}

// next returns the next line, io.EOF at the end of input, ctx's error, or errInterrupted on a
// receive from intr (Ctrl-C).
func (lr *lineReader) next(ctx context.Context, intr <-chan struct{}) (string, error) {
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-intr:
		return "", errInterrupted
	case l, ok := <-lr.lines:
		if !ok {
			return "", io.EOF
		}
		return l.line, l.err
	}
}

func (lr *lineReader) stop() { close(lr.quit) }
