package integration

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// Benchmarks run against the embed server only (the first server kind),
// on loopback. Compare, in the same run: one write (a Put: one raft round
// trip with fsync) as the unit, concurrency.Mutex Lock+Unlock (two writes),
// and etcdlock's round trips.

func benchCluster(b *testing.B) *cluster {
	if len(servers) == 0 {
		b.Skip("no etcd server")
	}
	return startCluster(b, servers[0], 1)
}

func BenchmarkPut(b *testing.B) {
	c := benchCluster(b)
	cli := newClient(b, c.endpoints()...)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cli.Put(ctx, "bench-put", "x"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConcurrencyMutex(b *testing.B) {
	c := benchCluster(b)
	cli := newClient(b, c.endpoints()...)
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	mu := concurrency.NewMutex(s, "bench-cmutex")
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := mu.Lock(ctx); err != nil {
			b.Fatal(err)
		}
		if err := mu.Unlock(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLockUnlock(b *testing.B) {
	c := benchCluster(b)
	cli := newClient(b, c.endpoints()...)
	m := newMutex(b, cli, "bench-lock")
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.LockContext(ctx); err != nil {
			b.Fatal(err)
		}
		m.Unlock()
	}
}

func BenchmarkRLockRUnlock(b *testing.B) {
	c := benchCluster(b)
	cli := newClient(b, c.endpoints()...)
	m := newMutex(b, cli, "bench-rlock")
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.RLockContext(ctx); err != nil {
			b.Fatal(err)
		}
		m.RUnlock()
	}
}

// BenchmarkReadersJoin: readers joining a read lock the handle already
// holds: no round trip.
func BenchmarkReadersJoin(b *testing.B) {
	c := benchCluster(b)
	cli := newClient(b, c.endpoints()...)
	m := newMutex(b, cli, "bench-join")
	ctx := context.Background()
	if err := m.RLockContext(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := m.RLockContext(ctx); err != nil {
				b.Error(err)
				return
			}
			m.RUnlock()
		}
	})
	b.StopTimer()
	m.RUnlock()
}

// BenchmarkHandoff: a child process holds the lock, this process waits for
// it; the time from the child starting its Unlock to this process holding
// the lock (same machine clock) is reported as handoff-µs (median).
func BenchmarkHandoff(b *testing.B) {
	c := benchCluster(b)
	cli := newClient(b, c.endpoints()...)
	m := newMutex(b, cli, "bench-handoff")
	ch := startChild(b, "holder", "ETCD_ENDPOINTS="+strings.Join(c.endpoints(), ","), "LOCK_NAME=bench-handoff", "LOCK_TTL=10s")
	ch.expect("ready", 10*time.Second)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch.send("lock")
		ch.expect("locked", 10*time.Second)
		got := make(chan time.Time, 1)
		go func() {
			if err := m.LockContext(context.Background()); err != nil {
				b.Error(err)
			}
			got <- time.Now()
		}()
		waitKeys(b, cli, "bench-handoff", 2)
		ch.send("unlock")
		ns, _ := strconv.ParseInt(ch.expect("unlocking", 10*time.Second), 10, 64)
		at := <-got
		ch.expect("unlocked", 10*time.Second)
		lat = append(lat, at.Sub(time.Unix(0, ns)))
		m.Unlock()
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "handoff-µs")
	ch.send("exit")
}
