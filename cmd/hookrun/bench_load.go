package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookrun/hookrun/pkg/signature"
)

// loadResult is what one load phase measured.
type loadResult struct {
	Sent      int
	Accepted  int
	Codes     map[string]int
	Latencies []time.Duration
	Elapsed   time.Duration
	CPU       string // CPU per request of the processes measured, when measured
	Lagged    int    // open loop: requests the generator sent over 5 ms late
}

func (r loadResult) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Accepted) / r.Elapsed.Seconds()
}

func (r loadResult) Pct(p float64) time.Duration { return percentile(r.Latencies, p) }

func percentile(ls []time.Duration, p float64) time.Duration {
	if len(ls) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ls...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func (r loadResult) codes() string {
	var keys []string
	for k := range r.Codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%d", k, r.Codes[k])
	}
	return b.String()
}

// requestMaker builds the i-th request of a phase.
type requestMaker func(i int64) *http.Request

// signedDeliveries makes uniquely identified, correctly signed deliveries
// (generic profile) of bodySize bytes to url.
func signedDeliveries(url, secret, prefix string, bodySize int) requestMaker {
	p, _ := signature.Lookup("generic")
	pad := strings.Repeat("x", max(0, bodySize-64))
	return func(i int64) *http.Request {
		id := prefix + strconv.FormatInt(i, 10)
		body := []byte(`{"id":"` + id + `","kind":"bench","pad":"` + pad + `"}`)
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		for k, v := range p.Sign(body, secret, id, time.Now()) {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/json")
		return req
	}
}

func benchClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// recorder collects results from many goroutines.
type recorder struct {
	mu    sync.Mutex
	res   loadResult
	on    atomic.Bool
	start time.Time
}

func (r *recorder) record(code string, d time.Duration) {
	if !r.on.Load() {
		return
	}
	r.mu.Lock()
	r.res.Sent++
	r.res.Codes[code]++
	if code == "202" || code == "200" {
		r.res.Accepted++
	}
	// Every answer's latency, a refusal's or a timeout's too: leaving
	// them out would flatter the tail exactly when a target is overloaded.
	r.res.Latencies = append(r.res.Latencies, d)
	r.mu.Unlock()
}

func do(c *http.Client, req *http.Request) string {
	resp, err := c.Do(req)
	if err != nil {
		return "error"
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// closedLoop keeps conns requests in flight for warmup+dur and measures
// the last dur: the maximum rate the target sustains.
// A cpu meter, when given, is started with the measured part.
func closedLoop(ctx context.Context, conns int, warmup, dur time.Duration, mk requestMaker, cpu *cpuMeter) loadResult {
	c := benchClient(conns)
	rec := &recorder{res: loadResult{Codes: map[string]int{}}}
	ctx, cancel := context.WithTimeout(ctx, warmup+dur)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req := mk(n.Add(1))
				t0 := time.Now()
				code := do(c, req.WithContext(ctx))
				if ctx.Err() != nil {
					return
				}
				rec.record(code, time.Since(t0))
			}
		}()
	}
	time.Sleep(warmup)
	rec.start = time.Now()
	rec.on.Store(true)
	if cpu != nil {
		cpu.start()
	}
	wg.Wait()
	rec.res.Elapsed = time.Since(rec.start)
	if cpu != nil {
		cpu.stop()
	}
	return rec.res
}

// mergeLoads adds up the rounds of a phase measured in rounds: their
// requests, codes, latencies and measured time (so PerSecond is the
// rate over all of them).
func mergeLoads(rounds ...loadResult) loadResult {
	m := loadResult{Codes: map[string]int{}}
	for _, r := range rounds {
		m.Sent += r.Sent
		m.Accepted += r.Accepted
		m.Elapsed += r.Elapsed
		m.Lagged += r.Lagged
		m.Latencies = append(m.Latencies, r.Latencies...)
		for k, v := range r.Codes {
			m.Codes[k] += v
		}
	}
	return m
}

// openLoop sends at a fixed rate for dur, whatever the answers' latency,
// so queueing shows in the latencies (no coordinated omission).
// The first warmup's requests (connections being opened) are sent at the
// same rate but not recorded.
func openLoop(ctx context.Context, rate float64, warmup, dur time.Duration, mk requestMaker) loadResult {
	c := benchClient(512)
	rec := &recorder{res: loadResult{Codes: map[string]int{}}}
	rec.on.Store(true)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	measured := start.Add(warmup)
	var wg sync.WaitGroup
	var lagged atomic.Int64
	total := int64(rate * (warmup + dur).Seconds())
	for i := int64(0); i < total && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(i int64) {
			defer wg.Done()
			req := mk(i)
			if lag := time.Since(due); lag > 5*time.Millisecond && !due.Before(measured) {
				lagged.Add(1)
			}
			code := do(c, req)
			if !due.Before(measured) {
				rec.record(code, time.Since(due))
			}
		}(i)
	}
	wg.Wait()
	rec.res.Elapsed = time.Since(measured)
	rec.res.Lagged = int(lagged.Load())
	return rec.res
}
