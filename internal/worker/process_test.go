package worker_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// workerProcess is this test binary running as a worker (see TestMain).
type workerProcess struct {
	id    string
	cmd   *exec.Cmd
	ready chan struct{} // closed when it has registered (and so handles SIGTERM)
	done  chan struct{} // closed when its output ended and it exited
	err   error         // how it exited
}

// jobLog counts, across processes, the jobs each process reports it finished.
type jobLog struct {
	mu        sync.Mutex
	succeeded map[string][]string // job id → worker ids that completed it
}

func newJobLog() *jobLog { return &jobLog{succeeded: map[string][]string{}} }

// startProcess starts a worker process; log, when not nil, records the jobs it completes.
func startProcess(t *testing.T, spec childSpec, log *jobLog) *workerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = spec.env()
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &workerProcess{id: spec.id, cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var readyOnce sync.Once
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct {
				Msg     string `json:"msg"`
				Job     string `json:"job"`
				Outcome string `json:"outcome"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			if line.Msg == "worker registered" {
				readyOnce.Do(func() { close(p.ready) })
			}
			if log != nil && line.Msg == "job ended" && line.Outcome == "succeeded" {
				log.mu.Lock()
				log.succeeded[line.Job] = append(log.succeeded[line.Job], p.id)
				log.mu.Unlock()
			}
		}
		p.err = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// signal sends sig, after the process has registered for SIGTERM (before, the Go runtime's
// default would end it without a drain).
func (p *workerProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if sig == syscall.SIGTERM {
		select {
		case <-p.ready:
		case <-p.done:
		case <-time.After(patience):
			t.Fatalf("%s never registered", p.id)
		}
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s to %s: %v", sig, p.id, err)
	}
}
