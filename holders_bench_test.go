package flock

import "testing"

// The cost of a lookup that a timed-out lock call adds to its error path.
func BenchmarkHolders(b *testing.B) {
	m := mustOpen(b, lockPath(b))
	m.Lock()
	defer m.Unlock()
	if _, err := m.holders(maxNamed); err != nil {
		b.Skip(err)
	}
	for i := 0; i < b.N; i++ {
		m.holders(maxNamed)
	}
}
