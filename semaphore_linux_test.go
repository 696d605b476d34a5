//go:build linux

package flock

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-flock/flock/internal/testproc"
)

// However many goroutines wait, a process blocks at most one thread per
// slot in the kernel for them, plus one on the gate for requests of more
// than one unit; and they are in the lock call (no polling). Cancelling
// them all leaves no lock held by the process.
func TestSemaphoreKernelWaitersBounded(t *testing.T) {
	nr := lockSyscall()
	const capacity = 3
	dir := t.TempDir()
	s := mustOpenSemaphore(t, dir, "b", capacity)
	c := startChildRole(t, "semaphore", dir, semEnv("b", capacity))
	c.Must(t, "acquire 3")
	_, before := threadsIn(t, nr)

	const single, double = 50, 5
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, single+double)
	var wg sync.WaitGroup
	for i := 0; i < single+double; i++ {
		n := int64(1)
		if i >= single {
			n = 2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Acquire(ctx, n)
		}()
	}
	// capacity units are admitted in the process; those of them queued
	// for slots have a waiter on every slot.
	eventually(t, "the slot waits reach the kernel", func() bool {
		in, _ := threadsIn(t, nr)
		return in >= capacity
	})
	in, after := threadsIn(t, nr)
	t.Logf("%d goroutines waiting: %d thread(s) in the lock call, threads %d -> %d", single+double, in, before, after)
	if in > capacity+1 {
		t.Errorf("%d threads in the lock system call; want at most %d", in, capacity+1)
	}
	if after-before > capacity+4 {
		t.Errorf("threads went from %d to %d with %d waiting goroutines", before, after, single+double)
	}
	cancel()
	wg.Wait()
	for i := 0; i < single+double; i++ {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("waiter returned %v", err)
		}
	}
	for i := 0; i < capacity; i++ {
		if got := osLocks(t, s.slots[i].path); len(got) != 0 {
			t.Errorf("slot %d: this process holds %v after every waiter was cancelled", i, got)
		}
	}
	// The child lets go: the waits still in the kernel are granted and
	// released by the package, and the slots are free for the child again.
	c.Must(t, "release 3")
	for i := 0; i < capacity; i++ {
		waitIdle(t, s.slots[i].m.e)
	}
	if got := c.Do("try 3"); got != "ok" {
		t.Fatalf("child TryAcquire(3) after the abandoned waits ended = %s", got)
	}
}

// With the gate held by another process's weighted request, a process's
// weighted requests wait on the gate (one thread) and its single-unit
// requests on the slots (one thread each): capacity+1 at most.
func TestSemaphoreKernelWaitersWithGate(t *testing.T) {
	nr := lockSyscall()
	const capacity = 3
	dir := t.TempDir()
	s := mustOpenSemaphore(t, dir, "g", capacity)
	holder := startChildRole(t, "semaphore", dir, semEnv("g", capacity))
	holder.Must(t, "acquire 3")
	gated := startChildRole(t, "semaphore", dir, semEnv("g", capacity))
	if err := gated.Send("acquire 2"); err != nil {
		t.Fatal(err)
	}
	// It holds the gate once it waits for slots: a wait in the kernel on
	// each of them.
	eventually(t, "the other process waits for slots holding the gate", func() bool {
		in, _, _ := testproc.ThreadsIn(gated.Cmd.Process.Pid, nr)
		return in >= capacity
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// One weighted request (another would queue in the process's FIFO, and
	// the single-unit requests behind it), then single-unit ones: one of
	// them gets the last unit of the process.
	const double, single = 1, 50
	errs := make(chan error, double+single)
	var wg sync.WaitGroup
	start := func(count int, n int64) {
		for i := 0; i < count; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.Acquire(ctx, n)
			}()
		}
	}
	start(double, 2)
	eventually(t, "a weighted request waits for the gate in the kernel", func() bool {
		in, _ := threadsIn(t, nr)
		return in >= 1
	})
	start(single, 1)
	eventually(t, "the single-unit request waits on every slot", func() bool {
		in, _ := threadsIn(t, nr)
		return in >= capacity+1
	})
	in, all := threadsIn(t, nr)
	t.Logf("%d goroutines waiting: %d thread(s) in the lock call, %d threads", double+single, in, all)
	if in > capacity+1 {
		t.Errorf("%d threads in the lock system call; want at most %d", in, capacity+1)
	}
	cancel()
	wg.Wait()
	for i := 0; i < double+single; i++ {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("waiter returned %v", err)
		}
	}
	holder.Must(t, "release 3")
	if got := gated.Recv(); got != "ok" {
		t.Fatalf("the gated process's Acquire(2) = %s", got)
	}
	gated.Must(t, "release 2")
	for i := 0; i < capacity; i++ {
		waitIdle(t, s.slots[i].m.e)
	}
	waitIdle(t, s.gate.e)
}

// A cleaner that removes the gate file while a weighted request of another
// process holds it and waits must not deadlock weighted requests: here the
// child holds slot 01 and the old gate and waits for slot 00, while this
// process, through a handle opened after the removal, holds the new gate
// and slot 00 and waits for 01. The child notices its gate has no name any
// more, lets slot 01 go, and both requests complete.
func TestSemaphoreGateRemovedWhileHeld(t *testing.T) {
	nr := lockSyscall()
	const capacity = 2
	dir := t.TempDir()
	c := mustOpenSemaphore(t, dir, "gr", capacity)
	if err := c.Acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	child := startChildRole(t, "semaphore", dir, semEnv("gr", capacity))
	if err := child.Send("acquirectx 2 20000"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the child waits in the kernel for the slot this process holds", func() bool {
		in, _, _ := testproc.ThreadsIn(child.Cmd.Process.Pid, nr)
		return in >= 1
	})
	if err := os.Remove(c.gatePath()); err != nil {
		t.Fatal(err)
	}
	b := mustOpenSemaphore(t, dir, "gr", capacity)
	queued := make(chan *Semaphore, 1)
	testHookSemQueued = func(s *Semaphore) { queued <- s }
	defer func() { testHookSemQueued = nil }()
	got := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	go func() { got <- b.Acquire(ctx, 2) }()
	<-queued // b holds the new gate and waits for both slots
	// b's waiter for the slot c holds queues in this process, so that c's
	// release hands it that slot (not the child, waiting in the kernel).
	held := c.slots[c.held[0]].m.e
	eventually(t, "b's slot waiter queues behind c", func() bool { return held.queued() >= 1 })
	c.Release(1)
	if err := <-got; err != nil {
		t.Fatalf("a weighted Acquire beside a holder of the removed gate: %v", err)
	}
	b.Release(2)
	if ans := child.Recv(); ans != "ok" {
		t.Fatalf("the child's Acquire(2): %s", ans)
	}
	child.Must(t, "release 2")
}

// Close beside a Release in progress refuses (ErrLocked) and changes
// nothing, instead of closing the semaphore with slot handles it could not
// close; no descriptor is left.
func TestSemaphoreCloseDuringRelease(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 300; i++ {
		s, err := OpenSemaphore(dir, "cr", 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Acquire(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		released := make(chan struct{})
		go func() { s.Release(2); close(released) }()
		for {
			err := s.Close()
			if err == nil {
				break
			}
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("round %d: Close beside a Release: %v; want nil or ErrLocked", i, err)
			}
		}
		<-released
	}
	if open := descriptorsUnder(t, dir); len(open) != 0 {
		t.Fatalf("descriptors left open by 300 rounds: %q", open)
	}
}
