//go:build unix

package flock

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A writer's wait left in the kernel after its LockContext gave up must not
// keep the process's own readers out while only readers hold the lock
// elsewhere (where the backend can wait on a separate owner).
func TestAbandonedWriterWaitLetsReadersIn(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	c.Must(t, "rlock")
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
		c.Must(t, "runlock")
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
	c.Must(t, "runlock")
	if got := c.Do("trylock"); got != "held" {
		t.Fatalf("child trylock while we read = %s", got)
	}
	m.RUnlock()
	m.RUnlock()
	waitIdle(t, m.e)
	if got := c.Do("trylock"); got != "ok" {
		t.Fatalf("child trylock after we left = %s: the abandoned wait kept the lock", got)
	}
	c.Must(t, "unlock")
}

// A writer wait that its caller abandoned lets go of the gate at once:
// otherwise the process keeps every WriterPriority user of every process
// out for as long as the wait stays in the kernel, after every context in
// the process has ended.
func TestAbandonedWaitReleasesGate(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p, WriterPriority())
	c := startChild(t, p) // without the option: not ordered by the gate
	c.Must(t, "lock")
	for _, lock := range []func(context.Context) error{m.LockContext, m.RLockContext, m.LockContext} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := lock(ctx)
		cancel()
		if err == nil {
			t.Fatal("locked while another process holds the lock")
		}
	}
	g := startChild(t, p+".gate")
	if got := g.Do("trylock"); got != "ok" {
		t.Fatalf("another process's trylock of the gate after our contexts ended = %s; want ok", got)
	}
	g.Must(t, "unlock")
	c.Must(t, "unlock")
	waitIdle(t, m.e)
}
