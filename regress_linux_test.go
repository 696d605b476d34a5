//go:build linux

package flock

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A reader admitted while an abandoned writer's wait is still in the
// kernel (flock(2) cannot abandon it) must get the lock as soon as another
// process lets readers in: when that process converts its exclusive lock to
// shared, or leaves with other processes' readers already inside. The
// abandoned wait stays blocked in both cases, so only a wait for a shared
// lock sees the change.
func TestReaderBesideAbandonedWriterWait(t *testing.T) {
	if backendName != "flock" {
		t.Skipf("the %s backend never locks beside a wait in flight (documented)", backendName)
	}
	for _, tc := range []struct {
		name string
		// letReadersIn makes the holder h let readers in, the abandoned
		// writer's wait staying blocked; r is a second process.
		letReadersIn func(t *testing.T, h, r *child)
		// done undoes it.
		done func(t *testing.T, h, r *child)
	}{
		{"holder converts to shared",
			func(t *testing.T, h, r *child) { h.must(t, "s") },
			func(t *testing.T, h, r *child) { h.do("u") }},
		{"holder leaves, other readers inside",
			func(t *testing.T, h, r *child) {
				if err := r.send("rlock"); err != nil { // blocks until h leaves
					t.Fatal(err)
				}
				h.do("u")
				if got := r.recv(); got != "ok" {
					t.Fatalf("reader process: %s", got)
				}
			},
			func(t *testing.T, h, r *child) { r.must(t, "runlock") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := lockPath(t)
			m := mustOpen(t, p)
			h := startChildRole(t, "holder", p)
			r := startChild(t, p)
			h.must(t, "l")

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			if err := m.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("LockContext = %v", err)
			}
			ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel2()
			waiting := make(chan error, 1)
			go func() { waiting <- m.RLockContext(ctx2) }()
			eventually(t, "the reader waits beside the abandoned writer's wait", func() bool {
				m.e.mu.Lock()
				defer m.e.mu.Unlock()
				return m.e.admittedReaders() == 1 && m.e.wake != nil
			})

			tc.letReadersIn(t, h, r)
			select {
			case err := <-waiting:
				if err != nil {
					t.Fatalf("the waiting reader: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the reader still waits 10 s after readers could go in")
			}
			m.RUnlock()
			tc.done(t, h, r)
			waitIdle(t, m.e)
		})
	}
}

// A lock granted after a wait in the kernel lives on the descriptor of
// File, as an uncontended one does: cmd/flock hands that descriptor to the
// command it runs, and a child that inherits it must inherit the lock.
// flock(2) on the very open file description that holds the lock succeeds
// (it converts nothing); on any other, it fails while the lock is held.
func TestContendedLockOnFile(t *testing.T) {
	if backendName != "flock" {
		t.Skipf("%s locks belong to the process, not to a descriptor", backendName)
	}
	for _, tc := range []struct {
		name string
		lock func(m *RWMutex) error
	}{
		{"Lock", func(m *RWMutex) error { m.Lock(); return nil }},
		{"LockContext", func(m *RWMutex) error { return m.LockContext(context.Background()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := lockPath(t)
			m := mustOpen(t, p)
			c := startChild(t, p)
			c.must(t, "lock")
			got := make(chan error, 1)
			go func() { got <- tc.lock(m) }()
			eventually(t, "the writer waits in the kernel", func() bool {
				m.e.mu.Lock()
				defer m.e.mu.Unlock()
				return m.e.waiting()
			})
			c.must(t, "unlock")
			if err := <-got; err != nil {
				t.Fatal(err)
			}
			if err := unix.Flock(int(m.File().Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				t.Fatalf("the lock is not on File's descriptor: flock on it = %v", err)
			}
			if got := c.do("trylock"); got != "held" {
				t.Fatalf("child trylock while we hold = %s", got)
			}
			m.Unlock()
			if got := c.do("trylock"); got != "ok" {
				t.Fatalf("child trylock after Unlock = %s", got)
			}
			c.must(t, "unlock")
		})
	}
}
