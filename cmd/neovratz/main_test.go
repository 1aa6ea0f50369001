package main

import (
	"os"
	"testing"
)

// TestMain lets a test run the real program, main's signal handling included, as a child
// process: the test binary started with TEST_NEOVRATZ_MAIN=1 in its environment is neovratz,
// with the arguments it was given (see startMain).
func TestMain(m *testing.M) {
	if os.Getenv("TEST_NEOVRATZ_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}
