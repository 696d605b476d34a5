//go:build linux

package main

// The micro-benchmarks of scenarios 1 and 2. The same functions run under
// `go test -bench` (bench_test.go: BenchmarkLockUnlock/ours, /gofrs, /raw,
// /sync, ...) and in the driver through testing.Benchmark, so the tables
// and benchstat see the same code.

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-flock/flock"
	gofrs "github.com/gofrs/flock"
	"golang.org/x/sys/unix"
)

type benchCase struct {
	name string // sub-benchmark name: ours, gofrs, raw, sync, ...
	fn   func(b *testing.B)
}

type benchGroup struct {
	name  string // Go benchmark name without "Benchmark"
	title string // row label in the driver's table
	cases []benchCase
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

func checkOK(ok bool, err error) {
	check(err)
	if !ok {
		panic("uncontended TryLock failed")
	}
}

// stopThen stops the timer, so that closing is not counted, then runs f.
func stopThen(b *testing.B, f func()) {
	b.StopTimer()
	f()
}

func openOurs(b *testing.B, path string, opts ...flock.Option) *flock.RWMutex {
	m, err := flock.Open(path, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func openRaw(b *testing.B, path string) (*os.File, int) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		b.Fatal(err)
	}
	return f, int(f.Fd())
}

// lockUnlockOurs is Lock+Unlock in a loop on a handle opened once with opts.
func lockUnlockOurs(path string, opts ...flock.Option) func(b *testing.B) {
	return func(b *testing.B) {
		m := openOurs(b, path, opts...)
		defer stopThen(b, func() { m.Close() })
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m.Lock()
			m.Unlock()
		}
	}
}

// lockUnlockRaw is flock(2) how (LOCK_EX or LOCK_SH) then LOCK_UN in a
// loop on a descriptor opened once: the floor of lockUnlockOurs. With
// direct, the calls are made as the package makes its calls that do not
// wait on a local file system: how|LOCK_NB, then LOCK_UN, as raw system
// calls (no Go runtime bookkeeping for a call that may block); ours less
// that is what the gate itself costs.
func lockUnlockRaw(path string, how int, direct bool) func(b *testing.B) {
	return func(b *testing.B) {
		f, fd := openRaw(b, path)
		defer stopThen(b, func() { f.Close() })
		b.ReportAllocs()
		b.ResetTimer()
		// Called directly, not through a function value, as the package
		// calls them.
		if direct {
			for i := 0; i < b.N; i++ {
				check(flockDirect(fd, how|unix.LOCK_NB))
				check(flockDirect(fd, unix.LOCK_UN))
			}
			return
		}
		for i := 0; i < b.N; i++ {
			check(flockRetry(fd, how))
			check(flockRetry(fd, unix.LOCK_UN))
		}
	}
}

// uncontendedGroups: one goroutine, nobody else near the file. Every
// library gets its natural use: ours and gofrs a handle opened once, raw
// flock(2) a descriptor opened once.
func uncontendedGroups(dir string) []benchGroup {
	p := func(group, name string) string { return filepath.Join(dir, "s1-"+group+"-"+name+".lock") }
	return []benchGroup{
		{"LockUnlock", "Lock+Unlock", []benchCase{
			{"ours", lockUnlockOurs(p("lock", "ours"))},
			{"ours-prio", lockUnlockOurs(p("lock", "ours-prio"), flock.WriterPriority())},
			{"ours-remove", lockUnlockOurs(p("lock", "ours-remove"), flock.RemoveOnUnlock())},
			{"ours-ctx", func(b *testing.B) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				ctx.Done() // made on first use: not per operation
				m := openOurs(b, p("lock", "ours-ctx"))
				defer stopThen(b, func() { m.Close() })
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					check(m.LockContext(ctx))
					m.Unlock()
				}
			}},
			{"gofrs", func(b *testing.B) {
				g := gofrs.New(p("lock", "gofrs"))
				defer stopThen(b, func() { g.Close() })
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					check(g.Lock())
					check(g.Unlock())
				}
			}},
			{"raw", lockUnlockRaw(p("lock", "raw"), unix.LOCK_EX, false)},
			{"raw-direct", lockUnlockRaw(p("lock", "raw-direct"), unix.LOCK_EX, true)},
			{"sync", func(b *testing.B) {
				var mu sync.Mutex
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					mu.Lock()
					mu.Unlock()
				}
			}},
		}},
		{"RLockRUnlock", "RLock+RUnlock", []benchCase{
			{"ours", func(b *testing.B) {
				m := openOurs(b, p("rlock", "ours"))
				defer stopThen(b, func() { m.Close() })
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					m.RLock()
					m.RUnlock()
				}
			}},
			{"gofrs", func(b *testing.B) {
				g := gofrs.New(p("rlock", "gofrs"))
				defer stopThen(b, func() { g.Close() })
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					check(g.RLock())
					check(g.Unlock())
				}
			}},
			{"raw", lockUnlockRaw(p("rlock", "raw"), unix.LOCK_SH, false)},
			{"raw-direct", lockUnlockRaw(p("rlock", "raw-direct"), unix.LOCK_SH, true)},
			{"sync", func(b *testing.B) {
				var mu sync.RWMutex
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					mu.RLock()
					mu.RUnlock()
				}
			}},
		}},
		{"TryLockUnlock", "TryLock+Unlock", []benchCase{
			{"ours", func(b *testing.B) {
				m := openOurs(b, p("try", "ours"))
				defer stopThen(b, func() { m.Close() })
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					checkOK(m.TryLock())
					m.Unlock()
				}
			}},
			{"gofrs", func(b *testing.B) {
				g := gofrs.New(p("try", "gofrs"))
				defer stopThen(b, func() { g.Close() })
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					checkOK(g.TryLock())
					check(g.Unlock())
				}
			}},
			{"raw", func(b *testing.B) {
				f, fd := openRaw(b, p("try", "raw"))
				defer stopThen(b, func() { f.Close() })
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					check(flockRetry(fd, unix.LOCK_EX|unix.LOCK_NB))
					check(flockRetry(fd, unix.LOCK_UN))
				}
			}},
			{"sync", func(b *testing.B) {
				var mu sync.Mutex
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if !mu.TryLock() {
						b.Fatal("TryLock failed")
					}
					mu.Unlock()
				}
			}},
		}},
	}
}

// Scenario 2: 8 goroutines of one process on one file.

const contenders = 8

// rwFuncs is one goroutine's way to lock.
type rwFuncs struct{ lock, unlock, rlock, runlock func() }

// A contImpl sets up the 8 goroutines' handles: handle gives each
// goroutine (and the holder of the joining case) its own, with a closer;
// closeShared closes what they share.
type contImpl struct {
	name  string
	setup func(path string) (handle func() (rwFuncs, func()), closeShared func(), err error)
}

func noop() {}

// contImpls: ours shares one handle among all goroutines (as a
// sync.RWMutex is shared), and ours-handles gives each its own handle on
// the file; gofrs and raw flock(2) need a handle or descriptor per
// goroutine to exclude at all.
var contImpls = []contImpl{
	{"ours-handles", func(path string) (func() (rwFuncs, func()), func(), error) {
		h := func() (rwFuncs, func()) {
			m, err := flock.Open(path)
			check(err)
			return rwFuncs{m.Lock, m.Unlock, m.RLock, m.RUnlock}, func() { check(m.Close()) }
		}
		return h, noop, nil
	}},
	{"ours", func(path string) (func() (rwFuncs, func()), func(), error) {
		m, err := flock.Open(path)
		if err != nil {
			return nil, nil, err
		}
		h := func() (rwFuncs, func()) {
			return rwFuncs{m.Lock, m.Unlock, m.RLock, m.RUnlock}, noop
		}
		return h, func() { check(m.Close()) }, nil
	}},
	{"gofrs", func(path string) (func() (rwFuncs, func()), func(), error) {
		h := func() (rwFuncs, func()) {
			g := gofrs.New(path)
			return rwFuncs{
				func() { check(g.Lock()) }, func() { check(g.Unlock()) },
				func() { check(g.RLock()) }, func() { check(g.Unlock()) },
			}, func() { check(g.Close()) }
		}
		return h, noop, nil
	}},
	{"raw", func(path string) (func() (rwFuncs, func()), func(), error) {
		h := func() (rwFuncs, func()) {
			f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
			check(err)
			fd := int(f.Fd())
			un := func() { check(flockRetry(fd, unix.LOCK_UN)) }
			return rwFuncs{
				func() { check(flockRetry(fd, unix.LOCK_EX)) }, un,
				func() { check(flockRetry(fd, unix.LOCK_SH)) }, un,
			}, func() { check(f.Close()) }
		}
		return h, noop, nil
	}},
	{"sync", func(path string) (func() (rwFuncs, func()), func(), error) {
		var mu sync.RWMutex
		h := func() (rwFuncs, func()) {
			return rwFuncs{mu.Lock, mu.Unlock, mu.RLock, mu.RUnlock}, noop
		}
		return h, noop, nil
	}},
}

// joinFloorImpl is the work a reader of the package does to join its
// handle's read admission, with no lock: one addition to a word on a
// cache line of its own, its result tested (admitted, and neither the
// handle nor the entry's fast path closed), and at RUnlock one
// subtraction compared with the handle's floor, which it loads. It copies
// the layout of the handle's state word (flock.go), which the bench cannot
// import: flags in bits 0-2, read locks counted from bit 32. Only its read
// lock works.
var joinFloorImpl = contImpl{"floor", func(string) (func() (rwFuncs, func()), func(), error) {
	w := &joinFloorWord{floor: joinFloorUnit}
	w.state.Store(joinFloorAdmitted)
	h := func() (rwFuncs, func()) {
		no := func() { panic("the floor has no write lock") }
		return rwFuncs{no, no, w.rlock, w.runlock}, noop
	}
	return h, noop, nil
}}

const (
	joinFloorAdmitted = 1 << 1
	joinFloorMask     = 1<<3 - 1 // closed, admitted, fast path closed
	joinFloorUnit     = 1 << 32
)

type joinFloorWord struct {
	state atomic.Int64
	_     [64 - 8]byte
	floor int64
}

func (w *joinFloorWord) rlock() {
	if n := w.state.Add(joinFloorUnit); n&joinFloorMask != joinFloorAdmitted {
		w.notJoined()
	}
}

//go:noinline
func (w *joinFloorWord) notJoined() { panic("the floor's reader did not join") }

func (w *joinFloorWord) runlock() {
	if n := w.state.Add(-joinFloorUnit); n < w.floor {
		w.lastLeft(n)
	}
}

// lastLeft is where the package would give the admission back: the
// standing reader leaves last, after the timed part.
//
//go:noinline
func (w *joinFloorWord) lastLeft(n int64) {
	if n < 0 {
		panic("the floor's read lock released twice")
	}
}

// contention workloads: op is what goroutine g does for its i-th
// operation.
type workload struct {
	name, title string
	holdRead    bool // another goroutine holds a read lock throughout
	op          func(f *rwFuncs, g, i int)
}

var workloads = []workload{
	{"Writers8", "writers only", false, func(f *rwFuncs, g, i int) { f.lock(); f.unlock() }},
	{"Readers8", "readers, standing start", false, func(f *rwFuncs, g, i int) { f.rlock(); f.runlock() }},
	{"ReadersJoining8", "readers joining a held read lock", true, func(f *rwFuncs, g, i int) { f.rlock(); f.runlock() }},
	{"Mixed90Readers8", "90% readers, 10% writers", false, func(f *rwFuncs, g, i int) {
		if (i+g)%10 == 0 {
			f.lock()
			f.unlock()
		} else {
			f.rlock()
			f.runlock()
		}
	}},
}

func contentionGroups(dir string) []benchGroup {
	var groups []benchGroup
	for _, w := range workloads {
		g := benchGroup{name: w.name, title: w.title}
		for _, ci := range contImpls {
			path := filepath.Join(dir, "s2-"+w.name+"-"+ci.name+".lock")
			g.cases = append(g.cases, benchCase{ci.name, func(b *testing.B) { runContention(b, path, ci, w) }})
		}
		groups = append(groups, g)
	}
	return groups
}

// runContention splits b.N operations among 8 goroutines that start
// together; handles are opened and closed outside the timed part.
func runContention(b *testing.B, path string, ci contImpl, w workload) {
	b.StopTimer()
	handle, closeShared, err := ci.setup(path)
	if err != nil {
		b.Fatal(err)
	}
	defer closeShared()
	if w.holdRead {
		h, done := handle()
		h.rlock()
		defer done()
		defer h.runlock()
	}
	fs := make([]rwFuncs, contenders)
	dones := make([]func(), contenders)
	for g := range fs {
		fs[g], dones[g] = handle()
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < contenders; g++ {
		n := b.N / contenders
		if g < b.N%contenders {
			n++
		}
		wg.Add(1)
		go func(g, n int) {
			defer wg.Done()
			f := &fs[g]
			<-start
			for i := 0; i < n; i++ {
				w.op(f, g, i)
			}
		}(g, n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.StartTimer()
	close(start)
	wg.Wait()
	b.StopTimer()
	for _, d := range dones {
		d()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
