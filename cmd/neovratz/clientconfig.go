package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/neovratz/neovratz/internal/client"
)

// defaultHost is the address of a server started with 'neovratz serve' and no flags.
const defaultHost = "http://127.0.0.1:8080"

// clientConfig is how the client commands (run, image) reach a server.
type clientConfig struct {
	Host   string
	APIKey string
}

func (c *clientConfig) define(f *flagSet) {
	f.String(&c.Host, "host", defaultHost, "address of the neovratz server (http://host:port, or host:port)", checkHost)
	f.String(&c.APIKey, "api-key", "", "API key for the server (prefer the environment variable); none for a server run with --auth=false", nil)
}

// checkHost accepts a URL or a bare host:port, as OLLAMA_HOST does.
func checkHost(s string) error {
	_, err := hostURL(s)
	return err
}

func hostURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("want http://host:port, https://host or host:port")
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// newClient returns a client of the configured server.
func (c clientConfig) newClient() (*client.Client, error) {
	base, err := hostURL(c.Host)
	if err != nil {
		return nil, usageErrorf("--host: %v", err)
	}
	return client.New(client.Config{BaseURL: base, APIKey: c.APIKey, MaxRetries: 2})
}

// explain adds what a person can do about a client error.
func (c clientConfig) explain(err error) error {
	var apiErr *client.Error
	switch {
	case errors.Is(err, client.ErrUnreachable):
		return fmt.Errorf("%w (is 'neovratz serve' running? NEOVRATZ_HOST or --host names another server)", err)
	case errors.As(err, &apiErr) && apiErr.Status == 401:
		return fmt.Errorf("%w (set NEOVRATZ_API_KEY to a key from 'neovratz keys create')", err)
	}
	return err
}
