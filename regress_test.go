//go:build unix

package flock

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// A RemoveOnUnlock whose removal fails leaves the file at the path, and the
// process must keep treating it as the one file it is: a later Open of the
// path gets the same entry (on fcntl a second descriptor and entry would
// mean two write holders in one process), and the error names the path
// once.
func TestRemoveOnUnlockRemovalFails(t *testing.T) {
	p := lockPath(t)
	denied := &fs.PathError{Op: "remove", Path: p, Err: fs.ErrPermission}
	removeFile = func(string) error { return denied }
	defer func() { removeFile = os.Remove }()

	a := mustOpen(t, p, RemoveOnUnlock())
	a.Lock()
	held := a.rm.writer
	a.Unlock()
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the file is gone though its removal failed: %v", err)
	}
	b := mustOpen(t, p)
	if b.e != held {
		t.Fatal("Open after a failed removal got a second entry for the same file")
	}
	a.Lock()
	if ok, err := b.TryLock(); ok || err != nil {
		t.Fatalf("TryLock through another handle while a holds = %v, %v", ok, err)
	}
	a.Unlock()
	b.Close()
	err := a.Close()
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Close = %v; want the removal's error", err)
	}
	if n := strings.Count(err.Error(), p); n != 1 {
		t.Fatalf("Close's error names the path %d times: %v", n, err)
	}
}

// RemoveOnUnlock refuses a symbolic link (removing it would remove the
// link and keep the lock file) and refuses NoCreate (the removed file could
// not be locked again); links in the directories above are fine.
func TestRemoveOnUnlockRefuses(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, nil, 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if m, err := Open(link, RemoveOnUnlock()); err == nil {
		m.Close()
		t.Fatal("Open of a symbolic link with RemoveOnUnlock succeeded")
	} else if !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Open of a symbolic link with RemoveOnUnlock: %v", err)
	}
	if m, err := Open(target, RemoveOnUnlock(), NoCreate()); err == nil {
		m.Close()
		t.Fatal("Open with RemoveOnUnlock and NoCreate succeeded")
	} else if !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("Open with RemoveOnUnlock and NoCreate: %v; want fs.ErrInvalid", err)
	}
	linkDir := filepath.Join(dir, "linkdir")
	if err := os.Symlink(dir, linkDir); err != nil {
		t.Fatal(err)
	}
	m := mustOpen(t, filepath.Join(linkDir, "target"), RemoveOnUnlock())
	m.Lock()
	m.Unlock()
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock file reached through a linked directory not removed: %v", err)
	}
}

// The writer-priority gate is created with the lock file's permission bits
// and owner, so that whoever may not open the lock file cannot block its
// users through the gate.
func TestGatePermissions(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p, WithPerm(0o600))
	m.Close()
	if os.Geteuid() == 0 {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	m = mustOpen(t, p, WriterPriority())
	defer m.Close()
	fi, err := os.Stat(p + ".gate")
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("gate mode %v; want the lock file's 0600", got)
	}
	if os.Geteuid() == 0 {
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
			t.Errorf("gate owner %d:%d; want the lock file's 65534:65534", st.Uid, st.Gid)
		}
	} else {
		t.Log("not root: the owner copy is not tested")
	}
}

// Handles of one process on successive files at one path (RemoveOnUnlock)
// share the gate file: closing the handle of the old file must not close
// the gate descriptor through which the current holder holds the gate (on
// fcntl platforms that drops the process's gate lock).
func TestGateSharedAcrossEntries(t *testing.T) {
	p := lockPath(t)
	opts := []Option{WriterPriority(), RemoveOnUnlock()}
	a, b := mustOpen(t, p, opts...), mustOpen(t, p, opts...)
	b.Lock()
	b.Unlock() // removes the file; a and b still refer to its entry
	// Another process re-creates the file and holds it, so that a waits
	// for it with the gate (an uncontended writer takes no gate).
	holder := startChild(t, p)
	holder.must(t, "lock")
	got := make(chan error, 1)
	go func() { got <- a.LockContext(context.Background()) }()
	eventually(t, "a waits for the new file with the gate", func() bool {
		a.rm.mu.Lock()
		cur := a.rm.cur
		a.rm.mu.Unlock()
		cur.mu.Lock()
		defer cur.mu.Unlock()
		c := cur.inflight[exclusive]
		return cur != b.rm.cur && c != nil && c.gateHeld != unlocked
	})
	holder.must(t, "unlock")
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, p+".gate")
	if got := c.do("trylock"); got != "held" {
		t.Fatalf("another process's trylock of the gate while a holds the lock = %s; want held", got)
	}
	a.Unlock()
	if got := c.do("trylock"); got != "ok" {
		t.Fatalf("another process's trylock of the gate after Unlock = %s; want ok", got)
	}
	c.must(t, "unlock")
}

// A gate that can only be opened for reading (here: immutable) still lets
// readers through on every backend; a writer's failure names the gate.
func TestReadOnlyGate(t *testing.T) {
	p := lockPath(t)
	g := p + ".gate"
	os.WriteFile(g, nil, 0o644)
	if out, err := exec.Command("chattr", "+i", g).CombinedOutput(); err != nil {
		t.Skipf("cannot make the gate immutable here (needs root and a file system with attributes): %v %s", err, out)
	}
	defer exec.Command("chattr", "-i", g).Run()
	m := mustOpen(t, p, WriterPriority())
	defer m.Close()
	if ok, err := m.TryRLock(); !ok || err != nil {
		t.Fatalf("TryRLock with a read-only gate = %v, %v", ok, err)
	}
	m.RUnlock()
	// A writer that finds the lock free needs no gate.
	if ok, err := m.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock with a read-only gate = %v, %v", ok, err)
	}
	m.Unlock()
	// One that must wait does: with a read-only gate fcntl cannot take it.
	c := startChild(t, p)
	c.must(t, "rlock")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := m.LockContext(ctx)
	switch {
	case backendName != "fcntl":
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("LockContext with a read-only gate while another process reads = %v; want a timeout", err)
		}
	case !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), g):
		t.Fatalf("LockContext with a read-only gate while another process reads = %v; want a permission error naming the gate", err)
	}
	c.must(t, "runlock")
	waitIdle(t, m.e)
}

// A writer wait that its caller abandoned lets go of the gate at once:
// otherwise the process keeps every WriterPriority user of every process
// out for as long as the wait stays in the kernel, after every context in
// the process has ended.
func TestAbandonedWaitReleasesGate(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p, WriterPriority())
	c := startChild(t, p) // without the option: not ordered by the gate
	c.must(t, "lock")
	for _, lock := range []func(context.Context) error{m.LockContext, m.RLockContext, m.LockContext} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := lock(ctx)
		cancel()
		if err == nil {
			t.Fatal("locked while another process holds the lock")
		}
	}
	g := startChild(t, p+".gate")
	if got := g.do("trylock"); got != "ok" {
		t.Fatalf("another process's trylock of the gate after our contexts ended = %s; want ok", got)
	}
	g.must(t, "unlock")
	c.must(t, "unlock")
	waitIdle(t, m.e)
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
	for _, h := range handles {
		if s := h.state.Load(); s != 0 {
			t.Fatalf("handle state %#x after every reader left; want 0", s)
		}
	}
	e := m.e
	e.mu.Lock()
	admitted, held := e.admittedReaders(), e.held
	e.mu.Unlock()
	if admitted != 0 || held != unlocked {
		t.Fatalf("entry: %d admitted readers, OS lock %d after every reader left", admitted, held)
	}
	c := startChild(t, p)
	if got := c.do("trylock"); got != "ok" {
		t.Fatalf("another process's trylock after every reader left = %s", got)
	}
	c.must(t, "unlock")
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
		if err := c.send("lock"); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() { got <- c.recv() }()
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
		c.must(t, "unlock")
	}
	t.Logf("the process's writers made at most %d acquisitions while the other process waited", worst)
	if worst > bound {
		t.Fatalf("the other process waited while the process's writers made %d acquisitions (bound %d)", worst, bound)
	}
}

// A gate file that is the lock file itself (a hard link), or a lock file
// with a gate of its own, would make a lock wait for itself: Open refuses
// it, and so a process cannot be deadlocked by a planted link.
func TestGateThatIsALockFileRefused(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "self")
	os.WriteFile(p, nil, 0o644)
	if err := os.Link(p, p+".gate"); err != nil {
		t.Fatal(err)
	}
	if m, err := Open(p, WriterPriority()); err == nil {
		m.Close()
		t.Fatal("Open with a gate that is the lock file itself succeeded")
	} else if !strings.Contains(err.Error(), p+".gate") {
		t.Fatalf("the error does not name the gate: %v", err)
	}

	// a's gate is b, b's gate is a.
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, nil, 0o644)
	os.WriteFile(b, nil, 0o644)
	if err := os.Link(b, a+".gate"); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(a, b+".gate"); err != nil {
		t.Fatal(err)
	}
	ma := mustOpen(t, a, WriterPriority())
	if m, err := Open(b, WriterPriority()); err == nil {
		m.Close()
		t.Fatal("Open of a lock file that is another's gate, with a gate of its own, succeeded")
	}
	done := make(chan error, 1)
	go func() {
		ok, err := ma.TryLock()
		if ok {
			ma.Unlock()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("TryLock did not return: the lock waits for itself")
	}
}
