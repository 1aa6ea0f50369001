package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// healthcheckCommand asks a running neovratz process whether it is healthy: the container
// health check of images without a shell or curl (distroless).
type healthcheckCommand struct{ m *Main }

type healthcheckConfig struct {
	URL     string
	Timeout time.Duration
}

func (c *healthcheckCommand) flags(cfg *healthcheckConfig) *flagSet {
	f := newFlagSet("healthcheck", "[--url URL] [flags]", `
Sends GET to --url and exits 0 when the answer is 200, 1 otherwise (another status, no answer
within --timeout, a refused connection), saying why on standard error. It is the health check
of the container images, which have no shell or curl:

  healthcheck: {test: [CMD, /usr/local/bin/neovratz, healthcheck, --url, "http://127.0.0.1:8080/readyz"]}

For 'neovratz serve' and 'neovratz api' use /readyz (the broker answers) or /healthz (the
process runs); for 'neovratz worker', /healthz on its --metrics-addr. Redirects are not
followed and no proxy is used.
`)
	f.String(&cfg.URL, "url", "http://127.0.0.1:8080/readyz", "URL to GET; healthy when it answers 200", checkHTTPURL)
	f.Duration(&cfg.Timeout, "timeout", 5*time.Second, "longest the whole request may take")
	return f
}

func (c *healthcheckCommand) Usage(w io.Writer) { c.flags(&healthcheckConfig{}).Usage(w) }

func (c *healthcheckCommand) Run(ctx context.Context, args []string) error {
	var cfg healthcheckConfig
	if err := c.flags(&cfg).parse(args, c.m.getenv); err != nil {
		return err
	}
	if cfg.URL == "" {
		return usageErrorf("--url must not be empty")
	}
	status, err := healthcheck(ctx, cfg.URL, cfg.Timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.m.Stdout, "%s: %s\n", cfg.URL, status)
	return nil
}

// healthcheck GETs url and returns its status line when it is 200, an error saying what came
// back otherwise.
func healthcheck(ctx context.Context, url string, timeout time.Duration) (string, error) {
	client := &http.Client{
		Timeout: timeout,
		// A proxy from the environment has no business between a container and itself.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr interface{ Timeout() bool }
		if errors.As(err, &uerr) && uerr.Timeout() {
			return "", fmt.Errorf("GET %s: no answer within %s", url, formatDuration(timeout))
		}
		return "", fmt.Errorf("GET %s: %w", url, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	// The start of the body says why (the worker's /healthz names the unhealthy engine).
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		msg := strings.Join(strings.FieldsFunc(string(body), unicode.IsSpace), " ")
		if len(msg) > 200 {
			msg = strings.ToValidUTF8(msg[:200], "") + "…"
		}
		if msg != "" {
			msg = ": " + msg
		}
		return "", fmt.Errorf("GET %s: %s%s", url, resp.Status, msg)
	}
	return resp.Status, nil
}
