//go:build unix

package flock

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A writer admitted between the last reader's count reaching zero and that
// reader's settle must not convert the process's shared OS lock in place
// (flock would drop it and the reader's late settle would release the
// writer's lock, or with WriterPriority its gate).
func TestWriterInLastReadersWindow(t *testing.T) {
	for _, opts := range [][]Option{nil, {WriterPriority()}} {
		p := lockPath(t)
		r, w := mustOpen(t, p, opts...), mustOpen(t, p, opts...)
		c := startChild(t, p)
		e := r.e
		r.RLock()
		c.must(t, "rlock") // another process reads too

		// The first half of the last RUnlock.
		if n := e.readers.Add(-1); n != 0 {
			t.Fatalf("reader count %d; want 0", n)
		}
		errc := make(chan error, 1)
		go func() { errc <- w.LockContext(context.Background()) }()
		eventually(t, "the writer waits in the kernel", func() bool {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.inflight != nil
		})
		e.mu.Lock()
		held, gateHeld := e.held, e.gate != nil && e.gate.held
		e.mu.Unlock()
		if held != unlocked {
			t.Fatalf("writer waits while the process holds the OS lock in mode %d (converted in place)", held)
		}
		// The second half: the reader settles late.
		e.mu.Lock()
		e.settle()
		e.mu.Unlock()
		r.state.Add(-readUnit)
		if e.gate != nil {
			e.mu.Lock()
			still := e.gate.held
			e.mu.Unlock()
			if gateHeld && !still {
				t.Fatal("the reader's late settle released the waiting writer's gate")
			}
		}

		c.must(t, "runlock")
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if got := c.do("tryrlock"); got != "held" {
			t.Fatalf("child tryrlock while our writer holds = %s", got)
		}
		w.Unlock()
		c.stop()
	}
}

// A writer's wait left in the kernel after its LockContext gave up must not
// keep the process's own readers out while only readers hold the lock
// elsewhere (where the backend can wait on a separate owner).
func TestAbandonedWriterWaitLetsReadersIn(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	c.must(t, "rlock")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := m.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockContext = %v; want DeadlineExceeded", err)
	}
	ok, err := m.TryRLock()
	if err != nil {
		t.Fatal(err)
	}
	if backendName == "fcntl" {
		// Record locks belong to the process: no second owner to wait on.
		if ok {
			t.Fatal("TryRLock beside an abandoned fcntl wait succeeded")
		}
		c.must(t, "runlock")
		waitIdle(t, m.e)
		return
	}
	if !ok {
		t.Fatal("TryRLock = false while only readers hold the lock elsewhere and our writer gave up")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := m.RLockContext(ctx2); err != nil {
		t.Fatalf("RLockContext beside the abandoned wait: %v", err)
	}
	// The other process leaves; the abandoned wait is still blocked by our
	// own readers and must not take over.
	c.must(t, "runlock")
	if got := c.do("trylock"); got != "held" {
		t.Fatalf("child trylock while we read = %s", got)
	}
	m.RUnlock()
	m.RUnlock()
	waitIdle(t, m.e)
	if got := c.do("trylock"); got != "ok" {
		t.Fatalf("child trylock after we left = %s: the abandoned wait kept the lock", got)
	}
	c.must(t, "unlock")
}
