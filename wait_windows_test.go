package flock

// Windows tests of blocking waits. A wait is an overlapped LockFileEx
// request on Windows; Wine answers such a request ERROR_IO_PENDING and
// never completes it (nor can CancelIoEx find it), so there the backend
// falls back to polling. The behaviour tests run on both; the tests of the
// overlapped request itself, and of mandatory locking, which Wine does not
// enforce, skip under Wine and say why, as the fallback's test skips on
// Windows.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// winCarrier returns the overlapped handle that carries e's OS lock, if a
// wait took it.
func winCarrier(e *entry) windows.Handle {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fd.carrier
}

// winBackend opens path as the registry would, for tests that drive the
// backend's functions directly.
func winBackend(t *testing.T, path string) fd {
	t.Helper()
	f, _, err := openFile(path, &config{perm: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return sysFD(f, new(fdMem))
}

// TestWindowsBlockingWait checks that Lock and RLock wait for another
// process to release the lock and get it once it does.
func TestWindowsBlockingWait(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	m := winOpen(t, path)
	c := startChild(t, path)

	for _, mode := range []lockMode{exclusive, shared} {
		mode := mode
		c.Must(t, "lock")
		got := make(chan struct{})
		go func() {
			if mode == exclusive {
				m.Lock()
			} else {
				m.RLock()
			}
			close(got)
		}()
		select {
		case <-got:
			t.Fatalf("%s lock granted while the child holds the write lock", winModeName(mode))
		default:
		}
		c.Must(t, "unlock")
		select {
		case <-got:
		case <-time.After(childTimeout):
			t.Fatalf("%s lock not granted after the child unlocked", winModeName(mode))
		}
		if got := c.Do("trylock"); got != "held" {
			t.Fatalf("child trylock while we hold the %s lock: %s", winModeName(mode), got)
		}
		if mode == exclusive {
			m.Unlock()
		} else {
			m.RUnlock()
		}
		waitIdle(t, m.e)
		if winCarrier(m.e) != 0 {
			t.Fatal("the wait's overlapped handle outlived the lock")
		}
	}
	winRawFree(t, path, "after the waits")
}

// TestWindowsLockContextCancel checks that a wait is given up when its
// context ends, and leaves no lock behind.
func TestWindowsLockContextCancel(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	m := winOpen(t, path)
	c := startChild(t, path)
	c.Must(t, "lock")

	for _, mode := range []lockMode{exclusive, shared} {
		lock := m.LockContext
		if mode == shared {
			lock = m.RLockContext
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		err := lock(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s LockContext past its deadline: %v", winModeName(mode), err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s LockContext returned %v after a 50ms deadline", winModeName(mode), d)
		}

		ctx, cancel = context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() { res <- lock(ctx) }()
		cancel()
		select {
		case err := <-res:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s LockContext cancelled: %v", winModeName(mode), err)
			}
		case <-time.After(childTimeout):
			t.Fatalf("%s LockContext did not return when cancelled", winModeName(mode))
		}

		waitIdle(t, m.e)
		m.e.mu.Lock()
		held, carrier := m.e.held, m.e.fd.carrier
		m.e.mu.Unlock()
		if held != unlocked || carrier != 0 {
			t.Fatalf("after cancelled waits: OS lock %s, overlapped handle %#x", winModeName(held), carrier)
		}
	}
	c.Must(t, "unlock")
	// Nothing was left waiting to take the lock now.
	winRawFree(t, path, "after the cancelled waits")
}

// TestWindowsWaitAbandon drives the backend's wait directly: closing
// abandon gives the wait up, and a lock granted while it was being
// abandoned is reported and kept rather than lost or leaked.
func TestWindowsWaitAbandon(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	h := winBackend(t, path)
	c := startChild(t, path)

	wait := func(mode lockMode, abandon chan struct{}) chan error {
		res := make(chan error, 1)
		go func() { res <- waitFile(h, mode, abandon) }()
		return res
	}
	result := func(res chan error) error {
		select {
		case err := <-res:
			return err
		case <-time.After(childTimeout):
			t.Fatal("waitFile did not return")
			return nil
		}
	}

	c.Must(t, "lock")
	for _, mode := range []lockMode{exclusive, shared} {
		abandon := make(chan struct{})
		res := wait(mode, abandon)
		close(abandon)
		if err := result(res); err != errAbandoned {
			t.Fatalf("%s wait abandoned while the child holds the lock: %v, want errAbandoned", winModeName(mode), err)
		}
		if h.carrier != 0 {
			t.Fatal("an abandoned wait kept its overlapped handle")
		}
	}
	c.Must(t, "unlock")
	winRawFree(t, path, "after abandoned waits")

	// The child's release and the abandonment race: either outcome is
	// right as long as it is reported truthfully.
	var granted, abandoned int
	for i := 0; i < 5; i++ {
		c.Must(t, "lock")
		abandon := make(chan struct{})
		res := wait(exclusive, abandon)
		c.Must(t, "unlock")
		close(abandon)
		switch err := result(res); err {
		case nil:
			granted++
			winRawHeld(t, path, "wait granted while abandoned")
			if err := unlockFile(h); err != nil {
				t.Fatal(err)
			}
		case errAbandoned:
			abandoned++
			if h.carrier != 0 {
				t.Fatal("an abandoned wait kept its overlapped handle")
			}
		default:
			t.Fatal(err)
		}
		winRawFree(t, path, "after a wait raced with its abandonment")
	}
	t.Logf("release raced with abandonment: granted %d, abandoned %d", granted, abandoned)
}

// TestWindowsOverlappedWait checks the wait itself on Windows: a pending
// overlapped request that CancelIoEx cancels, and a granted one whose
// overlapped handle carries the lock.
func TestWindowsOverlappedWait(t *testing.T) {
	skipUnderWine(t, "Wine never completes a waiting overlapped lock request and CancelIoEx cannot find it (waits there poll, see TestWindowsUntrackedWaitFallback)")
	path := filepath.Join(winTempDir(t), "lock")
	h := winBackend(t, path)
	c := startChild(t, path)
	c.Must(t, "lock")

	carrier, err := reopenOverlapped(h.file)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(carrier)
	if winSynchronous(t, carrier) {
		t.Fatal("reopenOverlapped returned a synchronous handle")
	}
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(ev)
	abandoned := make(chan struct{})
	close(abandoned)
	// Held by the child: the request pends, and abandon cancels it.
	if err := lockOverlapped(carrier, ev, exclusive, abandoned); err != errAbandoned {
		t.Fatalf("pending request, abandoned: %v, want errAbandoned (cancelled by CancelIoEx)", err)
	}

	res := make(chan error, 1)
	go func() { res <- waitFile(h, exclusive, nil) }()
	c.Must(t, "unlock")
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(childTimeout):
		t.Fatal("the wait was not granted after the child unlocked")
	}
	if h.carrier == 0 || winSynchronous(t, h.carrier) {
		t.Fatalf("the granted wait's lock is not on an overlapped handle (%#x)", h.carrier)
	}
	winRawHeld(t, path, "granted to the overlapped wait")
	if got := c.Do("trylock"); got != "held" {
		t.Fatalf("child trylock while our wait holds the lock: %s", got)
	}
	if err := unlockFile(h); err != nil {
		t.Fatal(err)
	}
	c.Must(t, "trylock")
	c.Must(t, "unlock")
}

// TestWindowsUntrackedWaitFallback checks that where overlapped lock
// requests are never completed (Wine), a wait is recognised as such and
// polls instead of hanging or believing a made-up result.
func TestWindowsUntrackedWaitFallback(t *testing.T) {
	if !underWine() {
		t.Skip("Windows completes overlapped lock requests; the polling fallback serves only systems that do not (Wine), and TestWindowsOverlappedWait covers Windows")
	}
	path := filepath.Join(winTempDir(t), "lock")
	h := winBackend(t, path)
	c := startChild(t, path)
	c.Must(t, "lock")

	carrier, err := reopenOverlapped(h.file)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		windows.CloseHandle(carrier)
		t.Fatal(err)
	}
	defer windows.CloseHandle(ev)
	if err := lockOverlapped(carrier, ev, exclusive, nil); err != errUntracked {
		windows.CloseHandle(carrier)
		t.Fatalf("request that must wait: %v, want errUntracked", err)
	}
	// lockOverlapped closed carrier (before its request's OVERLAPPED was
	// let go), so it is not closed here.

	// Still held by the child, so the request is untracked, and abandon
	// ends the polling that follows (it would hang without the fallback).
	abandon := make(chan struct{})
	res := make(chan error, 1)
	go func() { res <- waitFile(h, exclusive, abandon) }()
	close(abandon)
	select {
	case err := <-res:
		if err != errAbandoned {
			t.Fatalf("abandoned wait: %v, want errAbandoned", err)
		}
	case <-time.After(childTimeout):
		t.Fatal("the abandoned wait did not return")
	}

	go func() { res <- waitFile(h, exclusive, nil) }()
	c.Must(t, "unlock")
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(childTimeout):
		t.Fatal("the wait was not granted after the child unlocked")
	}
	// Granted to the polling fallback, or to the overlapped request if
	// the child had unlocked before the request was made.
	t.Logf("granted on the overlapped handle: %v", h.carrier != 0)
	winRawHeld(t, path, "granted to the wait")
	if err := unlockFile(h); err != nil {
		t.Fatal(err)
	}
	winRawFree(t, path, "after unlock")
}

// TestWindowsMandatoryLocks shows why the lock is on a byte past the data:
// on Windows a locked range cannot be read through another handle. It makes
// TestWindowsContentAccessible meaningful.
func TestWindowsMandatoryLocks(t *testing.T) {
	skipUnderWine(t, "Wine does not enforce byte-range locks on reads and writes")
	path := filepath.Join(winTempDir(t), "data")
	if err := os.WriteFile(path, []byte("content"), 0o666); err != nil {
		t.Fatal(err)
	}
	h, err := windows.CreateFile(windows.StringToUTF16Ptr(path), windows.GENERIC_READ, shareAll, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(h)
	var ol windows.Overlapped
	if err := windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 7, 0, &ol); err != nil {
		t.Fatal(err)
	}
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	b := make([]byte, 7)
	if _, err := other.ReadAt(b, 0); !errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		t.Fatalf("read of a range another handle locked: %v, want ERROR_LOCK_VIOLATION", err)
	}
}
