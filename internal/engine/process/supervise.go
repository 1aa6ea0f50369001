package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// running is a started server process.
type running struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // cmd.Wait's result, set before done is closed
}

// supervise runs the server until ctx ends, restarting it with backoff when it dies.
func (e *Engine) supervise(ctx context.Context) {
	defer close(e.done)
	backoff := e.cfg.MinBackoff
	for first := true; ; first = false {
		if !first {
			e.restarts.Inc()
			e.log.Warn("restarting engine process", "in", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, e.cfg.MaxBackoff)
		}
		started := time.Now()
		p, err := e.start()
		if err != nil {
			e.log.Error("start engine process", "err", err)
			if ctx.Err() != nil {
				return
			}
			continue
		}
		pid := p.cmd.Process.Pid
		e.log.Info("engine process started", "pid", pid, "port", e.port)
		if !e.waitHealthy(ctx, p) {
			select {
			case <-p.done:
				e.log.Error("engine process exited before it was healthy", "pid", pid, "err", exitReason(p.err))
			default:
				e.terminate(p)
				if ctx.Err() == nil {
					e.log.Error("engine process not healthy in time; stopped it", "pid", pid, "timeout", e.cfg.StartTimeout)
				}
			}
			if ctx.Err() != nil {
				return
			}
			continue
		}
		e.setReady(true)
		e.log.Info("engine process ready", "pid", pid, "after", time.Since(started).Round(time.Millisecond))
		select {
		case <-p.done:
			e.setReady(false)
			e.log.Error("engine process exited", "pid", pid, "err", exitReason(p.err), "uptime", time.Since(started).Round(time.Millisecond))
			if time.Since(started) > stableAfter {
				backoff = e.cfg.MinBackoff
			}
		case <-ctx.Done():
			e.setReady(false)
			e.terminate(p)
			return
		}
	}
}

func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// start starts the server.
func (e *Engine) start() (*running, error) {
	port := strconv.Itoa(e.port)
	args := make([]string, len(e.cfg.Command))
	for i, a := range e.cfg.Command {
		args[i] = strings.NewReplacer("{model}", e.cfg.Model, "{port}", port).Replace(a)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = e.cfg.Dir
	cmd.Env = append(os.Environ(), e.cfg.Env...)
	setProcessGroup(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout // one pipe: the lines keep their order
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	e.mu.Lock()
	e.pid = cmd.Process.Pid
	e.mu.Unlock()
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		e.logOutput(out)
	}()
	p := &running{cmd: cmd, done: make(chan struct{})}
	go func() {
		<-logged // Wait closes the pipe: read it to the end first
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// logOutput logs the server's output, a line at a time; overlong lines are cut.
func (e *Engine) logOutput(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, isPrefix, err := br.ReadLine()
		if len(line) > 0 {
			e.log.Info("engine output", "line", string(line))
		}
		for isPrefix && err == nil { // drop the rest of an overlong line
			_, isPrefix, err = br.ReadLine()
		}
		if err != nil {
			return
		}
	}
}

// waitHealthy polls the health endpoint until it answers 2xx (true), the process exits, ctx ends
// or StartTimeout passes (false). The polling is how every server of this kind reports
// readiness: none of them can notify.
func (e *Engine) waitHealthy(ctx context.Context, p *running) bool {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.StartTimeout)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", e.port, e.cfg.HealthPath)
	client := &http.Client{Timeout: 2 * time.Second}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return true
			}
		}
		select {
		case <-p.done:
			return false
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func (e *Engine) setReady(ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.ready:
		if !ok {
			e.ready = make(chan struct{})
		}
	default:
		if ok {
			close(e.ready)
		}
	}
}

// terminate sends SIGTERM to the server's process group, then SIGKILL after StopTimeout.
func (e *Engine) terminate(p *running) {
	if err := signalGroup(p.cmd, false); err != nil && !errors.Is(err, os.ErrProcessDone) {
		e.log.Warn("SIGTERM engine process", "err", err)
	}
	select {
	case <-p.done:
		e.log.Info("engine process stopped", "pid", p.cmd.Process.Pid)
		return
	case <-time.After(e.cfg.StopTimeout):
	}
	e.log.Warn("engine process ignored SIGTERM; killing it", "pid", p.cmd.Process.Pid, "after", e.cfg.StopTimeout)
	_ = signalGroup(p.cmd, true)
	<-p.done
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
