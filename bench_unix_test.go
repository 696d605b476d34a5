//go:build unix

package flock

import (
	"context"
	"sort"
	"testing"
	"time"
)

// BenchmarkCancel measures how long a LockContext waiting for another
// process's lock takes to return after its context is cancelled.
func BenchmarkCancel(b *testing.B) {
	p := lockPath(b)
	m := mustOpen(b, p)
	c := startChild(b, p)
	c.Must(b, "lock")
	defer c.Must(b, "unlock")
	lat := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan time.Time)
		go func() { m.LockContext(ctx); done <- time.Now() }()
		eventually(b, "the waiter waits", func() bool {
			m.e.mu.Lock()
			defer m.e.mu.Unlock()
			return m.e.waiting() && m.e.writer
		})
		t0 := time.Now()
		cancel()
		lat = append(lat, (<-done).Sub(t0))
	}
	reportLatency(b, "cancel", lat)
}

func reportLatency(b *testing.B, name string, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), name+"-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(0, "ns/op") // wall time per op includes set-up; the metrics above are the result
}
