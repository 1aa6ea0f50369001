package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/neovratz/neovratz/internal/client"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/inference"
	"github.com/neovratz/neovratz/internal/openai"
	"github.com/neovratz/neovratz/internal/worker/workertest"
)

// The run and image tests talk to a whole neovratz started in-process by workertest: the
// embedded broker, the real HTTP API and a worker on the sim engine, whose answers are
// deterministic, so each expected answer is computed by asking the sim engine directly.

var runSim = sim.Config{InterTokenLatency: time.Millisecond}

// simAnswer is the sim engine's answer to a chat.
func simAnswer(t *testing.T, msgs ...client.Message) string {
	t.Helper()
	return simAnswerOf(t, runSim, msgs...)
}

// simAnswerOf is the answer of a sim engine configured with cfg, which waits for nothing here.
func simAnswerOf(t *testing.T, cfg sim.Config, msgs ...client.Message) string {
	t.Helper()
	cfg.TimeToFirstToken, cfg.InterTokenLatency = 0, 0
	req := inference.TextRequest{Model: workertest.TextModel, N: 1}
	for _, m := range msgs {
		req.Messages = append(req.Messages, openai.Message{Role: m.Role, Content: openai.Content(m.Content)})
	}
	res, err := sim.New(cfg).GenerateText(context.Background(), req, func(inference.TextDelta) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return res.Choices[0].Text
}

func user(s string) client.Message      { return client.Message{Role: "user", Content: s} }
func assistant(s string) client.Message { return client.Message{Role: "assistant", Content: s} }

func TestRunOneShot(t *testing.T) {
	s := workertest.New(t, workertest.Options{Sim: runSim})
	e := env{"NEOVRATZ_HOST": s.URL}
	tests := []struct {
		name  string
		args  []string
		stdin io.Reader
		want  string
	}{
		{"prompt", []string{"run", workertest.TextModel, "why", "is", "the", "sky", "blue?"}, nil, simAnswer(t, user("why is the sky blue?"))},
		{"piped", []string{"run", workertest.TextModel}, strings.NewReader("hello from a pipe\n"), simAnswer(t, user("hello from a pipe"))},
		{"prompt and piped", []string{"run", workertest.TextModel, "Summarize:"}, strings.NewReader("notes\n"), simAnswer(t, user("Summarize:\n\nnotes"))},
		{"system", []string{"run", "--system", "be brief", workertest.TextModel, "hi"}, nil,
			simAnswer(t, client.Message{Role: "system", Content: "be brief"}, user("hi"))},
		{"host flag", []string{"run", "--host", strings.TrimPrefix(s.URL, "http://"), workertest.TextModel, "hi"}, nil, simAnswer(t, user("hi"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runIn(ctxTest(t), e, tt.stdin, tt.args...)
			if code != 0 || out != tt.want+"\n" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, out, errs, tt.want)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	s := workertest.New(t, workertest.Options{Sim: runSim})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name   string
		env    env
		args   []string
		code   int
		stderr string
	}{
		{"no model", env{}, []string{"run"}, exitUsage, "want the model to run"},
		{"no prompt", env{"NEOVRATZ_HOST": s.URL}, []string{"run", "m"}, exitUsage, "want a prompt"},
		{"unknown model", env{"NEOVRATZ_HOST": s.URL}, []string{"run", "nope", "hi"}, exitError,
			"neovratz run: The model \"nope\" does not exist or no worker serves it. (HTTP 404); to run a model file of this machine without a server: neovratz run --local MODEL\n"},
		{"no server", env{"NEOVRATZ_HOST": "http://" + nowhere}, []string{"run", "m", "hi"}, exitError, "is 'neovratz serve' running?"},
		{"bad host", env{"NEOVRATZ_HOST": "ftp://x"}, []string{"run", "m", "hi"}, exitUsage, "NEOVRATZ_HOST"},
		{"bad temperature", env{}, []string{"run", "m", "hi", "--temperature", "3"}, exitUsage, "want a number from 0 to 2"},
		{"local model missing", env{"NEOVRATZ_MODELS_DIR": t.TempDir()}, []string{"run", "--local", "nope", "hi"}, exitError, `model "nope" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runIn(ctxTest(t), tt.env, nil, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.stderr) || strings.Contains(errs, "{") {
				t.Errorf("exit %d, stderr %q; want %d and %q, without JSON", code, errs, tt.code, tt.stderr)
			}
		})
	}
}

// TestRunInteractive drives a chat through a pseudo-terminal, as a person at a terminal does:
// history kept between turns, a """ block, a line continued with a backslash, /clear and /bye.
func TestRunInteractive(t *testing.T) {
	s := workertest.New(t, workertest.Options{Sim: runSim})
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	term := newTerminal(t, ptmx)
	m := &Main{Stdin: tty, Stdout: tty, Stderr: tty, Getenv: env{"NEOVRATZ_HOST": s.URL}.get}
	exit := make(chan int, 1)
	go func() { exit <- m.Run(ctxTest(t), []string{"run", workertest.TextModel}) }()

	term.waitFor("Chatting with " + workertest.TextModel)
	term.waitFor(">>> ")
	term.typeLine("hi")
	first := simAnswer(t, user("hi"))
	term.waitFor(first + "\n")
	term.waitFor(">>> ")

	term.typeLine(`"""`)
	term.waitFor("... ")
	term.typeLine("line one")
	term.typeLine("line two")
	term.typeLine(`"""`)
	second := simAnswer(t, user("hi"), assistant(first), user("line one\nline two"))
	term.waitFor(second + "\n")

	term.typeLine("/clear")
	term.waitFor("Cleared the chat history.")
	term.typeLine(`after clear\`)
	term.waitFor("... ")
	term.typeLine("second line")
	term.waitFor(simAnswer(t, user("after clear\nsecond line")) + "\n")

	term.typeLine("/bye")
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not end after /bye")
	}
}

// terminal is the master side of a pseudo-terminal: the screen the program writes to, and the
// keyboard the test types on.
type terminal struct {
	t      *testing.T
	ptmx   *os.File
	screen syncBuffer
	seen   int // how much of the screen earlier waits went past
}

func newTerminal(t *testing.T, ptmx *os.File) *terminal {
	term := &terminal{t: t, ptmx: ptmx}
	go io.Copy(&term.screen, ptmx) // ends with an error when ptmx closes
	return term
}

// waitFor waits until the screen shows want after what earlier waits saw, and returns what
// it showed in between.
func (term *terminal) waitFor(want string) string {
	term.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		text := strings.ReplaceAll(term.screen.String(), "\r", "") // the terminal writes \r\n
		if i := strings.Index(text[term.seen:], want); i >= 0 {
			between := text[term.seen : term.seen+i]
			term.seen += i + len(want)
			return between
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("the screen never showed %q; it shows:\n%s", want, text)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// typeLine types line and Enter.
func (term *terminal) typeLine(line string) { term.press(line + "\n") }

// press types keys: "\x03" is Ctrl-C, "\x04" Ctrl-D.
func (term *terminal) press(keys string) {
	term.t.Helper()
	if _, err := term.ptmx.Write([]byte(keys)); err != nil {
		term.t.Fatal(err)
	}
}

// TestChatSession runs the chat loop on plain input: the commands, a failed turn that leaves
// the history alone, and the end of input.
func TestChatSession(t *testing.T) {
	s := workertest.New(t, workertest.Options{Sim: runSim})
	cl, err := client.New(client.Config{BaseURL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cs := &chatSession{backend: remoteChat{c: cl}, model: workertest.TextModel, out: &out, errOut: &errOut}
	in := "/set system be kind\n/frobnicate\n/?\nhello\n/set system\nagain\n"
	if err := cs.interactive(ctxTest(t), strings.NewReader(in), nil); err != nil {
		t.Fatal(err)
	}
	sys := client.Message{Role: "system", Content: "be kind"}
	a1 := simAnswer(t, sys, user("hello"))
	a2 := simAnswer(t, user("hello"), assistant(a1), user("again"))
	for _, want := range []string{"Set the system prompt.", "Unknown command /frobnicate", "/clear             forget", a1 + "\n", "Removed the system prompt.", a2 + "\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not show %q:\n%s", want, out.String())
		}
	}

	// A turn the server refuses is reported, and not kept.
	cs = &chatSession{backend: remoteChat{c: cl}, model: "nope", out: &out, errOut: &errOut}
	if err := cs.interactive(ctxTest(t), strings.NewReader("hello\n"), nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), `error: The model "nope" does not exist`) || len(cs.history) != 0 {
		t.Errorf("stderr %q, history %v", errOut.String(), cs.history)
	}
}

func TestReadMessage(t *testing.T) {
	tests := []struct {
		name, in, want string
		prompts        int
	}{
		{"line", "hello\n", "hello", 1},
		{"backslash", "one \\\ntwo\\\nthree\n", "one \ntwo\nthree", 3},
		{"block", "\"\"\"\nfirst\n\n  indented\n\"\"\"\n", "first\n\n  indented", 5},
		{"block opening text", "\"\"\"first\nsecond\"\"\"\n", "first\nsecond", 2},
		{"block on one line", "\"\"\"just this\"\"\"\n", "just this", 1},
		{"block cut by the end of input", "\"\"\"\nhalf\n", "half", 3},
		{"crlf", "hi\r\n", "hi", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := readLines(strings.NewReader(tt.in))
			defer lr.stop()
			prompts := 0
			got, err := readMessage(func(string) (string, error) {
				prompts++
				return lr.next(context.Background(), nil)
			})
			if err != nil || got != tt.want || prompts != tt.prompts {
				t.Errorf("got %q, %v after %d prompts; want %q after %d", got, err, prompts, tt.want, tt.prompts)
			}
		})
	}
}
