//go:build linux

package flock

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A reader waiting for an abandoned writer's wait must wake when another
// reader of the process takes the lock beside that wait; otherwise the wait
// (blocked by our own shared lock) and the reader (admitted, so keeping the
// lock) wait for each other forever.
func TestReaderWokenWhenLockTakenBesideWait(t *testing.T) {
	if backendName != "flock" {
		t.Skipf("the %s backend never locks beside a wait in flight", backendName)
	}
	p := lockPath(t)
	m := mustOpen(t, p)
	h := startChildRole(t, "holder", p)
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

	h.must(t, "s") // the other process now reads; the abandoned wait stays blocked
	if ok, err := m.TryRLock(); !ok || err != nil {
		t.Fatalf("TryRLock beside the abandoned wait = %v, %v", ok, err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("the waiting reader: %v", err)
	}
	m.RUnlock()
	m.RUnlock()
	h.do("u")
	waitIdle(t, m.e)
}
