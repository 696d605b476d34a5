package flock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// holdersOrSkip returns m's holders, skipping the test, with the reason,
// where the platform cannot tell them.
func holdersOrSkip(t *testing.T, m *RWMutex) []Holder {
	t.Helper()
	hs, err := m.Holders()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("Holders is not supported on %s, so lock errors name nobody: %v", runtime.GOOS, err)
	}
	if err != nil {
		t.Fatalf("Holders: %v", err)
	}
	return hs
}

// checkLockErr checks that err is the error of a lock call on path that
// gave up because its context ended with want: an *fs.PathError naming the
// path once, for which errors.Is(err, want) holds.
func checkLockErr(t *testing.T, err error, path string, want error) {
	t.Helper()
	var pe *fs.PathError
	if !errors.Is(err, want) || !errors.As(err, &pe) || pe.Path != path || pe.Op != "lock" {
		t.Fatalf("error %v (%T); want an *fs.PathError for lock %s matching %v", err, err, path, want)
	}
	if n := strings.Count(err.Error(), path); n != 1 {
		t.Errorf("error %q names the path %d times; want once", err, n)
	}
}

// The error of a LockContext or RLockContext that timed out, or was
// cancelled, while a child process held the lock names the child: its pid
// (where the kernel reports one) and mode; errors.Is still matches the
// context's error, and the path is named once.
func TestHoldersInLockError(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	c.Must(t, "lock")
	hs := holdersOrSkip(t, m)
	pid := c.Cmd.Process.Pid
	if len(hs) != 1 || runtime.GOOS == "linux" && hs[0].PID != pid {
		t.Fatalf("Holders with the child writer = %+v; want the child, pid %d", hs, pid)
	}
	want := "(held by "
	if hs[0].PID > 0 {
		want += fmt.Sprintf("pid %d", pid)
	}
	if hs[0].Command != "" {
		want += fmt.Sprintf(" %q", hs[0].Command)
	}
	want += ", exclusive)"

	before := holderLookups.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := m.LockContext(ctx)
	checkLockErr(t, err, p, context.DeadlineExceeded)
	if !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), "context deadline exceeded "+want) {
		t.Errorf("LockContext error %q; want it to end %q", err, "context deadline exceeded "+want)
	}
	if n := holderLookups.Load() - before; n != 1 {
		t.Errorf("a timed-out LockContext looked holders up %d times; want 1", n)
	}

	// A reader that is cancelled, rather than timed out.
	ctx, cancel = context.WithCancel(context.Background())
	stop := context.AfterFunc(ctxAfter(t, 50*time.Millisecond), cancel)
	defer stop()
	err = m.RLockContext(ctx)
	checkLockErr(t, err, p, context.Canceled)
	if !strings.HasSuffix(err.Error(), "context canceled "+want) {
		t.Errorf("RLockContext error %q; want it to end %q", err, "context canceled "+want)
	}

	// The child reading: a writer's error says shared.
	c.Must(t, "unlock")
	c.Must(t, "rlock")
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = m.LockContext(ctx)
	checkLockErr(t, err, p, context.DeadlineExceeded)
	if w := strings.Replace(want, "exclusive", "shared", 1); !strings.HasSuffix(err.Error(), w) {
		t.Errorf("LockContext error with a child reader %q; want it to end %q", err, w)
	}
	c.Must(t, "runlock")
}

// ctxAfter returns a context that ends d from now, cancelled at the end of
// the test.
func ctxAfter(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A goroutine of this process holding the lock through another handle is
// named too, as this process.
func TestHoldersInLockErrorThisProcess(t *testing.T) {
	p := lockPath(t)
	m, other := mustOpen(t, p), mustOpen(t, p)
	other.Lock()
	defer other.Unlock()
	holdersOrSkip(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := m.LockContext(ctx)
	checkLockErr(t, err, p, context.DeadlineExceeded)
	if want := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "(this process), exclusive)") {
		t.Errorf("LockContext error %q; want it to name this process (%s), exclusive", err, want)
	}
}

// No lookup is made on the paths that succeed, contended or not, nor by
// TryLock finding the lock held; an error that is not the context's, and a
// lock that nobody holds, leave the error as it is.
func TestHoldersNotOnFastPaths(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	before := holderLookups.Load()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	for i := 0; i < 100; i++ {
		m.Lock()
		m.Unlock()
		m.RLock()
		m.RLock()
		m.RUnlock()
		m.RUnlock()
		if err := m.LockContext(ctx); err != nil {
			t.Fatal(err)
		}
		m.Unlock()
		if err := m.RLockContext(ctx); err != nil {
			t.Fatal(err)
		}
		m.RUnlock()
		if ok, err := m.TryLock(); !ok || err != nil {
			t.Fatalf("TryLock of a free lock: %v, %v", ok, err)
		}
		m.Unlock()
	}
	// Contended: TryLock gives up, LockContext waits and gets it.
	c.Must(t, "lock")
	if ok, err := m.TryLock(); ok || err != nil {
		t.Fatalf("TryLock of a held lock: %v, %v", ok, err)
	}
	if ok, err := m.TryRLock(); ok || err != nil {
		t.Fatalf("TryRLock of a held lock: %v, %v", ok, err)
	}
	got := make(chan error, 1)
	go func() { got <- m.LockContext(ctx) }()
	c.Must(t, "unlock")
	if err := <-got; err != nil {
		t.Fatalf("contended LockContext: %v", err)
	}
	m.Unlock()
	if n := holderLookups.Load() - before; n != 0 {
		t.Fatalf("%d holder lookups on paths that did not fail; want none", n)
	}

	// A context already done, on a free lock: nobody to name.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	err := m.LockContext(done)
	checkLockErr(t, err, p, context.Canceled)
	if strings.Contains(err.Error(), "held by") {
		t.Errorf("LockContext with a done context on a free lock: %q names a holder", err)
	}
	// Only the context's own error is annotated.
	other := errors.New("other")
	if got := m.withHolders(done, other); got != other {
		t.Errorf("withHolders(done ctx, %v) = %v; want it unchanged", other, got)
	}
	if got := m.withHolders(nil, context.Canceled); got != context.Canceled {
		t.Errorf("withHolders(nil ctx, Canceled) = %v; want it unchanged", got)
	}
}

// The holders' part of a lock error, for each kind of pid and more holders
// than are named.
func TestHeldErrorText(t *testing.T) {
	self := os.Getpid()
	tests := []struct {
		hs   []Holder
		want string
	}{
		{[]Holder{{PID: 4242, Exclusive: true, Command: "backup.sh"}},
			`context deadline exceeded (held by pid 4242 "backup.sh", exclusive)`},
		{[]Holder{{PID: 7}}, `context deadline exceeded (held by pid 7, shared)`},
		{[]Holder{{PID: 0, Exclusive: true}}, `context deadline exceeded (held by a process of unknown pid, exclusive)`},
		{[]Holder{{PID: -1, Exclusive: true, Kind: "FLOCK"}}, `context deadline exceeded (held by a process of unknown pid, exclusive)`},
		{[]Holder{{PID: self, Command: "t"}}, fmt.Sprintf(`context deadline exceeded (held by pid %d "t" (this process), shared)`, self)},
		{[]Holder{{PID: 1}, {PID: 2, Command: "a\nb"}, {PID: 3}, {PID: 4}, {PID: 5}},
			`context deadline exceeded (held by pid 1, shared; pid 2 "a\nb", shared; pid 3, shared; and 2 more)`},
	}
	for _, tt := range tests {
		found := make(chan struct{})
		close(found)
		e := &heldError{err: context.DeadlineExceeded, lookup: &holdersLookup{found: found, holders: tt.hs}}
		if got := e.Error(); got != tt.want {
			t.Errorf("heldError%+v = %q; want %q", tt.hs, got, tt.want)
		}
		if !errors.Is(e, context.DeadlineExceeded) {
			t.Errorf("heldError%+v does not match context.DeadlineExceeded", tt.hs)
		}
	}
}

// A lock call that gives up returns at once, without waiting for the
// lookup of the holders its error names (on Linux a read of /proc/locks
// can take the kernel 10 ms and more); the text waits for it. Calls that
// give up while a lookup runs share it: one lookup, however many give up.
func TestLockErrorDoesNotWaitForHolders(t *testing.T) {
	release := make(chan struct{})
	defer func(orig func(*entry, int) ([]Holder, error)) { lookupHolders = orig }(lookupHolders)
	lookupHolders = func(*entry, int) ([]Holder, error) {
		<-release
		return []Holder{{PID: 42, Command: "held", Exclusive: true}}, nil
	}
	p := lockPath(t)
	m, other := mustOpen(t, p), mustOpen(t, p)
	other.Lock()
	defer other.Unlock()

	before := holderLookups.Load()
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			errs <- m.LockContext(ctx)
		}()
	}
	var got []error
	for len(got) < 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, context.DeadlineExceeded) { // the text would wait
				close(release)
				t.Fatalf("LockContext = %v; want it to match context.DeadlineExceeded", err)
			}
			got = append(got, err)
		case <-time.After(childTimeout):
			close(release)
			t.Fatalf("LockContext did not return while the holder lookup ran (%d of 2 returned)", len(got))
		}
	}
	if n := holderLookups.Load() - before; n != 1 {
		t.Errorf("2 calls that gave up while a lookup ran made %d lookups; want 1", n)
	}
	close(release)
	for _, err := range got {
		checkLockErr(t, err, p, context.DeadlineExceeded)
		if want := `(held by pid 42 "held", exclusive)`; !strings.HasSuffix(err.Error(), want) {
			t.Errorf("error %q; want it to end %q", err, want)
		}
	}
}
