package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

const body = `{"model":"bench","messages":[{"role":"user","content":"Say something."}],"max_tokens":8}`

// result is one run's latencies.
type result struct {
	sent, ok  int
	latencies []time.Duration // of the successful requests, sorted
}

// p returns the q-th percentile latency.
func (r result) p(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies)-1) * q / 100)
	return r.latencies[i]
}

// measure sends open-loop arrivals at rate to url for o.warmup (not measured) and o.duration.
func measure(ctx context.Context, url, token string, rate int, o options) result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute},
		Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	shoot := func(total time.Duration, record bool) result {
		n := int(total.Seconds() * float64(rate))
		interval := time.Second / time.Duration(rate)
		var mu sync.Mutex
		var wg sync.WaitGroup
		res := result{sent: n}
		start := time.Now()
		for i := range n {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok := send(ctx, client, url, token)
				lat := time.Since(due)
				if record && ok {
					mu.Lock()
					res.ok++
					res.latencies = append(res.latencies, lat)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		slices.Sort(res.latencies)
		return res
	}
	shoot(o.warmup, false)
	return shoot(o.duration, true)
}

func send(ctx context.Context, c *http.Client, url, token string) bool {
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return err == nil && resp.StatusCode == 200 && strings.Contains(string(b), `"finish_reason":"stop"`)
}
