package deploy

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// flagEnv returns, for each neovratz command of docs/configuration.md, the environment
// variables of its flags (the table rows "| `--flag` | `NEOVRATZ_FLAG` | …").
func flagEnv(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(repo("docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	cmd := ""
	heading := regexp.MustCompile("^## `neovratz (\\w+)`")
	row := regexp.MustCompile("^\\| `--[a-z-]+` \\| `(NEOVRATZ_[A-Z_]+)` \\|")
	for _, line := range strings.Split(string(b), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			cmd = m[1]
		} else if strings.HasPrefix(line, "## ") {
			cmd = ""
		}
		if m := row.FindStringSubmatch(line); m != nil && cmd != "" {
			out[cmd] = append(out[cmd], m[1])
		}
	}
	for _, c := range []string{"serve", "api", "worker"} {
		if len(out[c]) == 0 {
			t.Fatalf("docs/configuration.md: no flag table for neovratz %s", c)
		}
	}
	return out
}

// hostPort splits "host:port" and returns the port as a number.
func hostPort(t *testing.T, where, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: address %q: %v", where, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: port of %q: %v", where, addr, err)
	}
	return h, n
}

// listenPort is the container port a service listens on, from its settings.
func listenPort(t *testing.T, name string, s service) []int {
	t.Helper()
	var ports []int
	for _, k := range []string{"NEOVRATZ_ADDR", "NEOVRATZ_METRICS_ADDR"} {
		if v := s.Environment[k]; v != "" {
			_, p := hostPort(t, name+" "+k, v)
			ports = append(ports, p)
		}
	}
	if strings.HasPrefix(s.Image, "redis:") {
		ports = append(ports, 6379)
	}
	// Ports the images listen on by default (monitoring checks Loki's against loki.yml).
	for image, port := range map[string]int{"grafana/grafana:": 3000, "grafana/loki:": 3100} {
		if strings.HasPrefix(s.Image, image) {
			ports = append(ports, port)
		}
	}
	portArg := regexp.MustCompile(`^--(?:port|web\.listen-address)(?:=:?(\d+))?$`)
	for i, a := range s.Command {
		if m := portArg.FindStringSubmatch(a); m != nil {
			v := m[1]
			if v == "" && i+1 < len(s.Command) {
				v = s.Command[i+1]
			}
			if p, err := strconv.Atoi(v); err == nil {
				ports = append(ports, p)
			}
		}
	}
	return ports
}

// TestRootCompose checks docker-compose.yml, docker-compose.api.yml and docker-compose.gpu.yml.
func TestRootCompose(t *testing.T) {
	flags := flagEnv(t)
	env := filledEnv(t, repo(".env.example"))
	stages := dockerfileStages(t)
	for _, name := range rootComposeFiles {
		t.Run(name, func(t *testing.T) {
			f := loadCompose(t, repo(name), env)
			if len(f.Services) == 0 {
				t.Fatal("no services")
			}
			if n := f.Networks["default"]; n == nil || n.Name == "" {
				if name != "docker-compose.gpu.yml" {
					t.Errorf("the default network has no fixed name (monitoring/docker-compose.local.yml joins it)")
				}
			}
			for sname, s := range f.Services {
				checkService(t, f, sname, s, flags, stages, env)
			}
		})
	}

	// With every *_BIND left at its default, nothing is published beyond loopback.
	defaults := filledEnv(t, repo(".env.example"))
	for k := range defaults {
		if strings.HasSuffix(k, "_BIND") {
			delete(defaults, k)
		}
	}
	for _, name := range rootComposeFiles {
		f := loadCompose(t, repo(name), defaults)
		for sname, s := range f.Services {
			for _, p := range s.Ports {
				if !strings.HasPrefix(p, "127.0.0.1:") {
					t.Errorf("%s, %s: port %q is published beyond 127.0.0.1 by default", name, sname, p)
				}
			}
		}
	}
}

func checkService(t *testing.T, f loaded, name string, s service, flags map[string][]string, stages []string, env map[string]string) {
	t.Helper()
	where := f.path + ", service " + name
	if s.Image == "" {
		t.Errorf("%s: no image", where)
	}
	if i := strings.LastIndex(s.Image, ":"); !s.ours() && (i < 0 || strings.HasSuffix(s.Image, ":latest")) {
		t.Errorf("%s: image %q has no fixed tag", where, s.Image)
	}
	if s.Build != nil {
		if filepath.Clean(s.Build.Context) != "." {
			t.Errorf("%s: build context %q, want the repository root", where, s.Build.Context)
		}
		if !slices.Contains(stages, s.Build.Target) {
			t.Errorf("%s: build target %q is not a stage of the Dockerfile %v", where, s.Build.Target, stages)
		}
	}
	for _, d := range s.dependsOn() {
		if _, ok := f.Services[d]; !ok {
			t.Errorf("%s: depends on %q, which is not a service", where, d)
		}
	}
	checkVolumes(t, f, where, s)
	ports := listenPort(t, name, s)
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || net.ParseIP(parts[0]) == nil {
			t.Errorf("%s: port %q must name the host address (HOST_IP:HOST_PORT:CONTAINER_PORT)", where, p)
			continue
		}
		if c, _ := strconv.Atoi(parts[2]); !slices.Contains(ports, c) {
			t.Errorf("%s: publishes container port %s, but it listens on %v", where, parts[2], ports)
		}
	}
	if strings.HasPrefix(s.Image, "redis:") {
		checkRedis(t, where, s, env)
	}
	for _, d := range gpuDevices(s) {
		if d.Driver != "nvidia" || !slices.Contains(d.Capabilities, "gpu") {
			t.Errorf("%s: GPU reservation %+v, want driver nvidia with capability gpu", where, d)
		}
	}
	if !s.ours() {
		return
	}

	// neovratz itself.
	if len(s.Command) == 0 || !slices.Contains([]string{"serve", "api", "worker"}, s.Command[0]) {
		t.Fatalf("%s: command %v does not start with serve, api or worker", where, s.Command)
	}
	cmd := s.Command[0]
	for k := range s.Environment {
		if strings.HasPrefix(k, "NEOVRATZ_") && !slices.Contains(flags[cmd], k) {
			t.Errorf("%s: %s is not a setting of neovratz %s (docs/configuration.md)", where, k, cmd)
		}
	}
	if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("%s: want read_only, cap_drop [ALL] and no-new-privileges", where)
	}
	if u := s.Environment["NEOVRATZ_REDIS_URL"]; u != "" {
		checkRedisURL(t, f, where, u, env)
	}
	checkHealthcheck(t, where, cmd, s)
	switch cmd {
	case "api":
		_, port := hostPort(t, where, s.Environment["NEOVRATZ_ADDR"])
		if !slices.Contains(s.networks()["default"], "neovratz-api") {
			t.Errorf("%s: no alias neovratz-api on the default network (monitoring scrapes it by that name)", where)
		}
		if want := monitoringAPIPort(t); port != want {
			t.Errorf("%s: listens on %d, monitoring scrapes neovratz-api:%d", where, port, want)
		}
		if s.Environment["NEOVRATZ_ADMIN_KEY"] == "" {
			t.Errorf("%s: no NEOVRATZ_ADMIN_KEY: the admin key would be printed to the log once", where)
		}
	case "worker":
		checkWorker(t, f, where, s)
	}
	if len(gpuDevices(s)) > 0 {
		if s.Build == nil || s.Build.Target != "worker-gpu" {
			t.Errorf("%s: a worker on GPUs must be the worker-gpu build (NVML)", where)
		}
		if s.Environment["NVIDIA_DRIVER_CAPABILITIES"] != "utility" {
			t.Errorf("%s: NVIDIA_DRIVER_CAPABILITIES %q, want utility (NVML only)", where, s.Environment["NVIDIA_DRIVER_CAPABILITIES"])
		}
	}
}

func gpuDevices(s service) []struct {
	Driver       string   `yaml:"driver"`
	Count        any      `yaml:"count"`
	Capabilities []string `yaml:"capabilities"`
} {
	if s.Deploy == nil {
		return nil
	}
	return s.Deploy.Resources.Reservations.Devices
}

// userDirs are bind-mount sources that users make: model and cache directories (.gitignore
// keeps them out of the repository).
var userDirs = []string{"./models", "./hf-cache"}

func checkVolumes(t *testing.T, f loaded, where string, s service) {
	t.Helper()
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			t.Errorf("%s: volume %q is not SOURCE:TARGET[:MODE]", where, v)
			continue
		}
		src := parts[0]
		switch {
		case strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../"):
			if slices.Contains(userDirs, src) {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(f.path), src)); err != nil {
				t.Errorf("%s: mounts %s, which does not exist", where, src)
			}
			if len(parts) != 3 || parts[2] != "ro" {
				t.Errorf("%s: bind mount %q is not read-only", where, v)
			}
		case strings.HasPrefix(src, "/"):
			if src != "/var/run/docker.sock" || len(parts) != 3 || parts[2] != "ro" {
				t.Errorf("%s: host path %q: only the Docker socket, read-only, is mounted from the host", where, v)
			}
		default:
			if _, ok := f.Volumes[src]; !ok {
				t.Errorf("%s: named volume %q is not declared", where, src)
			}
		}
	}
}

// mountSource returns the file a service mounts at target, relative to the repository.
func mountSource(f loaded, s service, target string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			return filepath.Join(filepath.Dir(f.path), parts[0])
		}
	}
	return ""
}

func checkRedis(t *testing.T, where string, s service, env map[string]string) {
	t.Helper()
	if len(s.Command) < 2 || s.Command[0] != "redis-server" {
		t.Fatalf("%s: command %v, want redis-server CONFIG …", where, s.Command)
	}
	i := slices.Index(s.Command, "--requirepass")
	if i < 0 || i+1 >= len(s.Command) || s.Command[i+1] != env["REDIS_PASSWORD"] {
		t.Errorf("%s: no --requirepass ${REDIS_PASSWORD}", where)
	}
	conf := ""
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == s.Command[1] {
			conf = parts[0]
		}
	}
	b, err := os.ReadFile(repo(conf))
	if conf == "" || err != nil {
		t.Fatalf("%s: the config file %s is not mounted from the repository (%v)", where, s.Command[1], err)
	}
	for _, want := range []string{"appendonly yes", "maxmemory-policy noeviction"} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).Match(b) {
			t.Errorf("%s: %s lacks %q", where, conf, want)
		}
	}
	if s.Environment["REDISCLI_AUTH"] != env["REDIS_PASSWORD"] {
		t.Errorf("%s: the health check's redis-cli has no password (REDISCLI_AUTH)", where)
	}
}

// checkRedisURL checks a NEOVRATZ_REDIS_URL: a Redis service of the same file, with its
// password, or (on a GPU server) whatever .env says.
func checkRedisURL(t *testing.T, f loaded, where, raw string, env map[string]string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		t.Fatalf("%s: NEOVRATZ_REDIS_URL %q is not a redis:// URL", where, raw)
	}
	if raw == env["NEOVRATZ_REDIS_URL"] {
		return // passed through from .env: a Redis on another host
	}
	host, port := hostPort(t, where, u.Host)
	rs, ok := f.Services[host]
	if !ok || !strings.HasPrefix(rs.Image, "redis:") {
		t.Errorf("%s: NEOVRATZ_REDIS_URL names host %q, which is not a Redis service of this file", where, host)
	}
	if port != 6379 {
		t.Errorf("%s: NEOVRATZ_REDIS_URL port %d, Redis listens on 6379", where, port)
	}
	if pw, _ := u.User.Password(); pw != env["REDIS_PASSWORD"] {
		t.Errorf("%s: NEOVRATZ_REDIS_URL does not carry ${REDIS_PASSWORD}", where)
	}
}

// checkHealthcheck checks the health check of a neovratz service: the image has no shell or
// curl, so it is `neovratz healthcheck` (with flags the command has) on an endpoint the service
// serves on a port it listens on.
func checkHealthcheck(t *testing.T, where, cmd string, s service) {
	t.Helper()
	if s.Healthcheck == nil {
		t.Errorf("%s: no healthcheck", where)
		return
	}
	test := s.Healthcheck.Test
	if len(test) < 3 || test[0] != "CMD" || !slices.Contains(dockerfileEntrypoints(t), test[1]) || test[2] != "healthcheck" {
		t.Errorf("%s: healthcheck %v, want [CMD, <the image's entrypoint>, healthcheck, …] (the image has no shell)", where, test)
		return
	}
	flags := commandFlags(t)["healthcheck"]
	rawURL := "http://127.0.0.1:8080/readyz" // the command's default
	for i := 3; i < len(test); i++ {
		name, ok := strings.CutPrefix(test[i], "--")
		if !ok || !slices.Contains(flags, name) || i+1 >= len(test) {
			t.Errorf("%s: healthcheck argument %q is not a flag of neovratz healthcheck %v with its value", where, test[i], flags)
			return
		}
		if name == "url" {
			rawURL = test[i+1]
		}
		i++
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("%s: healthcheck --url %q: %v", where, rawURL, err)
	}
	host, port := hostPort(t, where+" healthcheck", u.Host)
	want := map[string][]string{"serve": {"/readyz", "/healthz"}, "api": {"/readyz", "/healthz"}, "worker": {"/healthz"}}[cmd]
	listen := s.Environment["NEOVRATZ_ADDR"]
	if cmd == "worker" {
		listen = s.Environment["NEOVRATZ_METRICS_ADDR"]
	}
	if listen == "" {
		t.Errorf("%s: a healthcheck, but nothing to check: no %s", where, map[bool]string{true: "NEOVRATZ_METRICS_ADDR", false: "NEOVRATZ_ADDR"}[cmd == "worker"])
		return
	}
	if _, p := hostPort(t, where, listen); host != "127.0.0.1" || port != p || !slices.Contains(want, u.Path) {
		t.Errorf("%s: healthcheck --url %s, want http://127.0.0.1:%d with one of %v", where, rawURL, p, want)
	}
}

// dockerfileEntrypoints returns the programs the Dockerfile's ENTRYPOINT instructions name.
func dockerfileEntrypoints(t *testing.T) []string {
	t.Helper()
	d := readDockerfile(t)
	re := regexp.MustCompile(`^ENTRYPOINT \["([^"]+)"`)
	var out []string
	for _, lines := range d.lines {
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				out = append(out, m[1])
			}
		}
	}
	return out
}

// checkWorker checks a worker: its config file, its engines' addresses, its metrics address.
func checkWorker(t *testing.T, f loaded, where string, s service) {
	t.Helper()
	if s.Hostname == "" {
		t.Errorf("%s: no hostname: the registry and the metrics' hostname label would show the container's id, new at every recreation", where)
	}
	checkAdvertised(t, f, where, s)
	cfgPath := s.Environment["NEOVRATZ_CONFIG"]
	src := mountSource(f, s, cfgPath)
	if cfgPath == "" || src == "" {
		t.Fatalf("%s: NEOVRATZ_CONFIG %q is not a mounted file", where, cfgPath)
	}
	var cfg struct {
		Models []struct {
			Name   string `yaml:"name"`
			Kind   string `yaml:"kind"`
			Slots  int    `yaml:"slots"`
			Engine string `yaml:"engine"`
			Limits struct {
				MaxTokens  int `yaml:"max-tokens"`
				MaxContext int `yaml:"max-context"`
			} `yaml:"limits"`
			OpenAI *struct {
				BaseURL string `yaml:"base-url"`
				Model   string `yaml:"model"`
			} `yaml:"openai"`
		} `yaml:"models"`
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("%s: %s: %v", where, src, err)
	}
	if len(cfg.Models) == 0 {
		t.Errorf("%s: %s serves no model", where, src)
	}
	for _, m := range cfg.Models {
		if m.Name == "" || m.Slots < 1 || m.Engine != "openai" || m.OpenAI == nil {
			t.Errorf("%s: %s: model %+v needs a name, slots and an openai engine", where, src, m)
			continue
		}
		u, err := url.Parse(m.OpenAI.BaseURL)
		if err != nil {
			t.Errorf("%s: %s: base-url %q: %v", where, src, m.OpenAI.BaseURL, err)
			continue
		}
		host, port := hostPort(t, where, u.Host)
		es, ok := f.Services[host]
		if !ok {
			t.Errorf("%s: %s: model %s's engine host %q is not a service of %s", where, src, m.Name, host, f.path)
			continue
		}
		if !slices.Contains(listenPort(t, host, es), port) {
			t.Errorf("%s: %s: model %s's engine is at port %d, but %s listens on %v", where, src, m.Name, port, host, listenPort(t, host, es))
		}
		if !slices.Contains(s.dependsOn(), host) {
			t.Errorf("%s: does not depend on its engine %s", where, host)
		}
		if !slices.ContainsFunc(es.Command, func(a string) bool { return strings.Contains(a, m.OpenAI.Model) }) {
			t.Errorf("%s: the engine %s does not serve the model name %q (its command: %v)", where, host, m.OpenAI.Model, es.Command)
		}
	}
}

// checkAdvertised checks the metrics address a worker registers for Prometheus: a worker that
// listens on 0.0.0.0 sets --advertise-metrics-addr, either to a service name of the file (the
// monitoring bundle then joins the network) and the port it listens on, or to a name from .env
// and a port published on the host that leads to the metrics port.
func checkAdvertised(t *testing.T, f loaded, where string, s service) {
	t.Helper()
	listen := s.Environment["NEOVRATZ_METRICS_ADDR"]
	if listen == "" {
		t.Errorf("%s: no NEOVRATZ_METRICS_ADDR: Prometheus could not scrape it", where)
		return
	}
	lhost, lport := hostPort(t, where, listen)
	adv := s.Environment["NEOVRATZ_ADVERTISE_METRICS_ADDR"]
	if adv == "" {
		if lhost == "" || lhost == "0.0.0.0" || lhost == "::" {
			t.Errorf("%s: listens on %s without NEOVRATZ_ADVERTISE_METRICS_ADDR: it would register the container's name", where, listen)
		}
		return
	}
	host, port := hostPort(t, where+" NEOVRATZ_ADVERTISE_METRICS_ADDR", adv)
	if other, ok := f.Services[host]; ok {
		if !slices.Contains(listenPort(t, host, other), port) {
			t.Errorf("%s: advertises %s, but service %s listens on %v", where, adv, host, listenPort(t, host, other))
		}
		return
	}
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		if len(parts) == 3 && parts[1] == strconv.Itoa(port) && parts[2] == strconv.Itoa(lport) {
			return
		}
	}
	t.Errorf("%s: advertises %s, but publishes no host port %d to its metrics port %d (ports %v)", where, adv, port, lport, s.Ports)
}

// monitoringAPIPort is the port of neovratz-api in monitoring/prometheus/prometheus.yml.
func monitoringAPIPort(t *testing.T) int {
	t.Helper()
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, repo("monitoring", "prometheus", "prometheus.yml"), &cfg)
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "neovratz-api" {
			for _, st := range sc.StaticConfigs {
				for _, target := range st.Targets {
					if host, port := hostPort(t, "prometheus.yml", target); host == "neovratz-api" {
						return port
					}
				}
			}
		}
	}
	t.Fatal("prometheus.yml: job neovratz-api does not scrape neovratz-api:PORT")
	return 0
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
