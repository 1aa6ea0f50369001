package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
)

// env is an injected environment.
type env map[string]string

func (e env) get(key string) string { return e[key] }

// writeConfig writes a YAML config file into a temporary directory and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "neovratz.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs the program in-process and returns its exit code, stdout and stderr.
func run(t *testing.T, e env, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCtx(context.Background(), e, args...)
}

func runCtx(ctx context.Context, e env, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb, Getenv: e.get}
	code = m.Run(ctx, args)
	return code, out.String(), errb.String()
}

func TestServeConfigPrecedence(t *testing.T) {
	const home = "/home/test"
	defaults := serveConfig{
		Addr:      "127.0.0.1:8080",
		DataDir:   home + "/.neovratz",
		ModelsDir: home + "/.neovratz/models",
		Log:       logConfig{Level: "info", Format: "json"},
		Broker: brokerConfig{
			SQLitePath: home + "/.neovratz/broker.db",
			Config:     broker.Config{Lease: 30 * time.Second, Retention: 24 * time.Hour},
		},
		API: apiServerConfig{Auth: true, RequestTimeout: 10 * time.Minute},
	}
	file := `
addr: 127.0.0.1:1001
data-dir: /file/data
lease: 1m
queue-cap: 10
log-level: debug
`
	tests := []struct {
		name string
		args []string
		env  env
		file string // YAML; passed with --config when set
		want func(c *serveConfig)
	}{
		{
			name: "defaults",
			want: func(c *serveConfig) {},
		},
		{
			name: "file over defaults",
			file: file,
			want: func(c *serveConfig) {
				c.Addr = "127.0.0.1:1001"
				c.DataDir, c.ModelsDir, c.Broker.SQLitePath = "/file/data", "/file/data/models", "/file/data/broker.db"
				c.Broker.Config.Lease = time.Minute
				c.Broker.Config.QueueCap = 10
				c.Log.Level = "debug"
			},
		},
		{
			name: "env over file",
			file: file,
			env:  env{"NEOVRATZ_ADDR": "127.0.0.1:1002", "NEOVRATZ_QUEUE_CAP": "20", "NEOVRATZ_LOG_FORMAT": "text"},
			want: func(c *serveConfig) {
				c.Addr = "127.0.0.1:1002"
				c.DataDir, c.ModelsDir, c.Broker.SQLitePath = "/file/data", "/file/data/models", "/file/data/broker.db"
				c.Broker.Config.Lease = time.Minute
				c.Broker.Config.QueueCap = 20
				c.Log.Level = "debug"
				c.Log.Format = "text"
			},
		},
		{
			name: "flag over env over file",
			file: file,
			env:  env{"NEOVRATZ_ADDR": "127.0.0.1:1002", "NEOVRATZ_QUEUE_CAP": "20", "NEOVRATZ_RETENTION": "2h"},
			args: []string{"--addr", "127.0.0.1:1003", "--lease=5s", "--data-dir", "/flag/data"},
			want: func(c *serveConfig) {
				c.Addr = "127.0.0.1:1003"
				c.DataDir, c.ModelsDir, c.Broker.SQLitePath = "/flag/data", "/flag/data/models", "/flag/data/broker.db"
				c.Broker.Config.Lease = 5 * time.Second
				c.Broker.Config.QueueCap = 20
				c.Broker.Config.Retention = 2 * time.Hour
				c.Log.Level = "debug"
			},
		},
		{
			name: "empty env variable counts as unset",
			file: file,
			env:  env{"NEOVRATZ_ADDR": ""},
			want: func(c *serveConfig) {
				c.Addr = "127.0.0.1:1001"
				c.DataDir, c.ModelsDir, c.Broker.SQLitePath = "/file/data", "/file/data/models", "/file/data/broker.db"
				c.Broker.Config.Lease = time.Minute
				c.Broker.Config.QueueCap = 10
				c.Log.Level = "debug"
			},
		},
		{
			name: "tilde expanded, models-dir set apart",
			args: []string{"--data-dir", "~/nv", "--models-dir", "~/models"},
			want: func(c *serveConfig) {
				c.DataDir, c.ModelsDir, c.Broker.SQLitePath = home+"/nv", home+"/models", home+"/nv/broker.db"
			},
		},
		{
			name: "redis instead of the embedded broker",
			env:  env{"NEOVRATZ_REDIS_URL": "redis://127.0.0.1:6379/2", "NEOVRATZ_REDIS_DURABLE": "true"},
			want: func(c *serveConfig) {
				c.Broker.RedisURL = "redis://127.0.0.1:6379/2"
				c.Broker.RedisDurable = true
				c.Broker.SQLitePath = ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := env{"HOME": home}
			for k, v := range tt.env {
				e[k] = v
			}
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeConfig(t, tt.file)}, args...)
			}
			got, err := (&serveCommand{m: &Main{Getenv: e.get}}).parse(args)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			want := defaults
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config\ngot  %+v\nwant %+v", got, want)
			}
		})
	}
}

// layerValues gives, for every flag of every command, three valid values that differ from each
// other and from the default: the one put in the config file, in the environment and on the
// command line. A new flag without an entry here fails TestEveryFlagEveryLayer.
var layerValues = map[string][3]string{
	"addr":            {"127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"},
	"data-dir":        {"/file", "/env", "/flag"},
	"models-dir":      {"/file/m", "/env/m", "/flag/m"},
	"log-level":       {"debug", "warn", "error"},
	"log-format":      {"text", "json", "text"},
	"redis-url":       {"redis://file:6379/0", "redis://env:6379/1", "redis://flag:6379/2"},
	"redis-durable":   {"true", "false", "true"},
	"lease":           {"1m", "2m", "3m"},
	"queue-cap":       {"1", "2", "3"},
	"retention":       {"1h", "2h", "3h"},
	"api":             {"http://file:8080", "https://env", "http://flag"},
	"token":           {"file-token", "env-token", "flag-token"},
	"drain-timeout":   {"1s", "2s", "3s"},
	"metrics-addr":    {":9101", ":9102", ":9103"},
	"auth":            {"false", "true", "false"},
	"admin-key":       {"nvk_file_0123456789abcdef", "nvk_env_0123456789abcdef", "nvk_flag_0123456789abcdef"},
	"public-url":      {"https://file.example", "https://env.example", "https://flag.example"},
	"request-timeout": {"1m", "2m", "3m"},
	"id":              {"file-worker", "env-worker", "flag-worker"},
	"hardware":        {"1x file GPU", "1x env GPU", "1x flag GPU"},

	"advertise-metrics-addr": {"file-host:9101", "env-host:9102", "10.0.0.3:9103"},
	"webhook-allow-networks": {"10.0.0.0/8", "127.0.0.1,::1", "10.20.0.0/16,fd00::/8"},

	// pull, models, rm, run, image
	"hf-endpoint":     {"http://file.example", "https://env.example", "http://flag.example"},
	"hf-token":        {"hf_file", "hf_env", "hf_flag"},
	"as":              {"file.gguf", "env.gguf", "flag.gguf"},
	"force":           {"true", "false", "true"},
	"retries":         {"1", "2", "3"},
	"json":            {"true", "false", "true"},
	"host":            {"http://file:8080", "env:8080", "https://flag.example"},
	"api-key":         {"nvk_file_0123456789abcdef", "nvk_env_0123456789abcdef", "nvk_flag_0123456789abcdef"},
	"system":          {"file prompt", "env prompt", "flag prompt"},
	"max-tokens":      {"10", "20", "30"},
	"temperature":     {"0.1", "0.2", "0.3"},
	"local":           {"true", "false", "true"},
	"threads":         {"1", "2", "3"},
	"output":          {"file.png", "env.png", "flag.png"},
	"size":            {"64x64", "128x64", "64x128"},
	"n":               {"2", "3", "4"},
	"steps":           {"10", "20", "30"},
	"cfg-scale":       {"1.5", "2.5", "3.5"},
	"seed":            {"1", "2", "3"},
	"negative-prompt": {"file text", "env text", "flag text"},
	"sampler":         {"euler", "euler_a", "dpm++2m"},

	// txt2img
	"model":      {"file.safetensors", "env.safetensors", "flag.safetensors"},
	"prompt":     {"file prompt", "env prompt", "flag prompt"},
	"negative":   {"file text", "env text", "flag text"},
	"width":      {"64", "128", "192"},
	"height":     {"64", "128", "192"},
	"scheduler":  {"karras", "simple", "lcm"},
	"rng":        {"cpu", "cuda", "cpu"},
	"prediction": {"eps", "v", "auto"},
	"clip-skip":  {"1", "2", "3"},
}

// flagSets returns the flag set of every command that has flags.
func flagSets() map[string]*flagSet {
	m := &Main{}
	return map[string]*flagSet{
		"serve":   (&serveCommand{m: m}).flags(&serveConfig{}),
		"api":     (&apiCommand{m: m}).flags(&apiConfig{}),
		"worker":  (&workerCommand{m: m}).flags(&workerConfig{}),
		"pull":    (&pullCommand{m: m}).flags(&pullConfig{}),
		"models":  (&modelsCommand{m: m}).flags(&modelsConfig{}),
		"rm":      (&rmCommand{m: m}).flags(&modelsDirConfig{}),
		"run":     (&runCommand{m: m}).flags(&runConfig{}, new(string)),
		"image":   (&imageCommand{m: m}).flags(&imageCommandConfig{}, &imageFlagValues{}),
		"txt2img": (&txt2imgCommand{m: m}).flags(&txt2imgConfig{}),
	}
}

// TestEveryFlagEveryLayer checks, for every flag of every command, that it reads
// NEOVRATZ_<FLAG> and its key in the config file, and that flag > env > file > default.
func TestEveryFlagEveryLayer(t *testing.T) {
	for cmd, fs := range flagSets() {
		fs.fs.VisitAll(func(fl *flag.Flag) {
			if fl.Name == "config" {
				return // names the file itself; checked by TestConfigFlagFromEnv
			}
			vals, ok := layerValues[fl.Name]
			if !ok {
				t.Errorf("%s --%s: no entry in layerValues", cmd, fl.Name)
				return
			}
			file := fmt.Sprintf("%s: %q\n", fl.Name, vals[0])
			envs := env{envVar(fl.Name): vals[1]}
			flagArg := "--" + fl.Name + "=" + vals[2]
			tests := []struct {
				layer string
				args  []string
				env   env
				file  string
				want  string
			}{
				{"default", nil, env{}, "", fl.DefValue},
				{"file", nil, env{}, file, vals[0]},
				{"env", nil, envs, file, vals[1]},
				{"flag", []string{flagArg}, envs, file, vals[2]},
				{"flag without file", []string{flagArg}, envs, "", vals[2]},
				{"env without file", nil, envs, "", vals[1]},
			}
			for _, tt := range tests {
				t.Run(cmd+"/"+fl.Name+"/"+tt.layer, func(t *testing.T) {
					fs := flagSets()[cmd]
					args := tt.args
					if tt.file != "" {
						args = append([]string{"--config", writeConfig(t, tt.file)}, args...)
					}
					if err := fs.parse(args, tt.env.get); err != nil {
						t.Fatalf("parse %q: %v", args, err)
					}
					if got := fs.fs.Lookup(fl.Name).Value.String(); got != tt.want {
						t.Errorf("--%s = %q, want %q", fl.Name, got, tt.want)
					}
				})
			}
		})
	}
}

func TestConfigFlagFromEnv(t *testing.T) {
	path := writeConfig(t, "api: http://from-file\ntoken: secret\nmodels: [{name: m, kind: text, slots: 1, engine: sim}]\n")
	cfg, err := (&workerCommand{m: &Main{Getenv: env{"NEOVRATZ_CONFIG": path}.get}}).parse(nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if cfg.API != "http://from-file" || cfg.Token != "secret" {
		t.Errorf("got api %q token %q, want the config file's", cfg.API, cfg.Token)
	}
}

func TestUsageErrors(t *testing.T) {
	good := writeConfig(t, "lease: 1m\n")
	tests := []struct {
		name string
		args []string
		env  env
		file string // YAML passed with --config
		want []string
	}{
		{name: "bad duration flag", args: []string{"serve", "--lease", "soon"}, want: []string{`"soon"`, "--lease"}},
		{name: "negative duration", args: []string{"serve", "--retention=-1h"}, want: []string{"--retention", "positive"}},
		{name: "bad int flag", args: []string{"serve", "--queue-cap", "many"}, want: []string{"--queue-cap"}},
		{name: "negative int", args: []string{"api", "--redis-url", "redis://x:1/0", "--queue-cap=-1"}, want: []string{"--queue-cap"}},
		{name: "bad bool flag", args: []string{"serve", "--redis-durable=maybe"}, want: []string{"--redis-durable"}},
		{name: "bad log level", args: []string{"serve", "--log-level", "verbose"}, want: []string{"--log-level", "debug, info, warn, error"}},
		{name: "bad log format", args: []string{"api", "--log-format", "xml"}, want: []string{"--log-format"}},
		{name: "bad addr", args: []string{"serve", "--addr", "8080"}, want: []string{"--addr", "host:port"}},
		{name: "bad redis url", args: []string{"serve", "--redis-url", "http://x"}, want: []string{"--redis-url"}},
		{name: "bad webhook network", args: []string{"serve", "--webhook-allow-networks", "10.0.0.0/8,intranet"}, want: []string{"--webhook-allow-networks", `"intranet"`}},
		{name: "bad webhook cidr", args: []string{"serve"}, env: env{"NEOVRATZ_WEBHOOK_ALLOW_NETWORKS": "10.0.0.0/33"}, want: []string{"--webhook-allow-networks", "NEOVRATZ_WEBHOOK_ALLOW_NETWORKS", "CIDR"}},
		{name: "bad env value", args: []string{"serve"}, env: env{"NEOVRATZ_LEASE": "soon"}, want: []string{"--lease", "NEOVRATZ_LEASE"}},
		{name: "bad env log level", args: []string{"serve"}, env: env{"NEOVRATZ_LOG_LEVEL": "loud"}, want: []string{"--log-level", "NEOVRATZ_LOG_LEVEL"}},
		{name: "bad file value", args: []string{"serve"}, file: "queue-cap: lots\n", want: []string{"--queue-cap", "config file"}},
		{name: "unknown key in file", args: []string{"serve"}, file: "leese: 1m\n", want: []string{`"leese"`, "config file"}},
		{name: "config in file", args: []string{"serve"}, file: "config: other.yaml\n", want: []string{"config"}},
		{name: "bad yaml", args: []string{"serve"}, file: "lease: [1m\n", want: []string{"config file"}},
		{name: "yaml not a map", args: []string{"serve"}, file: "- lease\n", want: []string{"config file"}},
		{name: "missing config file", args: []string{"serve", "--config", "/nonexistent/neovratz.yaml"}, want: []string{"/nonexistent/neovratz.yaml"}},
		{name: "unknown flag", args: []string{"serve", "--bogus"}, want: []string{"--bogus"}},
		{name: "flag without value", args: []string{"serve", "--addr"}, want: []string{"--addr"}},
		{name: "positional argument", args: []string{"serve", "now"}, want: []string{`"now"`}},
		{name: "unknown command", args: []string{"serv"}, want: []string{`"serv"`}},
		{name: "unknown help topic", args: []string{"help", "serv"}, want: []string{`"serv"`}},
		{name: "durable without redis", args: []string{"serve", "--redis-durable"}, want: []string{"--redis-durable", "--redis-url"}},
		{name: "api without redis", args: []string{"api", "--config", good}, want: []string{"--redis-url", "NEOVRATZ_REDIS_URL"}},
		{name: "worker without source", args: []string{"worker"}, want: []string{"--redis-url", "--api"}},
		{name: "worker with both sources", args: []string{"worker", "--redis-url", "redis://x:1/0", "--api", "http://x"}, want: []string{"--redis-url", "--api"}},
		{name: "worker api without token", args: []string{"worker", "--api", "http://x"}, want: []string{"--token"}},
		{name: "worker bad api url", args: []string{"worker", "--api", "x:80", "--token", "t"}, want: []string{"--api"}},
		{name: "worker bad drain timeout", args: []string{"worker", "--drain-timeout", "0s"}, want: []string{"--drain-timeout"}},
		{name: "version takes no arguments", args: []string{"version", "now"}, want: []string{`"now"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeConfig(t, tt.file))
			}
			e := env{"HOME": t.TempDir()}
			for k, v := range tt.env {
				e[k] = v
			}
			code, stdout, stderr := run(t, e, args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if n := strings.Count(stderr, "\n"); n != 1 || !strings.HasSuffix(stderr, "\n") {
				t.Errorf("stderr has %d lines, want one: %q", n, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %s", stderr, w)
				}
			}
		})
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	for cmd, fs := range flagSets() {
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "-h"}, {"help", cmd}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, stdout, stderr := run(t, env{}, args...)
				if code != exitOK || stderr != "" {
					t.Fatalf("exit code %d, stderr %q; want 0 and nothing", code, stderr)
				}
				fs.fs.VisitAll(func(fl *flag.Flag) {
					def, ok := fs.shown[fl.Name]
					if !ok {
						def = fl.DefValue
						if def == "" {
							def = "none"
						}
					}
					// The flag's entry: its name line, its usage, its env and default line.
					entry := fmt.Sprintf("  --%s\n        %s\n        env %s, default %s\n", fl.Name, fl.Usage, envVar(fl.Name), def)
					if !strings.Contains(stdout, entry) {
						t.Errorf("help does not list --%s as\n%s", fl.Name, entry)
					}
				})
			})
		}
	}
}

func TestHelpDefaults(t *testing.T) {
	_, stdout, _ := run(t, env{}, "serve", "-h")
	for _, want := range []string{
		"env NEOVRATZ_ADDR, default 127.0.0.1:8080",
		"env NEOVRATZ_DATA_DIR, default ~/.neovratz",
		"env NEOVRATZ_MODELS_DIR, default <data-dir>/models",
		"env NEOVRATZ_LEASE, default 30s",
		"env NEOVRATZ_RETENTION, default 24h",
		"env NEOVRATZ_QUEUE_CAP, default 0",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("serve -h does not say %q", want)
		}
	}
}

func TestTopLevel(t *testing.T) {
	tests := []struct {
		args      []string
		code      int
		out, errs string // substrings of stdout and stderr ("" = must be empty)
	}{
		{args: nil, code: exitUsage, errs: "Commands:"},
		{args: []string{"help"}, code: exitOK, out: "Commands:"},
		{args: []string{"--help"}, code: exitOK, out: "Commands:"},
		{args: []string{"help", "help"}, code: exitOK, out: "Usage: neovratz help"},
		{args: []string{"help", "-h"}, code: exitOK, out: "Usage: neovratz help"},
		{args: []string{"version"}, code: exitOK, out: "neovratz dev " + runtime.Version()},
		{args: []string{"--version"}, code: exitOK, out: "neovratz dev"},
		{args: []string{"version", "-h"}, code: exitOK, out: "Usage: neovratz version"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, env{}, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			for _, c := range []struct{ name, got, want string }{{"stdout", stdout, tt.out}, {"stderr", stderr, tt.errs}} {
				if c.want == "" && c.got != "" || !strings.Contains(c.got, c.want) {
					t.Errorf("%s = %q, want it to contain %q", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestWorkerWithoutModels(t *testing.T) {
	code, stdout, stderr := run(t, env{"NEOVRATZ_REDIS_URL": "redis://127.0.0.1:6379/0"}, "worker")
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "no models") {
		t.Errorf("got exit %d, stdout %q, stderr %q; want 2 and a message about models", code, stdout, stderr)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour:             "24h",
		30 * time.Second:           "30s",
		5 * time.Minute:            "5m",
		90 * time.Second:           "1m30s",
		time.Hour + 30*time.Minute: "1h30m",
		time.Hour + 30*time.Second: "1h0m30s",
		1500 * time.Millisecond:    "1.5s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestConfigurationDoc keeps docs/configuration.md in step with the flags: every flag of every
// command has a row with its environment variable and default in that command's section.
func TestConfigurationDoc(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	sets := flagSets()
	// Commands without a --config file, which TestEveryFlagEveryLayer cannot cover, documented
	// all the same. healthcheck must not read one: it runs in containers whose NEOVRATZ_CONFIG
	// names the server's own file.
	sets["healthcheck"] = (&healthcheckCommand{m: &Main{}}).flags(&healthcheckConfig{})
	for cmd, fs := range sets {
		heading := "## `neovratz " + cmd + "`\n"
		_, section, ok := strings.Cut(doc, heading)
		if !ok {
			t.Errorf("docs/configuration.md has no section %q", strings.TrimSpace(heading))
			continue
		}
		section, _, _ = strings.Cut(section, "\n## ")
		fs.fs.VisitAll(func(fl *flag.Flag) {
			def, ok := fs.shown[fl.Name]
			if !ok {
				def = fl.DefValue
			}
			if def == "" {
				def = "none"
			} else {
				def = "`" + def + "`"
			}
			row := fmt.Sprintf("| `--%s` | `%s` | %s |", fl.Name, envVar(fl.Name), def)
			if !strings.Contains(section, row) {
				t.Errorf("docs/configuration.md, neovratz %s: no row starting %s", cmd, row)
			}
		})
	}
}
