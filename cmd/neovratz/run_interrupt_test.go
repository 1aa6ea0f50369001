package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/worker/workertest"
)

// Ctrl-C is a signal only for the processes of a terminal's session, so these tests run the
// program as a child process (startMain) rather than in-process: in a pseudo-terminal that is
// its controlling terminal, where typing Ctrl-C sends it SIGINT as at a person's terminal.

// slowSim answers slowly enough to be interrupted: 30 tokens, 100ms apart.
var slowSim = sim.Config{InterTokenLatency: 100 * time.Millisecond, Tokens: 30}

// startMain returns the command that runs neovratz with args in a child process (TestMain),
// with env as its whole environment.
func startMain(t *testing.T, e env, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"TEST_NEOVRATZ_MAIN=1", "HOME=" + t.TempDir()}
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// waitExit waits for the child to end and returns its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd, exited <-chan error) int {
	t.Helper()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		t.Fatal("the program did not end")
		return -1
	}
}

// waitCanceled waits until the server holds n canceled jobs.
func waitCanceled(t *testing.T, s *workertest.Stack, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		jobs, _, err := s.Broker.List(context.Background(), broker.ListFilter{Status: job.StatusCanceled})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d canceled jobs, want %d", len(jobs), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunCtrlC interrupts a chat in a terminal as a person does: Ctrl-C while an answer
// streams stops that answer (the server cancels its job) and brings the prompt back, and the
// chat goes on without the stopped turn; Ctrl-C at the prompt shows how to leave; Ctrl-D
// leaves.
func TestRunCtrlC(t *testing.T) {
	s := workertest.New(t, workertest.Options{Sim: slowSim})
	cmd := startMain(t, env{"NEOVRATZ_HOST": s.URL}, "run", workertest.TextModel)
	ptmx, err := pty.Start(cmd)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill() // after a failure; a no-op once it exited
	term := newTerminal(t, ptmx)

	term.waitFor("Chatting with " + workertest.TextModel)
	term.waitFor(">>> ")
	term.typeLine("tell me a long story")
	long := simAnswerOf(t, slowSim, user("tell me a long story"))
	words := strings.Fields(long)
	start := words[0] + " " + words[1]
	term.waitFor(start)
	term.press("\x03")
	if shown := start + term.waitFor(">>> "); strings.Contains(shown, long) {
		t.Errorf("the answer went on to its end after Ctrl-C: %q", shown)
	}
	waitCanceled(t, s, 1)

	term.press("\x03")
	term.waitFor("Use /bye or Ctrl-D to leave.")
	term.waitFor(">>> ")

	// The stopped turn is not in the history: the answer is the one to this question alone.
	term.typeLine("and a short one?")
	term.waitFor(simAnswerOf(t, slowSim, user("and a short one?")) + "\n")
	term.waitFor(">>> ")

	term.press("\x04")
	if code := waitExit(t, cmd, exited); code != 0 {
		t.Errorf("exit %d after Ctrl-D, want 0", code)
	}
	waitCanceled(t, s, 1) // the second answer was not canceled
}

// TestRunOneShotSIGINT checks that a one-shot run keeps main's behaviour: the first SIGINT
// cancels the answer (and its job) and the program exits with an error.
func TestRunOneShotSIGINT(t *testing.T) {
	s := workertest.New(t, workertest.Options{Sim: slowSim})
	cmd := startMain(t, env{"NEOVRATZ_HOST": s.URL}, "run", workertest.TextModel, "tell me a long story")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()

	first := strings.Fields(simAnswerOf(t, slowSim, user("tell me a long story")))[0]
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stdout.String(), first); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no answer after 20s; stdout %q, stderr %q", stdout.String(), stderr.String())
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, exited); code != exitError {
		t.Errorf("exit %d after SIGINT, want %d; stderr %q", code, exitError, stderr.String())
	}
	waitCanceled(t, s, 1)
}
