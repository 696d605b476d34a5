//go:build linux

package main

// Scenarios 1 and 2 in the driver: the micro-benchmarks of cases.go run
// through testing.Benchmark, every case once per round and the rounds
// repeated, so that drift on a busy machine hits every library alike; the
// tables give the median of the rounds.

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	gofrs "github.com/gofrs/flock"
	"golang.org/x/sys/unix"
)

type benchStats struct{ ns, bytes, allocs, opsPerSec float64 }

// runGroups returns the median over reps rounds of each case, keyed
// "group/case".
func runGroups(groups []benchGroup, reps int) (map[string]benchStats, error) {
	all := map[string][]benchStats{}
	for r := 0; r < reps; r++ {
		for _, g := range groups {
			for _, c := range g.cases {
				res := testing.Benchmark(c.fn)
				if res.N == 0 {
					return nil, fmt.Errorf("benchmark %s/%s failed", g.name, c.name)
				}
				n := float64(res.N)
				s := benchStats{
					ns:        float64(res.T.Nanoseconds()) / n,
					bytes:     float64(res.MemBytes) / n,
					allocs:    float64(res.MemAllocs) / n,
					opsPerSec: res.Extra["ops/s"],
				}
				k := g.name + "/" + c.name
				all[k] = append(all[k], s)
			}
		}
	}
	med := map[string]benchStats{}
	for k, ss := range all {
		var ns, by, al, ops []float64
		for _, s := range ss {
			ns = append(ns, s.ns)
			by = append(by, s.bytes)
			al = append(al, s.allocs)
			ops = append(ops, s.opsPerSec)
		}
		med[k] = benchStats{medianFloat(ns), medianFloat(by), medianFloat(al), medianFloat(ops)}
	}
	return med, nil
}

func fmtAllocs(a float64) string {
	if a == math.Trunc(a) {
		return fmt.Sprintf("%.0f", a)
	}
	return fmt.Sprintf("%.2f", a)
}

func scenario1(cfg *config, res *results) ([]*table, error) {
	groups := uncontendedGroups(cfg.dir)
	med, err := runGroups(groups, cfg.reps)
	if err != nil {
		return nil, err
	}
	t := &table{
		title: "1. Uncontended lock and unlock (one goroutine, nobody else on the file)",
		header: []string{"operation", "ours ns/op", "ours B/op", "ours allocs/op",
			"gofrs ns/op", "gofrs B/op", "gofrs allocs/op",
			"raw flock(2) ns/op (floor)", "sync ns/op", "ours/gofrs time", "ours/raw time"},
	}
	add := func(label, group, oursCase string) {
		o, g, r, s := med[group+"/"+oursCase], med[group+"/gofrs"], med[group+"/raw"], med[group+"/sync"]
		t.row(label, fmtNs(o.ns), fmtBytesOp(o.bytes), fmtAllocs(o.allocs),
			fmtNs(g.ns), fmtBytesOp(g.bytes), fmtAllocs(g.allocs),
			fmtNs(r.ns), fmtNs(s.ns), fmtRatio(o.ns/g.ns), fmtRatio(o.ns/r.ns))
	}
	add("Lock+Unlock", "LockUnlock", "ours")
	add("LockContext+Unlock ¹", "LockUnlock", "ours-ctx")
	add("Lock+Unlock, WriterPriority ¹", "LockUnlock", "ours-prio")
	add("Lock+Unlock, RemoveOnUnlock ¹", "LockUnlock", "ours-remove")
	add("RLock+RUnlock ²", "RLockRUnlock", "ours")
	add("TryLock+Unlock", "TryLockUnlock", "ours")
	t.note("Median of %d rounds of testing.Benchmark (-benchtime %v each), cases interleaved. ours/gofrs below 1 means ours is faster; gofrs/ours = %s for Lock+Unlock.",
		cfg.reps, cfg.benchtime, fmtRatio(med["LockUnlock/gofrs"].ns/med["LockUnlock/ours"].ns))
	t.note("raw flock(2): LOCK_EX (LOCK_SH, LOCK_EX|LOCK_NB) then LOCK_UN on a descriptor kept open. sync: sync.Mutex (sync.RWMutex.RLock for the read row). gofrs opens and closes the file on every Lock/Unlock.")
	t.note("¹ The peer has no cancellable blocking lock, no writer priority and no safe removal; its columns repeat its Lock+Unlock. ² gofrs: RLock then Unlock (it has no RUnlock).")

	res.lockNs = med["LockUnlock/ours"].ns
	res.lockGofrsNs = med["LockUnlock/gofrs"].ns
	res.lockRawNs = med["LockUnlock/raw"].ns
	res.lockAllocs = med["LockUnlock/ours"].allocs
	res.prioNs = med["LockUnlock/ours-prio"].ns
	res.removeNs, res.removeAllocs = med["LockUnlock/ours-remove"].ns, med["LockUnlock/ours-remove"].allocs
	res.has1 = true
	return []*table{t}, nil
}

func fmtBytesOp(b float64) string {
	if b == math.Trunc(b) {
		return fmt.Sprintf("%.0f", b)
	}
	return fmt.Sprintf("%.1f", b)
}

func scenario2(cfg *config, res *results) ([]*table, error) {
	groups := contentionGroups(cfg.dir)
	med, err := runGroups(groups, cfg.reps)
	if err != nil {
		return nil, err
	}
	t := &table{
		title: "2. In-process contention: 8 goroutines on one file (operations per second, all goroutines together)",
		header: []string{"workload", "ours (one handle)", "ours (handle per goroutine)", "gofrs (handle per goroutine)",
			"raw flock(2) (fd per goroutine, floor)", "sync.RWMutex", "ours/gofrs", "ours/raw", "ours/sync", "ours per goroutine/sync"},
	}
	for _, w := range workloads {
		o, oh, g := med[w.name+"/ours"], med[w.name+"/ours-handles"], med[w.name+"/gofrs"]
		r, s := med[w.name+"/raw"], med[w.name+"/sync"]
		t.row(w.title, fmtRate(o.opsPerSec), fmtRate(oh.opsPerSec), fmtRate(g.opsPerSec), fmtRate(r.opsPerSec), fmtRate(s.opsPerSec),
			fmtRatio(o.opsPerSec/g.opsPerSec), fmtRatio(o.opsPerSec/r.opsPerSec),
			fmtRatio(o.opsPerSec/s.opsPerSec), fmtRatio(oh.opsPerSec/s.opsPerSec))
	}
	t.note("Median of %d rounds. ours: one handle shared by the 8 goroutines. An operation is one lock and one unlock; higher is better, ours/gofrs above 1 means ours is faster. \"Joining\": another goroutine holds a read lock throughout (for ours through the same handle). 90%%: goroutine g's i-th operation writes when (i+g)%%10 == 0.",
		cfg.reps)
	res.joinOurs, res.joinGofrs = med["ReadersJoining8/ours"].opsPerSec, med["ReadersJoining8/gofrs"].opsPerSec
	res.joinHandles, res.joinSync = med["ReadersJoining8/ours-handles"].opsPerSec, med["ReadersJoining8/sync"].opsPerSec
	res.writersOurs, res.writersRaw = med["Writers8/ours"].opsPerSec, med["Writers8/raw"].opsPerSec
	res.standOurs, res.standGofrs = med["Readers8/ours"].opsPerSec, med["Readers8/gofrs"].opsPerSec
	res.has2 = true

	v, err := violations(cfg)
	if err != nil {
		return nil, err
	}
	return []*table{t, v}, nil
}

// Mutual exclusion with one handle shared by 8 goroutines.

const criticalSections = 2000

// violations counts critical sections entered while another goroutine was
// inside, out of 2000 taken by 8 goroutines.
func violations(cfg *config) (*table, error) {
	t := &table{
		title:  fmt.Sprintf("2b. Mutual exclusion: 8 goroutines, %d exclusive critical sections in all", criticalSections),
		header: []string{"how the goroutines lock", "violations", "errors"},
	}
	type lockFuncs struct{ lock, unlock func() error }
	cases := []struct {
		name  string
		setup func(path string) (func(g int) lockFuncs, func(), error)
	}{
		{"ours, one handle shared by all", func(path string) (func(int) lockFuncs, func(), error) {
			m, err := implOurs.open(path)
			if err != nil {
				return nil, nil, err
			}
			return func(int) lockFuncs { return lockFuncs{m.Lock, m.Unlock} }, func() { m.Close() }, nil
		}},
		{"gofrs, one handle shared by all", func(path string) (func(int) lockFuncs, func(), error) {
			g := gofrs.New(path)
			return func(int) lockFuncs { return lockFuncs{g.Lock, g.Unlock} }, func() { g.Close() }, nil
		}},
		{"gofrs, a handle per goroutine", func(path string) (func(int) lockFuncs, func(), error) {
			var hs []*gofrs.Flock
			return func(int) lockFuncs {
					g := gofrs.New(path)
					hs = append(hs, g)
					return lockFuncs{g.Lock, g.Unlock}
				}, func() {
					for _, g := range hs {
						g.Close()
					}
				}, nil
		}},
		{"raw flock(2), one descriptor shared by all", func(path string) (func(int) lockFuncs, func(), error) {
			f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
			if err != nil {
				return nil, nil, err
			}
			fd := int(f.Fd())
			lf := lockFuncs{func() error { return flockRetry(fd, unix.LOCK_EX) }, func() error { return flockRetry(fd, unix.LOCK_UN) }}
			return func(int) lockFuncs { return lf }, func() { f.Close() }, nil
		}},
	}
	for i, c := range cases {
		path := filepath.Join(cfg.dir, fmt.Sprintf("s2b-%d.lock", i))
		get, closeAll, err := c.setup(path)
		if err != nil {
			return nil, err
		}
		fs := make([]lockFuncs, contenders)
		for g := range fs {
			fs[g] = get(g)
		}
		var inside, viol, errs atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < contenders; g++ {
			wg.Add(1)
			go func(f lockFuncs) {
				defer wg.Done()
				<-start
				for k := 0; k < criticalSections/contenders; k++ {
					if f.lock() != nil {
						errs.Add(1)
					}
					if inside.Add(1) > 1 {
						viol.Add(1)
					}
					spin(200)
					runtime.Gosched() // a critical section that yields, as one doing I/O would
					inside.Add(-1)
					if f.unlock() != nil {
						errs.Add(1)
					}
				}
			}(fs[g])
		}
		close(start)
		wg.Wait()
		closeAll()
		t.row(c.name, fmt.Sprint(viol.Load()), fmt.Sprint(errs.Load()))
	}
	t.note("A violation is a critical section entered while another goroutine was inside. Each critical section spins briefly and yields (runtime.Gosched). gofrs's Lock returns at once if its handle is already locked, by any goroutine; a shared flock(2) descriptor is one lock owner to the kernel.")
	return t, nil
}

var spinSink atomic.Int64

func spin(n int) {
	s := 0
	for i := 0; i < n; i++ {
		s += i
	}
	spinSink.Add(int64(s))
}
