package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// dockerfile is the repository's Dockerfile as stages: name → its lines (continuations joined).
type dockerfile struct {
	stages []string            // in order
	from   map[string]string   // stage → base image
	lines  map[string][]string // stage → instructions
	args   map[string]string   // global ARG defaults
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(repo("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{from: map[string]string{}, lines: map[string][]string{}, args: map[string]string{}}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	from := regexp.MustCompile(`^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$`)
	arg := regexp.MustCompile(`^ARG\s+(\w+)=(\S+)$`)
	stage := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := from.FindStringSubmatch(line); m != nil {
			stage = m[2]
			if stage == "" {
				t.Fatalf("Dockerfile: stage %q has no name", line)
			}
			d.stages = append(d.stages, stage)
			d.from[stage] = m[1]
			continue
		}
		if m := arg.FindStringSubmatch(line); m != nil && stage == "" {
			d.args[m[1]] = m[2]
		}
		if stage != "" {
			d.lines[stage] = append(d.lines[stage], line)
		}
	}
	return d
}

func dockerfileStages(t *testing.T) []string { return readDockerfile(t).stages }

func (d dockerfile) has(stage, pattern string) bool {
	re := regexp.MustCompile(pattern)
	for _, l := range d.lines[stage] {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// TestDockerfile checks the image: the Go of go.mod, a static cgo-free build for the default
// image on distroless/static as a non-root user, and the NVML build for worker-gpu.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	mod, err := os.ReadFile(repo("go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if m == nil || d.args["GO_VERSION"] != string(m[1]) {
		t.Errorf("Dockerfile GO_VERSION %q, go.mod wants go %s", d.args["GO_VERSION"], m[1])
	}
	last := d.stages[len(d.stages)-1]
	checks := []struct {
		stage, pattern, why string
	}{
		{"build", `CGO_ENABLED=0 go build .*-o /out/neovratz \./cmd/neovratz`, "the default binary is static and cgo-free"},
		{"build-gpu", `CGO_ENABLED=1 .*go build -tags nvml `, "the GPU binary has NVML"},
		{last, `^USER nonroot`, "the default image runs as a non-root user"},
		{"worker-gpu", `^USER nonroot`, "the GPU image runs as a non-root user"},
		{last, `^ENTRYPOINT \["/usr/local/bin/neovratz"\]`, "the image runs the binary"},
		{last, `^COPY --from=build /out/neovratz `, "the default image has the static binary"},
		{"worker-gpu", `^COPY --from=build-gpu `, "the GPU image has the NVML binary"},
	}
	for _, c := range checks {
		if !d.has(c.stage, c.pattern) {
			t.Errorf("Dockerfile stage %s has no line matching %q (%s)", c.stage, c.pattern, c.why)
		}
	}
	if !strings.HasPrefix(d.from[last], "gcr.io/distroless/static") {
		t.Errorf("the default image is based on %s, want distroless/static (CA certificates, no shell, no libc)", d.from[last])
	}
	if !strings.HasPrefix(d.from["worker-gpu"], "gcr.io/distroless/base") {
		t.Errorf("worker-gpu is based on %s, want distroless/base (glibc for the cgo build)", d.from["worker-gpu"])
	}
	// The build stage's Debian and the glibc image's Debian must match (see the Dockerfile).
	if !strings.HasSuffix(d.from["build"], "-bookworm") || !strings.HasSuffix(strings.Split(d.from["worker-gpu"], ":")[0], "-debian12") {
		t.Errorf("build on %s, GPU image on %s: keep both on Debian 12 (bookworm)", d.from["build"], d.from["worker-gpu"])
	}
}
