package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Every shell block of the deployment docs is either run by TestDocsRun or marked as needing
// what the test machines lack (Docker, a GPU). The marker is an HTML comment on the line before
// the block.
const (
	markRun          = "<!-- run by TestDocsRun -->"
	markDocker       = "<!-- needs docker -->"
	markDockerAndGPU = "<!-- needs docker and an NVIDIA GPU -->"
)

// block is a fenced shell block of a doc.
type block struct {
	doc, marker, text string
	line              int
}

func deployDocs(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(repo("docs", "deploy-*.md"))
	if err != nil || len(docs) < 4 {
		t.Fatalf("deployment docs: %v %v", docs, err)
	}
	return docs
}

func shellBlocks(t *testing.T) []block {
	t.Helper()
	var out []block
	for _, doc := range deployDocs(t) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			if lines[i] != "```sh" {
				continue
			}
			prev := ""
			for j := i - 1; j >= 0; j-- {
				if strings.TrimSpace(lines[j]) != "" {
					prev = strings.TrimSpace(lines[j])
					break
				}
			}
			start := i
			var text []string
			for i++; i < len(lines) && lines[i] != "```"; i++ {
				text = append(text, lines[i])
			}
			out = append(out, block{doc: filepath.Base(doc), marker: prev, text: strings.Join(text, "\n"), line: start + 1})
		}
	}
	return out
}

// TestDocsMarked requires a marker on every shell block and checks what the blocks name: files
// of the repository, neovratz flags and scopes, NEOVRATZ_ variables.
func TestDocsMarked(t *testing.T) {
	flags := flagEnv(t)
	known := map[string]bool{}
	for _, vars := range flags {
		for _, v := range vars {
			known[v] = true
		}
	}
	for _, f := range []string{repo(".env.example"), repo("monitoring", ".env.example")} {
		for k := range readEnvFile(t, f) {
			known[k] = true
		}
	}
	cmdFlags := commandFlags(t)
	blocks := shellBlocks(t)
	if len(blocks) == 0 {
		t.Fatal("no shell blocks")
	}
	for _, b := range blocks {
		where := b.doc + ":" + strconv.Itoa(b.line)
		if !slices.Contains([]string{markRun, markDocker, markDockerAndGPU}, b.marker) {
			t.Errorf("%s: shell block without a marker (%s, %s or %s)", where, markRun, markDocker, markDockerAndGPU)
		}
		for _, p := range repoPath.FindAllString(b.text, -1) {
			// A file the block makes (.env, a secret) must at least have its directory.
			if _, err := os.Stat(repo(p)); err != nil {
				if _, err := os.Stat(filepath.Dir(repo(p))); err != nil {
					t.Errorf("%s: names %s, which does not exist", where, p)
				}
			}
		}
		for _, line := range strings.Split(b.text, "\n") {
			m := neovratzCmd.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			cmd := m[1]
			for _, f := range longFlag.FindAllStringSubmatch(m[2], -1) {
				if !slices.Contains(cmdFlags[cmd], f[1]) {
					t.Errorf("%s: neovratz %s has no flag --%s", where, cmd, f[1])
				}
			}
			if s := scopesArg.FindStringSubmatch(line); s != nil {
				for _, scope := range strings.Split(s[1], ",") {
					if !slices.Contains([]string{"inference", "jobs", "admin", "worker", "metrics"}, scope) {
						t.Errorf("%s: unknown scope %q", where, scope)
					}
				}
			}
		}
	}
	for _, doc := range deployDocs(t) {
		b, _ := os.ReadFile(doc)
		for _, v := range envVar.FindAllString(string(b), -1) {
			if !known[v] {
				t.Errorf("%s: %s is neither a setting (docs/configuration.md) nor in .env.example", filepath.Base(doc), v)
			}
		}
	}
}

var (
	repoPath    = regexp.MustCompile(`(?:\b(?:monitoring|deploy|docs)/[\w./-]*\w|\bdocker-compose[\w.]*\.yml\b|\.env\.example\b)`)
	neovratzCmd = regexp.MustCompile(`\bneovratz (serve|api|worker|keys create|keys list|keys revoke)\b(.*)`)
	longFlag    = regexp.MustCompile(`(?:^|\s)--([a-z][a-z-]*)`)
	scopesArg   = regexp.MustCompile(`--scopes[ =]([a-z,]+)`)
	envVar      = regexp.MustCompile(`\bNEOVRATZ_[A-Z_]+\b`)
)

// commandFlags returns the flags (without dashes) of each command section of
// docs/configuration.md, "keys create" included.
func commandFlags(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(repo("docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	cmd := ""
	heading := regexp.MustCompile("^## `neovratz (\\w+)`")
	for _, line := range strings.Split(string(b), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			cmd = m[1]
		} else if strings.HasPrefix(line, "## ") {
			cmd = ""
		}
		if cmd == "" || !strings.HasPrefix(line, "| `--") {
			continue
		}
		name := cmd
		if cmd == "keys" {
			name = "keys create"
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, f := range regexp.MustCompile("`--([a-z-]+)`").FindAllStringSubmatch(first, -1) {
			out[name] = append(out[name], f[1])
		}
	}
	// keys: every subcommand takes --data-dir and --redis-url (said in the prose).
	for _, sub := range []string{"keys create", "keys list", "keys revoke"} {
		out[sub] = append(out[sub], "data-dir", "redis-url")
	}
	return out
}

// TestDocsRun runs the blocks marked to be run, in a scratch directory holding the files they
// read, and checks what they make: a .env from which the compose files start.
func TestDocsRun(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing", tool)
			}
			t.Skipf("%s is missing", tool)
		}
	}
	n := 0
	for _, b := range shellBlocks(t) {
		if b.marker != markRun {
			continue
		}
		n++
		dir := t.TempDir()
		example, err := os.ReadFile(repo(".env.example"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".env.example"), example, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", b.text)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s:%d: %v\n%s", b.doc, b.line, err, out)
		}
		envPath := filepath.Join(dir, ".env")
		fi, err := os.Stat(envPath)
		if err != nil {
			t.Fatalf("%s:%d: made no .env: %v", b.doc, b.line, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s:%d: .env has mode %v, want 0600", b.doc, b.line, fi.Mode().Perm())
		}
		env := readEnvFile(t, envPath)
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(env["REDIS_PASSWORD"]) {
			t.Errorf("REDIS_PASSWORD %q is not 64 hex digits", env["REDIS_PASSWORD"])
		}
		// The admin key's form, as docs/configuration.md gives it.
		if !regexp.MustCompile(`^nvk_[a-z0-9]{1,32}_[A-Za-z0-9-]{16,128}$`).MatchString(env["NEOVRATZ_ADMIN_KEY"]) {
			t.Errorf("NEOVRATZ_ADMIN_KEY %q is not a valid key", env["NEOVRATZ_ADMIN_KEY"])
		}
		// docker compose would start from this .env: every required variable is set.
		loadCompose(t, repo("docker-compose.yml"), env)
	}
	if n == 0 {
		t.Fatal("no block is marked to be run")
	}
}
