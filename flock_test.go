package flock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// One handle shared by many goroutines excludes like sync.RWMutex (the
// most used Go library gives no exclusion at all here).
func TestSharedHandleExcludes(t *testing.T) {
	m := mustOpen(t, lockPath(t))
	hammer(t, []*RWMutex{m}, 8, 2000)
}

// Handles from separate Opens of one path share one entry and exclude.
func TestHandlesExclude(t *testing.T) {
	p := lockPath(t)
	a, b := mustOpen(t, p), mustOpen(t, p)
	if a.e != b.e {
		t.Fatal("two handles on one file have separate entries")
	}
	hammer(t, []*RWMutex{a, b}, 8, 1000)

	a.Lock()
	if ok, err := b.TryLock(); ok || err != nil {
		t.Errorf("TryLock through another handle while locked = %v, %v; want false, nil", ok, err)
	}
	if ok, err := b.TryRLock(); ok || err != nil {
		t.Errorf("TryRLock through another handle while locked = %v, %v; want false, nil", ok, err)
	}
	a.Unlock()
	a.RLock()
	if ok, err := b.TryRLock(); !ok || err != nil {
		t.Errorf("TryRLock while read-locked = %v, %v; want true, nil", ok, err)
	} else {
		b.RUnlock()
	}
	if ok, err := b.TryLock(); ok || err != nil {
		t.Errorf("TryLock while read-locked = %v, %v; want false, nil", ok, err)
	}
	a.RUnlock()
}

// A waiting writer makes new readers queue (FIFO, no writer starvation),
// and the readers behind it go in when it is done.
func TestWriterNotStarvedInProcess(t *testing.T) {
	m := mustOpen(t, lockPath(t))
	m.RLock()
	order := make(chan string, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.Lock(); order <- "writer"; m.Unlock() }()
	eventually(t, "the writer queues", func() bool { return m.e.queued() == 1 })
	if ok, err := m.TryRLock(); ok || err != nil {
		t.Fatalf("TryRLock with a writer waiting = %v, %v; want false, nil", ok, err)
	}
	go func() { defer wg.Done(); m.RLock(); order <- "reader"; m.RUnlock() }()
	eventually(t, "the reader queues behind the writer", func() bool { return m.e.queued() == 2 })
	m.RUnlock()
	wg.Wait()
	if first, second := <-order, <-order; first != "writer" || second != "reader" {
		t.Fatalf("order %s, %s; want writer, reader", first, second)
	}
}

// A handle follows its entry's reader fast path once two of its readers
// overlap, and from then on mirrors it in its state word, which is all a
// reader joining the handle's admission looks at: through a file's life
// (free, read, a writer queued, written), for handles that start following
// while the fast path is open or closed, and not once closed. A handle that
// does not follow keeps its bit set.
func TestHandlesFollowFastPath(t *testing.T) {
	p := lockPath(t)
	a, b, c, lone := mustOpen(t, p), mustOpen(t, p), mustOpen(t, p), mustOpen(t, p)
	e := a.e
	open := []*RWMutex{a, b, c, lone}
	expect := func(step string, fast bool, followers ...*RWMutex) {
		t.Helper()
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.fastOpen != fast {
			t.Fatalf("%s: fast path open = %v; want %v", step, e.fastOpen, fast)
		}
		linked := map[*follower]bool{}
		for f := e.followers; f != nil; f = f.next {
			linked[f] = true
			if f.next != nil && f.next.prev != f {
				t.Fatalf("%s: followers badly linked", step)
			}
		}
		if len(linked) != len(followers) || int(e.nfollowers.Load()) != len(followers) {
			t.Fatalf("%s: %d followers (counted %d); want %d", step, len(linked), e.nfollowers.Load(), len(followers))
		}
		for i, h := range open {
			follows := false
			for _, f := range followers {
				follows = follows || f == h
			}
			if linked[&h.follow] != follows || h.follow.linked.Load() != follows {
				t.Fatalf("%s: handle %d follows = %v; want %v", step, i, linked[&h.follow], follows)
			}
			if closed := h.state.Load()&fastClosedBit != 0; closed != (!fast || !follows) {
				t.Fatalf("%s: handle %d (following %v) state %#x; its fast-path bit says closed = %v, the entry's fast path open = %v", step, i, follows, h.state.Load(), closed, fast)
			}
		}
	}
	readAlone := func() { lone.RLock(); lone.RUnlock() } // never overlaps: never follows
	readAlone()
	expect("free", false)
	a.RLock()
	expect("read", true)
	a.RLock() // overlaps the first: asks to follow, while the fast path is open
	expect("a's readers overlap", true, a)
	c.RLock()
	readAlone()
	expect("c reads alone", true, a)
	done := make(chan struct{})
	go func() { defer close(done); b.Lock() }()
	eventually(t, "the writer queues", func() bool { return e.queued() == 1 })
	expect("writer queued", false, a)
	if ok, err := c.TryRLock(); ok || err != nil {
		t.Fatalf("TryRLock of the admitted handle with a writer queued = %v, %v; want false, nil", ok, err)
	}
	expect("c's readers overlap, the fast path closed", false, a, c)
	d := mustOpen(t, p)
	open = append(open, d)
	expect("opened while a writer queues", false, a, c)
	c.RUnlock()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	open = []*RWMutex{a, b, lone, d}
	expect("c closed", false, a)
	a.RUnlock()
	a.RUnlock()
	<-done
	expect("written", false, a)
	b.Unlock()
	d.RLock()
	expect("read again", true, a)
	if s := c.state.Load(); s != closedBit|fastClosedBit || c.follow.linked.Load() {
		t.Fatalf("closed handle's state %#x, linked %v; want %#x, unlinked: the entry no longer changes it", s, c.follow.linked.Load(), closedBit|fastClosedBit)
	}
	d.RUnlock()
	readAlone()
	expect("free again", false, a)
}

// An entry has at most maxFollowers followers. A handle whose readers
// overlap while every follower has readers is refused and its readers
// still lock, on the slow path; it follows once there is room (a follower
// closed) or, within askEvery more asks, in the place of a follower that
// has gone idle. A handle asking for the first time takes an idle
// follower's place at once. Readers of handles of their own never follow.
func TestFollowersBounded(t *testing.T) {
	p := lockPath(t)
	hs := make([]*RWMutex, maxFollowers+2)
	for i := range hs {
		hs[i] = mustOpen(t, p)
		hs[i].RLock()
		hs[i].RUnlock()
	}
	e := hs[0].e
	expect := func(step string, n int, linked, unlinked []*RWMutex) {
		t.Helper()
		e.mu.Lock()
		got, counted := countFollowers(e), e.nfollowers.Load()
		e.mu.Unlock()
		if got != n || counted != int32(n) {
			t.Fatalf("%s: %d followers (counted %d); want %d", step, got, counted, n)
		}
		for _, h := range linked {
			if !h.follow.linked.Load() {
				t.Fatalf("%s: a handle that should follow does not", step)
			}
		}
		for _, h := range unlinked {
			if h.follow.linked.Load() || h.state.Load()&fastClosedBit == 0 {
				t.Fatalf("%s: a handle that should not follow: linked %v, state %#x; want unlinked, its bit set", step, h.follow.linked.Load(), h.state.Load())
			}
		}
	}
	held := map[*RWMutex]int{}
	rlock := func(h *RWMutex) { h.RLock(); held[h]++ }
	release := func(h *RWMutex) {
		for ; held[h] > 0; held[h]-- {
			h.RUnlock()
		}
	}
	defer func() {
		for h := range held {
			release(h)
		}
	}()
	fs, x0, x1 := hs[:maxFollowers], hs[maxFollowers], hs[maxFollowers+1]
	expect("one reader per handle", 0, nil, hs)
	for _, h := range fs {
		rlock(h)
		rlock(h) // overlaps: follows, and keeps its readers
	}
	for _, h := range []*RWMutex{x0, x1} {
		rlock(h)
		rlock(h) // refused: every follower has readers
	}
	expect("full, every follower reading", maxFollowers, fs, []*RWMutex{x0, x1})

	release(fs[0]) // idle now
	for i := 0; i < askEvery && !x0.follow.linked.Load(); i++ {
		rlock(x0)
	}
	expect("one follower idle, x0 asked again", maxFollowers, append([]*RWMutex{x0}, fs[1:]...), []*RWMutex{fs[0], x1})

	release(fs[1])
	if err := fs[1].Close(); err != nil {
		t.Fatal(err)
	}
	rlock(x1) // asked before: room now
	expect("a follower closed, x1 asked again", maxFollowers, append([]*RWMutex{x0, x1}, fs[2:]...), []*RWMutex{fs[0]})

	for h := range held {
		release(h)
	}
	late := mustOpen(t, p)
	rlock(late)
	rlock(late) // first ask: takes an idle follower's place
	expect("every follower idle, a new handle asked", maxFollowers, []*RWMutex{late}, []*RWMutex{fs[0]})
}

// Handles opened, made to follow (two read locks at once) and closed while
// readers and writers of other handles of the same file keep opening and
// closing its fast path leave the entry's followers exactly the open
// handles that follow, each with its bit as the fast path says, and
// exclusion holds throughout. Run with -race: the links are guarded by the
// entry's mutex.
func TestFollowersChurn(t *testing.T) {
	p := lockPath(t)
	r, w := mustOpen(t, p), mustOpen(t, p)
	overlapReaders(r) // r follows
	var x exclusionCheck
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if g == 0 && i%4 == 0 {
					w.Lock()
					x.write()
					w.Unlock()
					continue
				}
				r.RLock()
				x.read()
				r.RUnlock()
			}
		}(g)
	}
	var churn sync.WaitGroup
	for g := 0; g < 2; g++ {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for i := 0; i < 500; i++ {
				h, err := Open(p)
				if err != nil {
					t.Error(err)
					return
				}
				for held := 0; ; held++ {
					// A second read lock overlaps the first: the handle
					// follows, while it can hold it.
					ok, err := h.TryRLock()
					if err != nil {
						t.Error(err)
					}
					if !ok || held == 2 {
						for ; held > 0; held-- {
							h.RUnlock()
						}
						if ok {
							h.RUnlock()
						}
						break
					}
					x.read()
				}
				if err := h.Close(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	churn.Wait()
	close(stop)
	wg.Wait()
	if v := x.violations.Load(); v != 0 {
		t.Fatalf("%d exclusion violations", v)
	}
	e := r.e
	// Both ways: free (the fast path closed), then read (open), so that a
	// bit left stale by the churn shows whichever way it went.
	for _, read := range []bool{false, true} {
		if read {
			r.RLock()
			defer r.RUnlock()
		}
		e.mu.Lock()
		n, open := countFollowers(e), e.fastOpen
		e.mu.Unlock()
		if n != 1 || !r.follow.linked.Load() || w.follow.linked.Load() {
			t.Fatalf("%d followers after the churn, reader's handle linked %v, writer's %v; want 1, r's alone (w's readers never overlap)", n, r.follow.linked.Load(), w.follow.linked.Load())
		}
		if open != read {
			t.Fatalf("read = %v: the entry's fast path open = %v", read, open)
		}
		if w.state.Load()&fastClosedBit == 0 {
			t.Fatalf("read = %v: the writer's handle, which does not follow, has its fast-path bit clear", read)
		}
		for i, h := range []*RWMutex{r} {
			if closed := h.state.Load()&fastClosedBit != 0; closed == open {
				t.Fatalf("read = %v: handle %d's fast-path bit says closed = %v, the entry's fast path open = %v", read, i, closed, open)
			}
		}
	}
}

// The handle's state word shares its cache line with nothing the fast
// paths read: the fields after the padding start a line of their own.
func TestStateWordHasItsLine(t *testing.T) {
	var m RWMutex
	if off := unsafe.Offsetof(m.e); off != 64 {
		t.Fatalf("the first field after the state word's line is at offset %d; want 64", off)
	}
}

func countFollowers(e *entry) int {
	n := 0
	for f := e.followers; f != nil; f = f.next {
		n++
	}
	return n
}

// Readers queued behind a writer that gives up are admitted at once.
func TestCancelledWriterAdmitsReadersBehind(t *testing.T) {
	m := mustOpen(t, lockPath(t))
	m.RLock()
	ctx, cancel := context.WithCancel(context.Background())
	werr := make(chan error)
	go func() { werr <- m.LockContext(ctx) }()
	eventually(t, "the writer queues", func() bool { return m.e.queued() == 1 })
	rdone := make(chan struct{})
	go func() { m.RLock(); close(rdone) }()
	eventually(t, "the reader queues", func() bool { return m.e.queued() == 2 })
	cancel()
	if err := <-werr; !errors.Is(err, context.Canceled) {
		t.Fatalf("LockContext = %v; want context.Canceled", err)
	}
	<-rdone
	m.RUnlock()
	m.RUnlock()
	if ok, _ := m.TryLock(); !ok {
		t.Fatal("lock not free after all readers left")
	}
	m.Unlock()
}

func TestContextAlreadyDone(t *testing.T) {
	m := mustOpen(t, lockPath(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, f := range []func(context.Context) error{m.LockContext, m.RLockContext} {
		err := f(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v; want context.Canceled", err)
		}
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != m.Path() {
			t.Errorf("error %v does not name the path", err)
		}
	}
	// Nothing was acquired: a write lock is free for another handle.
	other := mustOpen(t, m.Path())
	if ok, err := other.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock after cancelled calls = %v, %v", ok, err)
	}
	other.Unlock()
}

// Cancelling a wait on another goroutine returns promptly and leaves the
// gate as it was.
func TestCancelInProcessWait(t *testing.T) {
	m := mustOpen(t, lockPath(t))
	for _, tc := range []struct {
		name string
		hold func()
		wait func(context.Context) error
	}{
		{"writer behind writer", m.Lock, m.LockContext},
		{"reader behind writer", m.Lock, m.RLockContext},
		{"writer behind reader", m.RLock, m.LockContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.hold()
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error)
			go func() { errc <- tc.wait(ctx) }()
			eventually(t, "the waiter queues", func() bool { return m.e.queued() == 1 })
			start := time.Now()
			cancel()
			err := <-errc
			t.Logf("returned %v after cancel", time.Since(start))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v; want context.Canceled", err)
			}
			if m.e.queued() != 0 {
				t.Fatal("cancelled waiter left in the queue")
			}
			if m.writer.Load() {
				m.Unlock()
			} else {
				m.RUnlock()
			}
			if ok, _ := m.TryLock(); !ok {
				t.Fatal("lock not free after the holder left")
			}
			m.Unlock()
		})
	}
}

func TestDeadline(t *testing.T) {
	p := lockPath(t)
	a, b := mustOpen(t, p), mustOpen(t, p)
	a.Lock()
	defer a.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v; want context.DeadlineExceeded", err)
	}
}

func TestUnlockOfUnlockedPanics(t *testing.T) {
	p := lockPath(t)
	m, other := mustOpen(t, p), mustOpen(t, p)
	for _, tc := range []struct {
		name  string
		setup func()
		call  func()
		after func()
	}{
		{"Unlock", func() {}, m.Unlock, func() {}},
		{"RUnlock", func() {}, m.RUnlock, func() {}},
		{"RLocker Unlock", func() {}, m.RLocker().Unlock, func() {}},
		{"Unlock while read-locked", m.RLock, m.Unlock, m.RUnlock},
		{"RUnlock while write-locked", m.Lock, m.RUnlock, m.Unlock},
		{"Unlock of another handle's lock", other.Lock, m.Unlock, other.Unlock},
		{"second Unlock", func() { m.Lock(); m.Unlock() }, m.Unlock, func() {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			defer tc.after()
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("did not panic")
				}
				if s, _ := r.(string); !strings.Contains(s, "of unlocked RWMutex") && !strings.Contains(s, "locked for reading only") && !strings.Contains(s, "locked for writing") {
					t.Fatalf("panic %v; want a message saying it was unlocked", r)
				}
			}()
			tc.call()
		})
	}
	// The failed calls changed nothing.
	if ok, _ := m.TryLock(); !ok {
		t.Fatal("lock not free after the panics")
	}
	m.Unlock()
}

func TestAnyGoroutineMayUnlock(t *testing.T) {
	m := mustOpen(t, lockPath(t))
	m.Lock()
	done := make(chan struct{})
	go func() { m.Unlock(); close(done) }()
	<-done
	m.RLock()
	done2 := make(chan struct{})
	go func() { m.RUnlock(); close(done2) }()
	<-done2
	if ok, _ := m.TryLock(); !ok {
		t.Fatal("not free")
	}
	m.Unlock()
}

func TestRLocker(t *testing.T) {
	m := mustOpen(t, lockPath(t))
	l := m.RLocker()
	l.Lock()
	l.Lock()
	if ok, _ := m.TryLock(); ok {
		t.Fatal("TryLock succeeded under RLocker().Lock()")
	}
	l.Unlock()
	l.Unlock()
	if ok, _ := m.TryLock(); !ok {
		t.Fatal("not free after RLocker().Unlock()")
	}
	m.Unlock()
}

func TestClose(t *testing.T) {
	p := lockPath(t)
	m, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	other := mustOpen(t, p)

	for _, hold := range []struct {
		name          string
		lock, release func()
	}{{"write", m.Lock, m.Unlock}, {"read", m.RLock, m.RUnlock}} {
		hold.lock()
		if err := m.Close(); !errors.Is(err, ErrLocked) {
			t.Fatalf("Close while %s-locked = %v; want ErrLocked", hold.name, err)
		}
		// Close released nothing.
		if ok, _ := other.TryLock(); ok {
			t.Fatalf("Close while %s-locked released the lock", hold.name)
		}
		hold.release()
	}

	// Close while another goroutine waits to acquire through m.
	other.Lock()
	got := make(chan struct{})
	go func() { m.Lock(); close(got) }()
	eventually(t, "the waiter queues", func() bool { return m.e.queued() == 1 })
	if err := m.Close(); !errors.Is(err, ErrLocked) {
		t.Fatalf("Close while acquiring = %v; want ErrLocked", err)
	}
	other.Unlock()
	<-got
	m.Unlock()

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.File() != nil {
		t.Error("File() after Close is not nil")
	}
	for name, err := range map[string]error{
		"Close":        m.Close(),
		"LockContext":  m.LockContext(context.Background()),
		"RLockContext": m.RLockContext(context.Background()),
		"TryLock":      second(m.TryLock()),
		"TryRLock":     second(m.TryRLock()),
	} {
		var pe *fs.PathError
		if !errors.Is(err, os.ErrClosed) || !errors.As(err, &pe) || pe.Path != p {
			t.Errorf("%s after Close = %v; want a PathError for %s wrapping os.ErrClosed", name, err, p)
		}
	}
	for name, f := range map[string]func(){"Lock": m.Lock, "RLock": m.RLock} {
		func() {
			defer func() {
				if err, _ := recover().(error); !errors.Is(err, os.ErrClosed) {
					t.Errorf("%s after Close panicked with %v; want os.ErrClosed", name, err)
				}
			}()
			f()
		}()
	}
	// The other handle still works; the entry stays while it is open.
	other.Lock()
	other.Unlock()
}

// Closing the last handle drops the registry entry and closes the file.
func TestCloseDropsEntry(t *testing.T) {
	p := lockPath(t)
	a, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	id := a.e.id
	f := a.e.file
	a.Close()
	if registered(id) == nil {
		t.Fatal("entry dropped while a handle is open")
	}
	b.Close()
	if registered(id) != nil {
		t.Fatal("entry kept after the last handle closed")
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("file not closed: Close again = %v", err)
	}
}

// Misuse panics with messages that say what is wrong: the zero RWMutex,
// and Unlock of a handle that holds only read locks.
func TestMisuseMessages(t *testing.T) {
	panics := func(what string, f func()) (msg string) {
		defer func() {
			r := recover()
			if r == nil {
				t.Errorf("%s did not panic", what)
			}
			msg = fmt.Sprint(r)
		}()
		f()
		return ""
	}
	var zero RWMutex
	for name, f := range map[string]func(){
		"Lock":    zero.Lock,
		"RLock":   zero.RLock,
		"Close":   func() { zero.Close() },
		"File":    func() { zero.File() },
		"Unlock":  zero.Unlock,
		"RUnlock": zero.RUnlock,
		"Path":    func() { zero.Path() },
		"RLocker": func() { zero.RLocker() },
	} {
		if msg := panics("zero "+name, f); !strings.Contains(msg, "without Open") {
			t.Errorf("zero RWMutex %s panicked with %q; want it to say it needs Open", name, msg)
		}
	}
	m := mustOpen(t, lockPath(t))
	m.RLock()
	if msg := panics("Unlock of a read-locked handle", m.Unlock); !strings.Contains(msg, "RUnlock") {
		t.Errorf("Unlock while holding a read lock panicked with %q; want a hint at RUnlock", msg)
	}
	m.RUnlock()
	m.Lock()
	if msg := panics("RUnlock of a write-locked handle", m.RUnlock); !strings.Contains(msg, "(Unlock") {
		t.Errorf("RUnlock while holding the write lock panicked with %q; want a hint at Unlock", msg)
	}
	m.Unlock()
	m.RLock()
	m.RUnlock()
}
