//go:build unix

package flock

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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
		c.Must(t, "rlock") // another process reads too

		// The first half of the last RUnlock.
		if n := e.readers.Add(-1); n != 0 {
			t.Fatalf("reader count %d; want 0", n)
		}
		errc := make(chan error, 1)
		go func() { errc <- w.LockContext(context.Background()) }()
		eventually(t, "the writer waits in the kernel", func() bool {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.inflight[exclusive] != nil && (e.gate == nil || e.inflight[exclusive].gateHeld != unlocked)
		})
		e.mu.Lock()
		held := e.held
		e.mu.Unlock()
		if held != unlocked {
			t.Fatalf("writer waits while the process holds the OS lock in mode %d (converted in place)", held)
		}
		// The second half: the reader settles late.
		e.mu.Lock()
		e.settle()
		e.mu.Unlock()
		r.state.Add(-readUnit - admittedBit)
		if e.gate != nil {
			e.mu.Lock()
			c := e.inflight[exclusive]
			still := c != nil && c.gateHeld != unlocked
			e.mu.Unlock()
			if !still {
				t.Fatal("the reader's late settle released the waiting writer's gate")
			}
		}

		c.Must(t, "runlock")
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if got := c.Do("tryrlock"); got != "held" {
			t.Fatalf("child tryrlock while our writer holds = %s", got)
		}
		w.Unlock()
		c.Stop()
	}
}

// Open must not return the entry of another file whose inode number the
// path's stat happened to give: the stat is a guess until a reference pins
// the entry (issue: a.lock deleted between find's stat and its lookup, its
// inode reused by b.lock, which the process has open). The hook makes the
// race deterministic: a.lock is a hard link to b.lock when it is statted,
// and a file of its own right after.
func TestOpenVerifiesIdentity(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.lock"), filepath.Join(dir, "b.lock")
	hb := mustOpen(t, b)
	if err := os.Link(b, a); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	testHookStatted = func(path string) {
		if path != a {
			return
		}
		once.Do(func() {
			if err := os.Remove(a); err != nil {
				t.Error(err)
			}
			if err := os.WriteFile(a, nil, 0o644); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() { testHookStatted = nil }()
	ha := mustOpen(t, a)
	testHookStatted = nil
	if ha.e == hb.e {
		t.Fatal("Open(a.lock) returned b.lock's entry")
	}
	st, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := ha.File().Stat(); err != nil || !os.SameFile(fi, st) {
		t.Fatalf("a's handle locks a file other than a.lock (%v)", err)
	}
	// And so the two exclude nobody of each other.
	hb.Lock()
	if ok, err := ha.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock(a.lock) while b.lock is held = %v, %v", ok, err)
	}
	ha.Unlock()
	hb.Unlock()
}

// The readers of a handle share one read admission, installed by the first
// and given back exactly once by whoever brings the handle's count to zero,
// while joiners come and go (and undo their addition when the entry closes
// its fast path for a writer). A lost admission would leave the OS shared
// lock held; one given back twice would corrupt the entry's reader count.
func TestHandleAdmissionChurn(t *testing.T) {
	for _, perGoroutine := range []bool{false, true} {
		t.Run(map[bool]string{false: "one handle", true: "a handle per goroutine"}[perGoroutine], func(t *testing.T) {
			admissionChurn(t, perGoroutine)
		})
	}
}

// admissionChurn runs 8 readers, through one handle or a handle each (then
// they join and leave the entry's count directly), while a writer of
// another handle closes the fast path now and then.
func admissionChurn(t *testing.T, perGoroutine bool) {
	p := lockPath(t)
	m, w := mustOpen(t, p), mustOpen(t, p)
	var x exclusionCheck
	var readers sync.WaitGroup
	handles := make([]*RWMutex, 8)
	for g := range handles {
		handles[g] = m
		if perGoroutine {
			handles[g] = mustOpen(t, p)
		}
	}
	for g := 0; g < 8; g++ {
		readers.Add(1)
		go func(h *RWMutex) {
			defer readers.Done()
			for i := 0; i < 3000; i++ {
				h.RLock()
				x.read()
				h.RUnlock()
			}
		}(handles[g])
	}
	stop, writerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(writerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			w.Lock()
			x.write()
			w.Unlock()
		}
	}()
	readers.Wait()
	close(stop)
	<-writerDone
	if v := x.violations.Load(); v != 0 {
		t.Fatalf("%d exclusion violations", v)
	}
	e := m.e
	e.mu.Lock()
	admitted, held, open := e.admittedReaders(), e.held, e.fastOpen
	e.mu.Unlock()
	if open {
		t.Fatal("the entry's fast path is open after every reader left")
	}
	for _, h := range handles {
		if s := h.state.Load(); s != fastClosedBit {
			t.Fatalf("handle state %#x after every reader left; want %#x (the entry's fast path closed)", s, fastClosedBit)
		}
	}
	if admitted != 0 || held != unlocked {
		t.Fatalf("entry: %d admitted readers, OS lock %d after every reader left", admitted, held)
	}
	c := startChild(t, p)
	if got := c.Do("trylock"); got != "ok" {
		t.Fatalf("another process's trylock after every reader left = %s", got)
	}
	c.Must(t, "unlock")
}

// Writers of one process hand the exclusive OS lock on to each other
// without releasing it, but at most maxHandoffs times in a row: a writer of
// another process waiting meanwhile is woken at every release and gets in
// after a bounded number of the process's acquisitions (flock(2) does not
// order waiters, so the bound is statistical: here, far fewer than the
// writers make).
func TestHandoffsLetOtherProcessesIn(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	var acquired atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m.Lock()
				acquired.Add(1)
				m.Unlock()
			}
		}()
	}
	eventually(t, "the writers run", func() bool { return acquired.Load() > 1000 })
	const bound = 20000
	var worst int64
	for round := 0; round < 5; round++ {
		before := acquired.Load()
		if err := c.Send("lock"); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() { got <- c.Recv() }()
		select {
		case answer := <-got:
			if answer != "ok" {
				t.Fatalf("child: %s", answer)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the other process waited 10 s while the process's writers made %d acquisitions", acquired.Load()-before)
		}
		n := acquired.Load() - before
		if n > worst {
			worst = n
		}
		c.Must(t, "unlock")
	}
	t.Logf("the process's writers made at most %d acquisitions while the other process waited", worst)
	if worst > bound {
		t.Fatalf("the other process waited while the process's writers made %d acquisitions (bound %d)", worst, bound)
	}
}
