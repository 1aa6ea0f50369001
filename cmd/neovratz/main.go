// Command neovratz is the self-hosted AI inference server: one binary holding the all-in-one
// server (serve), the API service (api) and the GPU worker (worker).
//
// main only wires the process to the Main type; everything else — parsing, validation, running —
// happens in Main.Run, so tests run the real program in-process.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234".
var (
	version = "dev"
	commit  = ""
)

func main() {
	m := &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	ctx, cancel := context.WithCancel(context.Background())
	// The first SIGTERM, or SIGINT (Ctrl-C) that no command has taken over, cancels ctx and
	// starts a graceful shutdown; signal.Stop then restores the default handling, so a second
	// signal kills a process stuck in shutdown. While a command has taken SIGINT over
	// (m.interrupts: run's chat, where Ctrl-C stops one answer), each SIGINT goes to it and ctx
	// ends only with SIGTERM. One channel gets both signals, rather than signal.NotifyContext
	// beside a command's own signal.Notify: every channel registered for a signal receives it,
	// so ctx would end on the Ctrl-C meant for the command.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			if s != os.Interrupt || !m.interrupts.deliver() {
				break
			}
		}
		signal.Stop(sigs)
		cancel()
	}()
	code := m.Run(ctx, os.Args[1:])
	cancel()
	os.Exit(code)
}

// Exit codes of Run.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // bad command line, environment or config file; nothing was started
)

// Main is the program. Its fields are the process's surroundings, injected so tests can run
// it in-process.
type Main struct {
	// Stdin is the input of the commands that read one (run); nil means none.
	Stdin  io.Reader
	Stdout io.Writer // logs and requested output (help, version)
	Stderr io.Writer // errors
	// Getenv looks up an environment variable; nil means an empty environment. It is the only
	// way the program reads the environment.
	Getenv func(key string) string

	// interrupts is where SIGINT goes while a command has taken it over; main delivers it.
	interrupts interrupts
}

// command is one subcommand: each lives in its own file with its own flags and usage text.
type command interface {
	// Run runs the subcommand with the arguments that follow its name.
	Run(ctx context.Context, args []string) error
	// Usage writes the subcommand's usage text to w.
	Usage(w io.Writer)
}

func (m *Main) commands() []struct {
	name, summary string
	cmd           command
} {
	return []struct {
		name, summary string
		cmd           command
	}{
		{"serve", "run everything in one process on the embedded broker (or Redis)", &serveCommand{m: m}},
		{"api", "run the API service against Redis", &apiCommand{m: m}},
		{"worker", "run a GPU worker: pull jobs from Redis or a remote API, run them on engines", &workerCommand{m: m}},
		{"keys", "create, list and revoke API keys", &keysCommand{m: m}},
		{"pull", "download a model from Hugging Face or a URL into the models directory", &pullCommand{m: m}},
		{"models", "list the models in the models directory", &modelsCommand{m: m}},
		{"rm", "remove a model from the models directory", &rmCommand{m: m}},
		{"run", "chat with a model through a running server (or in-process with --local)", &runCommand{m: m}},
		{"image", "generate an image through a running server", &imageCommand{m: m}},
		{"tokenize", "print the token ids of a text under a GGUF model's tokenizer", &tokenizeCommand{m: m}},
		{"txt2img", "generate an image from a prompt with the native diffusion engine, in-process", &txt2imgCommand{m: m}},
		{"generate", "generate text from a prompt with the native engine and report its speed", &generateCommand{m: m}},
		{"healthcheck", "exit 0 when a running server's health URL answers 200 (container health checks)", &healthcheckCommand{m: m}},
		{"version", "print the version", &versionCommand{m: m}},
		{"help", "show help for a command", &helpCommand{m: m}},
	}
}

func (m *Main) command(name string) command {
	for _, c := range m.commands() {
		if c.name == name {
			return c.cmd
		}
	}
	return nil
}

// Run runs the subcommand named by args[0] and returns the process exit code: 0 on success,
// 1 when the command failed, 2 for a usage error (bad flag, environment variable or config
// file), which is reported as one line on Stderr.
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		m.usage(m.Stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		m.usage(m.Stdout)
		return exitOK
	case "-v", "-version", "--version":
		name = "version"
	}
	cmd := m.command(name)
	if cmd == nil {
		fmt.Fprintf(m.Stderr, "neovratz: unknown command %q (run 'neovratz help')\n", name)
		return exitUsage
	}
	err := cmd.Run(ctx, args[1:])
	var uerr *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		cmd.Usage(m.Stdout)
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(m.Stderr, "neovratz %s: %v (run 'neovratz %s -h')\n", name, err, name)
		return exitUsage
	default:
		fmt.Fprintf(m.Stderr, "neovratz %s: %v\n", name, err)
		return exitError
	}
}

func (m *Main) usage(w io.Writer) {
	fmt.Fprint(w, `neovratz is a self-hosted AI inference server.

Usage:

	neovratz <command> [flags]

Commands:

`)
	for _, c := range m.commands() {
		fmt.Fprintf(w, "	%-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every flag can also be set with an environment variable NEOVRATZ_<FLAG> (--redis-url is
NEOVRATZ_REDIS_URL) or in the YAML file named by --config. A flag wins over the environment,
which wins over the file. Run 'neovratz <command> -h' for a command's flags.
`)
}

func (m *Main) getenv(key string) string {
	if m.Getenv == nil {
		return ""
	}
	return m.Getenv(key)
}

// helpCommand prints the usage of the program or of one command.
type helpCommand struct{ m *Main }

func (c *helpCommand) Run(ctx context.Context, args []string) error {
	switch len(args) {
	case 0:
		c.m.usage(c.m.Stdout)
		return nil
	case 1:
		if args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			c.Usage(c.m.Stdout)
			return nil
		}
		cmd := c.m.command(args[0])
		if cmd == nil {
			return usageErrorf("unknown command %q", args[0])
		}
		cmd.Usage(c.m.Stdout)
		return nil
	default:
		return usageErrorf("want at most one command name, got %d arguments", len(args))
	}
}

func (c *helpCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: neovratz help [command]

Shows the usage of neovratz, or of one command with all its flags.
`)
}
