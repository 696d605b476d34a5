package witness

import "sync/atomic"

// A Tally counts units held by participants that may be killed, each in a
// cell of its own, and sums them consistently.
//
// A Gauge cannot survive a kill: the units a killed participant counted in
// stay counted after the kernel freed them. A Tally keeps each
// participant's units apart, so the supervisor can exclude a participant
// it is about to kill (Exclude, before the kill) and clear its cell once
// it has reaped it (Reset); meanwhile the sums leave that participant out.
//
// Sum reads every cell between two reads of a change counter that every
// Add increments after its cell: if the counter did not move, no cell
// changed while they were read, except by Adds whose increment is still to
// come; and such an Add cannot be one that a participant made after a
// release that another participant's Add, read in the same scan, depended
// on, because that release came after the first's increment. So a Sum
// that says ok is a state the participants were really in (or one with
// fewer units held), never two holds that did not overlap counted as one
// instant. Participants count in after the grant and out before the
// release.
type Tally struct {
	changes  *atomic.Int64
	held     []atomic.Int64
	excluded []atomic.Int64
}

// TallyCells is the number of cells a Tally of n participants takes.
func TallyCells(n int) int { return 1 + 2*n }

// Add counts delta units in (or out, if negative) for participant i.
func (t Tally) Add(i int, delta int64) {
	t.held[i].Add(delta)
	t.changes.Add(1)
}

// Sum returns the units held by the participants not excluded, with ok
// false if cells changed while it read them, tries times over.
func (t Tally) Sum(tries int) (sum int64, ok bool) {
	for ; tries > 0; tries-- {
		before := t.changes.Load()
		sum = 0
		for i := range t.held {
			if t.excluded[i].Load() == 0 {
				sum += t.held[i].Load()
			}
		}
		if t.changes.Load() == before {
			return sum, true
		}
	}
	return 0, false
}

// Held returns participant i's units.
func (t Tally) Held(i int) int64 { return t.held[i].Load() }

// Exclude leaves participant i out of the sums, before it is killed.
func (t Tally) Exclude(i int) { t.excluded[i].Store(1) }

// Reset clears participant i's cell, once it is dead and reaped, and
// counts it in the sums again (for its replacement).
func (t Tally) Reset(i int) {
	t.held[i].Store(0)
	t.changes.Add(1)
	t.excluded[i].Store(0)
}
