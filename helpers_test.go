package flock

// The root package's test helpers: lock files in a test's directory,
// handles closed at the end, bounded waits for state other goroutines
// change, and an exclusion witness for goroutines.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func lockPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "lock")
}

func mustOpen(t testing.TB, path string, opts ...Option) *RWMutex {
	t.Helper()
	m, err := Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			t.Errorf("handle left open: %v", err)
		}
	})
	return m
}

// waitingInKernel waits, bounded, until m's file has an OS wait in flight.
func waitingInKernel(t testing.TB, m *RWMutex) {
	t.Helper()
	eventually(t, "a wait is in the kernel", func() bool {
		m.e.mu.Lock()
		defer m.e.mu.Unlock()
		return m.e.waiting()
	})
}

// eventually waits, bounded, for cond to hold; cond reads state that other
// goroutines change, so it is polled rather than signalled.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// waitIdle waits until no OS wait is in flight for e.
func waitIdle(t testing.TB, e *entry) {
	eventually(t, "the abandoned wait ends", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return !e.waiting()
	})
}

// queued returns the number of goroutines queued at e's gate.
func (e *entry) queued() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.queue.Len()
}

// exclusionCheck records who is inside a critical section and counts
// violations of "one writer, or any number of readers".
type exclusionCheck struct {
	writers, readers, violations, maxReaders atomic.Int64
	plain                                    int // written only by writers: the race detector sees a broken lock
}

func (x *exclusionCheck) write() {
	if x.writers.Add(1) != 1 || x.readers.Load() != 0 {
		x.violations.Add(1)
	}
	x.plain++
	if x.writers.Add(-1) != 0 || x.readers.Load() != 0 {
		x.violations.Add(1)
	}
}

func (x *exclusionCheck) read() {
	n := x.readers.Add(1)
	for m := x.maxReaders.Load(); n > m && !x.maxReaders.CompareAndSwap(m, n); m = x.maxReaders.Load() {
	}
	if x.writers.Load() != 0 {
		x.violations.Add(1)
	}
	_ = x.plain
	x.readers.Add(-1)
}

// hammer runs goroutines that take write and read locks through the handles
// (goroutine i uses handles[i%len]) and checks exclusion.
func hammer(t *testing.T, handles []*RWMutex, goroutines, iterations int) *exclusionCheck {
	t.Helper()
	var x exclusionCheck
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		m := handles[g%len(handles)]
		g := g
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; i < iterations; i++ {
				switch (g + i) % 6 {
				case 0:
					m.Lock()
					x.write()
					m.Unlock()
				case 1:
					if err := m.LockContext(ctx); err != nil {
						t.Error(err)
						return
					}
					x.write()
					m.Unlock()
				case 2:
					if ok, err := m.TryLock(); err != nil {
						t.Error(err)
						return
					} else if ok {
						x.write()
						m.Unlock()
					}
				case 3:
					if ok, err := m.TryRLock(); err != nil {
						t.Error(err)
						return
					} else if ok {
						x.read()
						m.RUnlock()
					}
				case 4:
					if err := m.RLockContext(ctx); err != nil {
						t.Error(err)
						return
					}
					x.read()
					m.RUnlock()
				default:
					m.RLock()
					x.read()
					m.RUnlock()
				}
			}
		}()
	}
	wg.Wait()
	if v := x.violations.Load(); v != 0 {
		t.Errorf("%d exclusion violations", v)
	}
	return &x
}

func second(_ bool, err error) error { return err }

func registered(id fileID) *entry {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return registry.entries[id]
}

// checkHeldAfterFileClose checks, while m holds the write lock and after
// closing f, a result of m.File: another handle is still excluded, and
// File returns a new file that can be written.
func checkHeldAfterFileClose(t *testing.T, m, other *RWMutex, f *os.File) {
	t.Helper()
	if ok, err := other.TryLock(); ok || err != nil {
		t.Fatalf("other handle's TryLock while m holds = %v, %v", ok, err)
	}
	g := m.File()
	if g == nil || g == f {
		t.Fatalf("File after its result was closed = %v; want a new open file", g)
	}
	if _, err := g.WriteAt([]byte("ok"), 0); err != nil {
		t.Fatalf("writing through the new File: %v", err)
	}
}

// overlapReaders takes two read locks on m at once and releases them: its
// readers overlap, so m asks to follow its entry's fast path (see
// follower) and follows if the entry has room.
func overlapReaders(m *RWMutex) {
	m.RLock()
	m.RLock()
	m.RUnlock()
	m.RUnlock()
}
