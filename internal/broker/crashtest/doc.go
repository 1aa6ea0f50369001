// Package crashtest holds the brokers' fault tests against real processes: a worker process
// killed with SIGKILL mid-job, a worker frozen past its lease whose late completion must be
// refused, a canceled running job reported to its holder in another process, and a Redis server
// killed and restarted with its append-only file. The package has no code of its own: its test
// binary doubles as the worker process (see child_test.go).
package crashtest
