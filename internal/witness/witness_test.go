package witness

import (
	"sync/atomic"
	"testing"
)

func TestMaxOverlap(t *testing.T) {
	for _, tc := range []struct {
		name string
		iv   []Interval
		want int64
	}{
		{"none", nil, 0},
		{"disjoint", []Interval{{0, 10, 1}, {20, 30, 1}}, 1},
		{"touching is not overlapping", []Interval{{0, 10, 2}, {10, 20, 3}}, 3},
		{"nested", []Interval{{0, 100, 1}, {10, 20, 2}, {15, 18, 1}}, 4},
		{"chain", []Interval{{0, 10, 1}, {5, 15, 1}, {12, 20, 1}}, 2},
	} {
		if got, _ := MaxOverlap(tc.iv); got != tc.want {
			t.Errorf("%s: MaxOverlap = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestGauge(t *testing.T) {
	var now, max atomic.Int64
	g := NewGauge(&now, &max)
	g.Enter(2)
	if v := g.Enter(3); v != 5 {
		t.Fatalf("Enter = %d, want 5", v)
	}
	g.Leave(3)
	g.Leave(2)
	if g.Now() != 0 || g.Max() != 5 {
		t.Fatalf("now %d max %d, want 0 and 5", g.Now(), g.Max())
	}
}
