//go:build linux

package main

// Scenario 7: flock.Semaphore (issue 13).
//
//   - Uncontended Acquire(1)+Release(1) and TryAcquire(1)+Release(1) on a
//     semaphore of capacity 4, against one RWMutex Lock+Unlock and one raw
//     flock(2) LOCK_EX+LOCK_UN pair on a descriptor kept open.
//   - Handoff: a holder child process holds every slot file of a semaphore
//     of capacity 2 (raw flock(2)), and, told to, reads the wall clock and
//     releases the last slot; a waiter child process reports the wall clock
//     right after it acquired. Waiters: ours (Acquire(ctx, 1)), raw flock(2)
//     blocking on the slot that frees (the floor), and portalocker's
//     BoundedSemaphore with its default check_interval (0.25 s) run with
//     /usr/bin/python3. A blocking waiter is released once it reports that
//     it waits in the kernel (all its slot waits in flock(2)); portalocker,
//     which polls, at a random moment 0.25 to 0.5 s after it started, so
//     the release falls at a random phase of its polling.
//   - Cancellation: from cancel() to the return of an Acquire(ctx, 1)
//     waiting in the driver while another process holds every slot.
//   - CPU: a child process whose 50 goroutines Acquire(1) while the slots
//     are held elsewhere, over a window (getrusage); and one portalocker
//     waiter, polling, over the same window.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-flock/flock"
	"golang.org/x/sys/unix"
)

func init() {
	roles["semholder"] = semHolderMain
	roles["semwaiter"] = semWaiterMain
	roles["semcpu"] = semCPUMain
}

const (
	semBenchName     = "s7"
	semBenchCapacity = 2
	pythonPath       = "/usr/bin/python3"
)

func semSlotPath(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("%s.%02d.lock", semBenchName, i))
}

func scenario7(cfg *config, res *results) ([]*table, error) {
	res.has7 = true
	t1, err := semUncontended(cfg, res)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.dir, "s7")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Every slot file exists before anyone locks it.
	s, err := flock.OpenSemaphore(dir, semBenchName, semBenchCapacity)
	if err != nil {
		return nil, err
	}
	s.Close()
	t2, err := semHandoff(cfg, dir, res)
	if err != nil {
		return nil, err
	}
	t3, err := semCPU(cfg, dir)
	if err != nil {
		return nil, err
	}
	t4, err := semCancel(cfg, dir)
	if err != nil {
		return nil, err
	}
	return []*table{t1, t2, t3, t4}, nil
}

// semaphoreGroups is scenario 7's uncontended cases, also run as
// BenchmarkSemaphore/acquire, /try, /rwmutex, /raw (semaphore_test.go).
func semaphoreGroups(dir string) []benchGroup {
	ctx := context.Background()
	semCase := func(try bool) func(b *testing.B) {
		return func(b *testing.B) {
			s, err := flock.OpenSemaphore(dir, "u", 4)
			if err != nil {
				b.Fatal(err)
			}
			defer stopThen(b, func() { s.Close() })
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if try {
					checkOK(s.TryAcquire(1))
				} else {
					check(s.Acquire(ctx, 1))
				}
				s.Release(1)
			}
		}
	}
	return []benchGroup{{name: "Semaphore", cases: []benchCase{
		{"acquire", semCase(false)},
		{"try", semCase(true)},
		{"rwmutex", lockUnlockOurs(filepath.Join(dir, "m.lock"))},
		{"raw", lockUnlockRaw(filepath.Join(dir, "raw.lock"), unix.LOCK_EX, false)},
	}}}
}

func semUncontended(cfg *config, res *results) (*table, error) {
	dir := filepath.Join(cfg.dir, "s7u")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	med, err := runGroups(semaphoreGroups(dir), cfg.reps)
	if err != nil {
		return nil, err
	}
	raw := med["Semaphore/raw"].ns
	mutex := med["Semaphore/rwmutex"].ns
	res.semAcquireNs, res.semMutexNs = med["Semaphore/acquire"].ns, mutex
	t := &table{
		title:  "7a. Semaphore, uncontended (capacity 4, one goroutine, nobody else on the files)",
		header: []string{"operation", "ns/op", "B/op", "allocs/op", "÷ RWMutex Lock+Unlock", "÷ raw flock(2) pair"},
	}
	for _, c := range []struct{ key, name string }{
		{"acquire", "Semaphore Acquire(ctx, 1)+Release(1)"},
		{"try", "Semaphore TryAcquire(1)+Release(1)"},
		{"rwmutex", "RWMutex Lock+Unlock"},
		{"raw", "raw flock(2) LOCK_EX+LOCK_UN (floor)"},
	} {
		m := med["Semaphore/"+c.key]
		t.row(c.name, fmtNs(m.ns), fmtBytesOp(m.bytes), fmtAllocs(m.allocs), fmtRatio(m.ns/mutex), fmtRatio(m.ns/raw))
	}
	t.note("Median of %d rounds of testing.Benchmark (%v each). An acquisition is one flock(2) LOCK_EX|LOCK_NB on a slot file kept open plus an fstat(2) of it (the check that the file was not removed: its link count); a release is one LOCK_UN.", cfg.reps, cfg.benchtime)
	return t, nil
}
