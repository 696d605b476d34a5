package witness

import "sync/atomic"

// A Gauge counts units held now, across every process that maps its
// cells, and remembers the largest count it reached.
type Gauge struct{ now, max *atomic.Int64 }

// NewGauge returns a gauge in two cells of the caller's (for a witness
// within one process).
func NewGauge(now, max *atomic.Int64) Gauge { return Gauge{now: now, max: max} }

// Enter counts n units in, once they are held, and returns the count with
// them.
func (g Gauge) Enter(n int64) int64 {
	v := g.now.Add(n)
	for {
		m := g.max.Load()
		if v <= m || g.max.CompareAndSwap(m, v) {
			return v
		}
	}
}

// Leave counts n units out, before they are released.
func (g Gauge) Leave(n int64) { g.now.Add(-n) }

// Now returns the count now.
func (g Gauge) Now() int64 { return g.now.Load() }

// Max returns the largest count reached.
func (g Gauge) Max() int64 { return g.max.Load() }
