//go:build linux

package main

// Scenario 2: in-process contention, 8 goroutines on one file, and mutual
// exclusion with one handle shared by goroutines.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	gofrs "github.com/gofrs/flock"
	"golang.org/x/sys/unix"
)

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

	// One CPU: the joining readers again, ours on one handle and
	// sync.RWMutex, with GOMAXPROCS 1, where no core fights another over a
	// cache line and what is left is the work each does.
	// Beside them, the floor: the package's join with no lock (see
	// joinFloor), in the same harness.
	one := benchGroup{name: "ReadersJoining8OneCPU"}
	for _, g := range groups {
		if g.name == "ReadersJoining8" {
			for _, c := range g.cases {
				if c.name == "ours" || c.name == "sync" {
					one.cases = append(one.cases, c)
				}
			}
		}
	}
	for _, w := range workloads {
		if w.name == "ReadersJoining8" {
			one.cases = append(one.cases, benchCase{"floor", func(b *testing.B) { runContention(b, "", joinFloorImpl, w) }})
		}
	}
	prev := runtime.GOMAXPROCS(1)
	med1, err := runGroups([]benchGroup{one}, cfg.reps)
	runtime.GOMAXPROCS(prev)
	if err != nil {
		return nil, err
	}
	res.joinOurs1, res.joinSync1 = med1[one.name+"/ours"].opsPerSec, med1[one.name+"/sync"].opsPerSec
	res.joinFloor1 = med1[one.name+"/floor"].opsPerSec
	t.note("One CPU (GOMAXPROCS 1), readers joining a held read lock: ours (one handle) %s, sync.RWMutex %s, ours/sync %s; the package's join with no lock (the floor) %s, ours/floor %s.",
		fmtRate(res.joinOurs1), fmtRate(res.joinSync1), fmtRatio(res.joinOurs1/res.joinSync1),
		fmtRate(res.joinFloor1), fmtRatio(res.joinOurs1/res.joinFloor1))

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
