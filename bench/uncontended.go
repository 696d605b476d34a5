//go:build linux

package main

// Scenario 1: uncontended lock and unlock; and the runner of scenarios 1
// and 2's micro-benchmarks (microbench.go) through testing.Benchmark, every
// case once per round and the rounds repeated, so that drift on a busy
// machine hits every library alike; the tables give the median of the
// rounds.

import (
	"fmt"
	"math"
	"testing"
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
			"raw flock(2) ns/op (floor)", "raw direct ns/op", "sync ns/op", "ours/gofrs time", "ours/raw time", "ours/raw direct time"},
	}
	add := func(label, group, oursCase string) {
		o, g, r, s := med[group+"/"+oursCase], med[group+"/gofrs"], med[group+"/raw"], med[group+"/sync"]
		d, ok := med[group+"/raw-direct"]
		direct, overDirect := "—", "—"
		if ok {
			direct, overDirect = fmtNs(d.ns), fmtRatio(o.ns/d.ns)
		}
		t.row(label, fmtNs(o.ns), fmtBytesOp(o.bytes), fmtAllocs(o.allocs),
			fmtNs(g.ns), fmtBytesOp(g.bytes), fmtAllocs(g.allocs),
			fmtNs(r.ns), direct, fmtNs(s.ns), fmtRatio(o.ns/g.ns), fmtRatio(o.ns/r.ns), overDirect)
	}
	add("Lock+Unlock", "LockUnlock", "ours")
	add("LockContext+Unlock ¹", "LockUnlock", "ours-ctx")
	add("Lock+Unlock, WriterPriority ¹", "LockUnlock", "ours-prio")
	add("Lock+Unlock, RemoveOnUnlock ¹", "LockUnlock", "ours-remove")
	add("RLock+RUnlock ²", "RLockRUnlock", "ours")
	add("TryLock+Unlock", "TryLockUnlock", "ours")
	t.note("Median of %d rounds of testing.Benchmark (-benchtime %v each), cases interleaved. ours/gofrs below 1 means ours is faster; gofrs/ours = %s for Lock+Unlock.",
		cfg.reps, cfg.benchtime, fmtRatio(med["LockUnlock/gofrs"].ns/med["LockUnlock/ours"].ns))
	t.note("raw flock(2): LOCK_EX (LOCK_SH, LOCK_EX|LOCK_NB) then LOCK_UN on a descriptor kept open, through unix.Flock, as any Go program makes them. raw direct: LOCK_EX|LOCK_NB (LOCK_SH|LOCK_NB) then LOCK_UN as raw system calls (unix.RawSyscall), as the package makes its calls that do not wait on a local file system (ext2/3/4, xfs, btrfs, f2fs, tmpfs, ramfs; see locksNeverSleep): ours less that is the gate's own cost. sync: sync.Mutex (sync.RWMutex.RLock for the read row). gofrs opens and closes the file on every Lock/Unlock.")
	t.note("¹ The peer has no cancellable blocking lock, no writer priority and no safe removal; its columns repeat its Lock+Unlock. ² gofrs: RLock then Unlock (it has no RUnlock).")

	res.lockNs = med["LockUnlock/ours"].ns
	res.lockGofrsNs = med["LockUnlock/gofrs"].ns
	res.lockRawNs = med["LockUnlock/raw"].ns
	res.lockRawDirectNs = med["LockUnlock/raw-direct"].ns
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
