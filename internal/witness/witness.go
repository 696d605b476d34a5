// Package witness holds test plumbing that checks a lock without trusting
// it: counters in shared memory that every process of a test updates with
// atomic operations, and intervals whose overlap is counted afterwards.
//
// A participant counts itself in (Gauge.Enter, or the start of an
// Interval) only after the lock under test granted it, and out before it
// releases: so what the witness sees at any instant is at most what is
// really held, and a count above the bound is a real violation.
package witness

import "sort"

// An Interval is a span during which a participant held Units, in
// nanoseconds of a clock every participant reads alike (Now, and in Python
// the function PythonClock names). Enter is read after the grant, Leave
// before the release.
type Interval struct {
	Enter, Leave int64
	Units        int64
}

// MaxOverlap returns the largest sum of Units of intervals that overlap at
// one instant, and an instant where it is reached. An interval that
// leaves at the very instant another enters does not overlap it: the
// leaver's clock was read before its release, the enterer's after its
// grant.
func MaxOverlap(iv []Interval) (max, at int64) {
	type event struct {
		t     int64
		delta int64
	}
	ev := make([]event, 0, 2*len(iv))
	for _, v := range iv {
		ev = append(ev, event{v.Enter, v.Units}, event{v.Leave, -v.Units})
	}
	sort.Slice(ev, func(i, j int) bool {
		if ev[i].t != ev[j].t {
			return ev[i].t < ev[j].t
		}
		return ev[i].delta < ev[j].delta // leaves first
	})
	var cur int64
	for _, e := range ev {
		if cur += e.delta; cur > max {
			max, at = cur, e.t
		}
	}
	return max, at
}
