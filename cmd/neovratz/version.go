package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
)

// buildInfo describes this binary; /version serves it as JSON.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func currentBuild() buildInfo {
	return buildInfo{Version: version, Commit: commit, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

func (b buildInfo) String() string {
	s := "neovratz " + b.Version
	if b.Commit != "" {
		s += " (" + b.Commit + ")"
	}
	return fmt.Sprintf("%s %s %s/%s", s, b.Go, b.OS, b.Arch)
}

// versionCommand prints the version.
type versionCommand struct{ m *Main }

func (c *versionCommand) Run(ctx context.Context, args []string) error {
	f := newFlagSet("version", "", "")
	if err := f.parse(args, c.m.getenv); err != nil {
		return err
	}
	fmt.Fprintln(c.m.Stdout, currentBuild())
	return nil
}

func (c *versionCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: neovratz version

Prints the version of neovratz (set at build time with
-ldflags "-X main.version=v1.2.3 -X main.commit=abc1234"), the Go version and the platform.
`)
}
