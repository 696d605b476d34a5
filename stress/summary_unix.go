//go:build unix

package main

// The summary of a run: totals over the workers' counters, and the
// summary the report prints.

import (
	"fmt"
	"path/filepath"
	"time"
)

type totals struct {
	ops, reads, writes, cancels, violations, errors int64
}

func (p *parent) totals() totals {
	var t totals
	for i := 0; i < p.m.n; i++ {
		s := p.m.slot(i)
		for k := 0; k < nKinds; k++ {
			t.ops += s.ops[k].Load()
		}
		t.reads += s.readsDone.Load()
		t.writes += s.writesDone.Load()
		t.cancels += s.busy[kLockCtx].Load() + s.busy[kRLockCtx].Load()
		t.violations += s.violations.Load()
		t.errors += s.errors.Load()
	}
	t.violations += p.violations.Load() + p.stuck
	t.errors += p.errors.Load()
	return t
}

func (p *parent) summarize(elapsed time.Duration, delta int64) *summary {
	sm := &summary{
		Config:       p.cfg,
		LockFile:     p.lockPath,
		Elapsed:      elapsed,
		CounterDelta: delta,
		CutWrites:    p.cut,
		Kills:        p.kills,
		KillsHolding: p.killsHolding,
		Replacements: p.replacements,
		Stuck:        p.stuck,
		LongWaits:    p.longWaits,
	}
	sm.LockPaths = p.paths
	sm.RemovedAtExit = p.cfg.Path == ""
	if p.cfg.pathMode() {
		sm.LockFile = ""
		sm.LockDir = filepath.Dir(p.paths[0])
		sm.Recreations = p.recreations
	} else {
		sm.LockDir = filepath.Dir(p.lockPath)
	}
	var hist [nHist][nBuckets]int64
	var hmax [nHist]int64
	for i := 0; i < p.m.n; i++ {
		s := p.m.slot(i)
		for h := 0; h < nHist; h++ {
			for b := range hist[h] {
				hist[h][b] += s.hist[h][b].Load()
			}
			if v := s.histMax[h].Load(); v > hmax[h] {
				hmax[h] = v
			}
		}
		sm.Writes += s.writesDone.Load()
		sm.Reads += s.readsDone.Load()
		sm.Violations += s.violations.Load()
		sm.Errors += s.errors.Load()
		sm.Opens += s.opens.Load()
		sm.WrongEntries += s.wrongEntry.Load()
		sm.StaleLocks += s.stale.Load()
		sm.Removals += s.removals.Load()
		sm.MaxReaders = max(sm.MaxReaders, s.maxReaders.Load())
		sm.MaxReaderProcs = max(sm.MaxReaderProcs, s.maxReaderProcs.Load())
		sm.WriterMaxWait = max(sm.WriterMaxWait, s.writerMaxWait.Load())
	}
	for k := 0; k < nKinds; k++ {
		ks := kindSummary{
			Kind: kindNames[k],
			P50:  quantile(hist[k][:], 0.50, hmax[k]),
			P99:  quantile(hist[k][:], 0.99, hmax[k]),
			Max:  hmax[k],
		}
		for i := 0; i < p.m.n; i++ {
			s := p.m.slot(i)
			ks.Ops += s.ops[k].Load()
			ks.Acquired += s.acquired[k].Load()
			// The witness counts Try calls that found the lock held and
			// context calls that were cancelled in one array: a kind
			// can only end one of the two ways.
			switch {
			case isTry(k):
				ks.Busy += s.busy[k].Load()
			case isCtx(k):
				ks.Cancelled += s.busy[k].Load()
			}
			ks.Errors += s.failed[k].Load()
		}
		ks.BusyOrCancelled = ks.Busy + ks.Cancelled
		// A worker counts a call before it counts its end, so a kill
		// between the two leaves a call with no end.
		ks.Cut = ks.Ops - ks.Acquired - ks.Busy - ks.Cancelled - ks.Errors
		if ks.Cut < 0 {
			p.error("%s: %d calls but %d ends counted", ks.Kind, ks.Ops, ks.Ops-ks.Cut)
		}
		sm.CutCalls += ks.Cut
		sm.TotalOps += ks.Ops
		sm.Kinds = append(sm.Kinds, ks)
	}
	// Each kill can cut at most one call per goroutine of its victim.
	if sm.CutCalls > p.kills*int64(p.cfg.Goroutines) {
		p.error("%d calls have no counted end after %d kills of processes with %d goroutines", sm.CutCalls, p.kills, p.cfg.Goroutines)
	}
	sm.Cancelled = sm.Kinds[kLockCtx].Cancelled + sm.Kinds[kRLockCtx].Cancelled
	sm.LateP50 = quantile(hist[hLate][:], 0.50, hmax[hLate])
	sm.LateP99 = quantile(hist[hLate][:], 0.99, hmax[hLate])
	sm.LateMax = hmax[hLate]
	sm.MaxReaders = max(sm.MaxReaders, p.maxReaders.Load())
	sm.MaxReaderProcs = max(sm.MaxReaderProcs, p.maxRProcs.Load())

	// No lost update: every completed write section advanced the counter;
	// a section cut by a kill may or may not have.
	switch {
	case delta < sm.Writes:
		p.finalViolation("lost updates: the counter advanced by %d but %d write sections completed", delta, sm.Writes)
	case delta > sm.Writes+sm.CutWrites:
		p.finalViolation("the counter advanced by %d, more than the %d completed write sections plus %d cut by kills", delta, sm.Writes, sm.CutWrites)
	}
	if sm.TotalOps == 0 {
		p.error("no operation completed")
	}
	sm.Violations += p.violations.Load() + p.stuck
	sm.Errors += p.errors.Load()
	p.msgMu.Lock()
	sm.Messages = append(p.final, p.messages...)
	if p.dropped > 0 {
		sm.Messages = append(sm.Messages, fmt.Sprintf("(%d more messages not kept)", p.dropped))
	}
	p.msgMu.Unlock()
	sm.Pass = sm.Violations == 0 && sm.Errors == 0
	return sm
}
