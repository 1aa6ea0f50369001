//go:build !unix

package process

import "os/exec"

func setProcessGroup(cmd *exec.Cmd) {}

// signalGroup stops the server; without process groups, only the server itself.
func signalGroup(cmd *exec.Cmd, kill bool) error { return cmd.Process.Kill() }
