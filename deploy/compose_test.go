package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the subset of the Compose specification these files use. Decoding is strict
// (unknown keys are errors), so a misspelt key fails here rather than being ignored by Docker.
type composeFile struct {
	Name     string                     `yaml:"name"`
	Services map[string]service         `yaml:"services"`
	Volumes  map[string]*struct{}       `yaml:"volumes"`
	Networks map[string]*composeNetwork `yaml:"networks"`
	Anchors  any                        `yaml:"x-neovratz"` // the shared service fields
}

type composeNetwork struct {
	Name     string `yaml:"name"`
	External bool   `yaml:"external"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       *build            `yaml:"build"`
	Command     []string          `yaml:"command"`
	Hostname    string            `yaml:"hostname"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	ExtraHosts  []string          `yaml:"extra_hosts"`
	Networks    yaml.Node         `yaml:"networks"`
	DependsOn   yaml.Node         `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Deploy *struct {
		Resources struct {
			Reservations struct {
				Devices []struct {
					Driver       string   `yaml:"driver"`
					Count        any      `yaml:"count"`
					Capabilities []string `yaml:"capabilities"`
				} `yaml:"devices"`
			} `yaml:"reservations"`
		} `yaml:"resources"`
	} `yaml:"deploy"`
	ReadOnly    bool     `yaml:"read_only"`
	Tmpfs       []string `yaml:"tmpfs"`
	CapDrop     []string `yaml:"cap_drop"`
	SecurityOpt []string `yaml:"security_opt"`
	ShmSize     string   `yaml:"shm_size"`
	Restart     string   `yaml:"restart"`
}

type build struct {
	Context string `yaml:"context"`
	Target  string `yaml:"target"`
}

// dependsOn returns the services s depends on (the list or the map form).
func (s service) dependsOn() []string {
	var out []string
	switch s.DependsOn.Kind {
	case yaml.SequenceNode:
		for _, n := range s.DependsOn.Content {
			out = append(out, n.Value)
		}
	case yaml.MappingNode:
		for i := 0; i < len(s.DependsOn.Content); i += 2 {
			out = append(out, s.DependsOn.Content[i].Value)
		}
	}
	return out
}

// networks returns the networks s joins and the aliases it has on each.
func (s service) networks() map[string][]string {
	out := map[string][]string{}
	switch s.Networks.Kind {
	case yaml.SequenceNode:
		for _, n := range s.Networks.Content {
			out[n.Value] = nil
		}
	case yaml.MappingNode:
		for i := 0; i < len(s.Networks.Content); i += 2 {
			var v struct {
				Aliases []string `yaml:"aliases"`
			}
			_ = s.Networks.Content[i+1].Decode(&v)
			out[s.Networks.Content[i].Value] = v.Aliases
		}
	}
	return out
}

// ours reports whether the service runs the neovratz image.
func (s service) ours() bool {
	return s.Build != nil || strings.Contains(s.Image, "neovratz")
}

// loaded is a compose file after interpolation, with the variables it used.
type loaded struct {
	path string
	composeFile
	vars map[string]bool // every ${VAR} it names
}

// loadCompose reads path, interpolates it with env as Compose does, and decodes it strictly.
func loadCompose(t *testing.T, path string, env map[string]string) loaded {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	text, err := interpolate(string(raw), env, vars)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	dropComposeTags(&root)
	var f composeFile
	dec := yaml.NewDecoder(bytes.NewReader(mustMarshal(t, &root)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return loaded{path: path, composeFile: f, vars: vars}
}

func mustMarshal(t *testing.T, n *yaml.Node) []byte {
	t.Helper()
	b, err := yaml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dropComposeTags removes Compose's merge tags (!reset, !override) so the node decodes as
// plain YAML.
func dropComposeTags(n *yaml.Node) {
	if n.Tag == "!reset" || n.Tag == "!override" {
		n.Tag = ""
	}
	for _, c := range n.Content {
		dropComposeTags(c)
	}
}

var varRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate expands ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error},
// $VAR and $$ as Compose does, recording the names in used. A required variable that env
// lacks is an error, as it is for Compose.
func interpolate(s string, env map[string]string, used map[string]bool) (string, error) {
	var firstErr error
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := varRef.FindStringSubmatch(m)
		name, op, arg := sub[1], sub[2], sub[3]
		if name == "" {
			name = sub[4]
		}
		used[name] = true
		v, set := env[name]
		switch op {
		case ":-":
			if v == "" {
				inner, err := interpolate(arg, env, used)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				return inner
			}
		case "-":
			if !set {
				return arg
			}
		case ":?", "?":
			if !set || (op == ":?" && v == "") {
				if firstErr == nil {
					firstErr = fmt.Errorf("required variable %s is missing: %s", name, arg)
				}
			}
		}
		return v
	})
	return out, firstErr
}

// readEnvFile reads a .env file: NAME=value lines, # comments.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not NAME=value: %q", path, line)
		}
		env[name] = value
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// filledEnv is an .env.example with every empty value filled, as a user's .env would be.
func filledEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	env := readEnvFile(t, path)
	for k, v := range env {
		if v == "" {
			env[k] = "x" + strings.ToLower(k)
		}
	}
	// Values whose form the compose files depend on.
	if _, ok := env["NEOVRATZ_REDIS_URL"]; ok {
		env["NEOVRATZ_REDIS_URL"] = "redis://:secret@10.0.0.5:6379/0"
	}
	return env
}

// The compose files at the repository root and their .env.example.
var rootComposeFiles = []string{"docker-compose.yml", "docker-compose.api.yml", "docker-compose.gpu.yml"}

// Monitoring's compose files, each list applied in order as docker compose -f … -f … does.
var monitoringComposeFiles = [][]string{
	{"docker-compose.yml"},
	{"docker-compose.yml", "docker-compose.local.yml"},
}

func repo(path ...string) string { return filepath.Join(append([]string{".."}, path...)...) }

// TestEnvExample checks that the variables the compose files name and those .env.example
// documents are the same, for the root files and for monitoring's.
func TestEnvExample(t *testing.T) {
	for _, set := range []struct {
		env   string
		files []string
	}{
		{repo(".env.example"), prefixed(repo(), rootComposeFiles)},
		{repo("monitoring", ".env.example"), prefixed(repo("monitoring"), []string{"docker-compose.yml", "docker-compose.local.yml"})},
	} {
		env := filledEnv(t, set.env)
		used := map[string]bool{}
		for _, f := range set.files {
			for v := range loadCompose(t, f, env).vars {
				used[v] = true
			}
		}
		for v := range used {
			if _, ok := env[v]; !ok {
				t.Errorf("%s: %s is used by the compose files but not documented", set.env, v)
			}
		}
		for v := range env {
			if !used[v] {
				t.Errorf("%s: %s is not used by any compose file", set.env, v)
			}
		}
		// Every required variable must stop Compose when missing: the compose files must not
		// start with an empty password or key.
		for _, f := range set.files {
			raw, _ := os.ReadFile(f)
			for _, secret := range []string{"REDIS_PASSWORD", "NEOVRATZ_ADMIN_KEY", "GRAFANA_ADMIN_PASSWORD"} {
				for _, m := range regexp.MustCompile(`\$\{`+secret+`(\W[^}]*)?\}`).FindAllString(string(raw), -1) {
					if !strings.HasPrefix(m, "${"+secret+":?") {
						t.Errorf("%s: %s must be required (${%s:?…}), not %s", f, secret, secret, m)
					}
				}
			}
		}
	}
}

func prefixed(dir string, files []string) []string {
	var out []string
	for _, f := range files {
		out = append(out, filepath.Join(dir, f))
	}
	return out
}

// TestInterpolate checks the small Compose interpolation the tests rely on.
func TestInterpolate(t *testing.T) {
	env := map[string]string{"A": "a", "EMPTY": ""}
	tests := []struct{ in, want, err string }{
		{"${A} $A $$A", "a a $A", ""},
		{"${B:-b} ${EMPTY:-e} ${EMPTY-e} ${B-b}", "b e  b", ""},
		{"${B:-${A}}", "a", ""},
		{"${A:?need A}", "a", ""},
		{"${EMPTY:?need it}", "", "required variable EMPTY is missing: need it"},
		{"${B?need B}", "", "required variable B is missing: need B"},
	}
	for _, tt := range tests {
		got, err := interpolate(tt.in, env, map[string]bool{})
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("interpolate(%q): error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := interpolate("${NOPE:?x}", env, map[string]bool{}); err == nil {
		t.Error("missing required variable: no error")
	}
}
