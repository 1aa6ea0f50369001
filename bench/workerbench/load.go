package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

const body = `{"model":"sim","messages":[{"role":"user","content":"Tell me about the sea."}],"stream":true}`

// latencies is a sorted sample.
type latencies []time.Duration

func (l latencies) p(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[int(float64(len(l)-1)*q/100)]
}

// result is one concurrency level's measurements.
type result struct {
	ok, errors int
	ttft, e2e  latencies
}

func (r result) rps(d time.Duration) float64 { return float64(r.ok) / d.Seconds() }

// measure runs clients closed-loop clients against url: o.warmup unmeasured, then o.duration.
// A request counts in the level where it ends. sample, when not nil, is called as the measured
// window opens and as it closes.
func measure(ctx context.Context, url, token string, clients int, o options, sample func()) result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute},
		Timeout: time.Minute}
	defer client.CloseIdleConnections()
	start := time.Now()
	measureFrom, end := start.Add(o.warmup), start.Add(o.warmup+o.duration)
	if sample != nil {
		t1 := time.AfterFunc(o.warmup, sample)
		t2 := time.AfterFunc(o.warmup+o.duration, sample)
		defer t1.Stop()
		defer t2.Stop()
	}
	var mu sync.Mutex
	var res result
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(end) {
				t0 := time.Now()
				ttft, err := stream(ctx, client, url, token)
				done := time.Now()
				if done.Before(measureFrom) || done.After(end) {
					continue
				}
				mu.Lock()
				if err != nil {
					res.errors++
				} else {
					res.ok++
					res.ttft = append(res.ttft, ttft)
					res.e2e = append(res.e2e, done.Sub(t0))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(res.ttft)
	slices.Sort(res.e2e)
	return res
}

// stream sends one streamed chat completion and returns the time to its first content chunk.
func stream(ctx context.Context, c *http.Client, url, token string) (time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, &statusError{resp.StatusCode}
	}
	var ttft time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		if bytes.Equal(data, []byte("[DONE]")) {
			if ttft == 0 {
				return 0, errNoContent
			}
			return ttft, nil
		}
		if ttft == 0 {
			var chunk struct {
				Choices []struct {
					Delta struct{ Content string } `json:"delta"`
				} `json:"choices"`
			}
			if json.Unmarshal(data, &chunk) == nil && len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
				ttft = time.Since(start)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errNoDone
}

type statusError struct{ status int }

func (e *statusError) Error() string { return http.StatusText(e.status) }

var (
	errNoContent = &streamError{"stream ended without content"}
	errNoDone    = &streamError{"stream ended without [DONE]"}
)

type streamError struct{ msg string }

func (e *streamError) Error() string { return e.msg }

// modelListed reports whether GET /v1/models lists the sim model.
func modelListed(ctx context.Context, url, token string) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/models/sim", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}
