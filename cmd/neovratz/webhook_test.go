package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeWebhookNetworks runs serve with one allowed network: a webhook to it is delivered,
// from the outbox in the data directory; one to another internal address is refused.
func TestServeWebhookNetworks(t *testing.T) {
	got := make(chan string, 1)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer recv.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(config, []byte("models: [{name: sim, kind: text, slots: 1, engine: sim, sim: {tokens: 3}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	r := start(t, env{"NEOVRATZ_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1"}, "serve", "--addr", "127.0.0.1:0",
		"--data-dir", dataDir, "--auth=false", "--config", config)
	post := func(hook string) (int, string) {
		t.Helper()
		body := `{"kind":"chat","input":{"model":"sim","messages":[{"role":"user","content":"hi"}]},` +
			`"webhook":{"url":"` + hook + `","secret":"0123456789abcdef"}}`
		resp, err := http.Post("http://"+r.addr+"/v1/jobs", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, hook := range []string{"http://127.0.0.2/hook", "http://10.0.0.1/hook", "http://169.254.169.254/"} {
		if code, body := post(hook); code != 400 || !strings.Contains(body, `"param":"webhook.url"`) {
			t.Errorf("webhook %s: %d %s, want 400 for webhook.url", hook, code, body)
		}
	}
	if code, body := post(recv.URL + "/hook"); code != 202 {
		t.Fatalf("webhook to the allowed network: %d %s", code, body)
	}
	select {
	case payload := <-got:
		if !strings.Contains(payload, `"status":"succeeded"`) {
			t.Errorf("payload %s", payload)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "outbox.db")); err != nil {
		t.Errorf("outbox database: %v", err)
	}
}
