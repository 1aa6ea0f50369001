package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// adminKey is the bootstrap key every deployment is started with; the benchmark sends its
// requests with it, so authentication runs as in production.
const adminKey = "nvk_bench_workerbench0123456789"

// deployment is a running set of neovratz processes.
type deployment struct {
	name     string
	url      string
	token    string
	procs    []*proc
	redisPID int // the Redis server's pid when it runs on this machine, for its CPU time
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func (d *deployment) describe() string {
	var names []string
	for _, p := range d.procs {
		names = append(names, p.name)
	}
	return strings.Join(names, ", ")
}

// stop sends SIGTERM to every process (workers first) and waits for them.
func (d *deployment) stop() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// modelsYAML is the models section of every process that runs a worker.
func modelsYAML(o options) string {
	return fmt.Sprintf("models:\n  - {name: sim, kind: text, slots: %d, stream-interval: %s, engine: sim, sim: {time-to-first-token: %s, inter-token-latency: %s, tokens: %d}}\n",
		o.slots, o.interval, o.ttft, o.itl, o.tokens)
}

func deploy(ctx context.Context, setup string, o options, tmp string) (*deployment, error) {
	dir, err := os.MkdirTemp(tmp, setup)
	if err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "models.yaml")
	if err := os.WriteFile(config, []byte(modelsYAML(o)), 0o600); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "NEOVRATZ_ADMIN_KEY="+adminKey)
	d := &deployment{token: adminKey}
	switch setup {
	case "serve":
		d.name = "neovratz serve (embedded SQLite broker, built-in worker)"
		p, addr, err := start(ctx, "serve", o.bin, env, "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--config", config)
		if err != nil {
			return nil, err
		}
		d.procs, d.url = append(d.procs, p), "http://"+addr
	case "redis":
		if o.redisURL == "" {
			return nil, fmt.Errorf("-redis-url is required")
		}
		opts, err := redis.ParseURL(o.redisURL)
		if err != nil {
			return nil, err
		}
		rdb := redis.NewClient(opts)
		err = rdb.FlushDB(ctx).Err()
		if err == nil {
			d.redisPID = redisPID(ctx, rdb)
		}
		rdb.Close()
		if err != nil {
			return nil, fmt.Errorf("flush %s: %w", o.redisURL, err)
		}
		d.name = "neovratz api + 2 × neovratz worker on Redis"
		env := append(env, "NEOVRATZ_REDIS_URL="+o.redisURL)
		p, addr, err := start(ctx, "api", o.bin, env, "api", "--addr", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		d.procs, d.url = append(d.procs, p), "http://"+addr
		for i := range 2 {
			name := fmt.Sprintf("worker-%d", i+1)
			p, _, err := start(ctx, name, o.bin, env, "worker", "--config", config, "--id", name, "--metrics-addr", "127.0.0.1:0")
			if err != nil {
				d.stop()
				return nil, err
			}
			d.procs = append(d.procs, p)
		}
	default:
		return nil, fmt.Errorf("unknown setup %q", setup)
	}
	if err := waitModel(ctx, d.url, d.token); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// redisPID reads the Redis server's process id from INFO server (0 when unknown).
func redisPID(ctx context.Context, rdb *redis.Client) int {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ := strconv.Atoi(v)
			return pid
		}
	}
	return 0
}

// start runs a neovratz process and waits for its "listening" log line.
func start(ctx context.Context, name, bin string, env []string, args ...string) (*proc, string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addr:
		return p, a, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited before listening", name)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, "", fmt.Errorf("%s not listening after 60s", name)
	}
}

// waitModel waits until the API lists the sim model: a worker has registered.
func waitModel(ctx context.Context, url, token string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := modelListed(ctx, url, token); ok {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("model sim not served after 60s")
}
