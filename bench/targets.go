//go:build linux

package main

// The targets of issue #7, checked against this run's figures.

import (
	"fmt"
	"time"
)

// results collects the figures the targets need; hasN is set when
// scenario N ran.
type results struct {
	has1, has2, has3, has4, has5, has6 bool

	lockNs, lockGofrsNs, lockRawNs, lockAllocs float64
	joinOurs, joinGofrs, standOurs, standGofrs float64
	handoffOurs, handoffRaw, handoffTry10      time.Duration
	cancelP99                                  time.Duration
	floodOurs, floodGofrs, floodWindow         time.Duration
	floodRows                                  []impl
	flood                                      map[string]floodResult
	waitersN                                   int
	waitersThreads                             int64
}

// handful is how many extra OS threads count as "a handful".
const handful = 8

func (r *results) targets(cfg *config) *table {
	t := &table{
		title:  "Targets (issue #7), from this run",
		header: []string{"target", "wanted", "measured", "met?"},
	}
	// atLeast reports a ratio that should be at least want.
	atLeast := func(name string, want, got float64, wantText string) {
		verdict := "yes"
		if !(got >= want) {
			verdict = fmt.Sprintf("no: %.0f%% short", 100*(1-got/want))
		}
		t.row(name, wantText, fmtRatio(got), verdict)
	}
	atMost := func(name string, want, got float64, wantText, gotText string) {
		verdict := "yes"
		switch {
		case got <= want:
		case want == 0:
			verdict = "no"
		default:
			verdict = fmt.Sprintf("no: %.0f%% over", 100*(got/want-1))
		}
		t.row(name, wantText, gotText, verdict)
	}
	if r.has1 {
		atLeast("uncontended Lock+Unlock: gofrs time ÷ ours", 4, r.lockGofrsNs/r.lockNs, "≥ 4x")
		atMost("uncontended Lock+Unlock: ours time ÷ raw flock(2)", 1.3, r.lockNs/r.lockRawNs, "≤ 1.3x", fmtRatio(r.lockNs/r.lockRawNs))
		atMost("uncontended Lock+Unlock: allocations", 0, r.lockAllocs, "0 allocs/op", fmtAllocs(r.lockAllocs)+" allocs/op")
	}
	if r.has2 {
		atLeast("8 readers joining a held read lock: ours ÷ gofrs ops/s", 20, r.joinOurs/r.joinGofrs, "≥ 20x")
		atLeast("8 readers from a standing start: ours ÷ gofrs ops/s", 1, r.standOurs/r.standGofrs, "≥ 1x")
	}
	if r.has3 {
		atMost("handoff median, LockContext ÷ raw blocking flock(2)", 2, float64(r.handoffOurs)/float64(r.handoffRaw), "≤ 2x",
			fmt.Sprintf("%s (%s vs %s)", fmtRatio(float64(r.handoffOurs)/float64(r.handoffRaw)), fmtDur(r.handoffOurs), fmtDur(r.handoffRaw)))
		atLeast("handoff median: gofrs TryLockContext 10 ms ÷ ours LockContext", 50, float64(r.handoffTry10)/float64(r.handoffOurs), "≥ 50x")
	}
	if r.has4 {
		atMost("cancellation p99 of LockContext", float64(time.Millisecond), float64(r.cancelP99), "< 1 ms", fmtDur(r.cancelP99))
	}
	if r.has6 {
		atMost(fmt.Sprintf("%d waiting goroutines: extra OS threads", r.waitersN), handful, float64(r.waitersThreads),
			fmt.Sprintf("a handful (≤ %d)", handful), fmt.Sprint(r.waitersThreads))
	}
	if r.has5 {
		for _, im := range r.floodRows {
			f := r.flood[im.name]
			got := fmtDur(f.maxWait)
			if f.starved {
				got = "≥ " + got + " (starved)"
			}
			t.row("writer's longest wait under the reader flood: "+im.name, "(no target; window "+fmtDur(r.floodWindow)+")", got, "—")
		}
	}
	return t
}
