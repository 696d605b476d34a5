//go:build linux

package flock

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

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
			c.Must(t, "lock")
			got := make(chan error, 1)
			go func() { got <- tc.lock(m) }()
			waitingInKernel(t, m)
			c.Must(t, "unlock")
			if err := <-got; err != nil {
				t.Fatal(err)
			}
			if err := unix.Flock(int(m.File().Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				t.Fatalf("the lock is not on File's descriptor: flock on it = %v", err)
			}
			if got := c.Do("trylock"); got != "held" {
				t.Fatalf("child trylock while we hold = %s", got)
			}
			m.Unlock()
			if got := c.Do("trylock"); got != "ok" {
				t.Fatalf("child trylock after Unlock = %s", got)
			}
			c.Must(t, "unlock")
		})
	}
}

// Closing what File returns, the reflex with a file one was handed, leaves
// the lock alone: it still excludes other processes, other handles keep
// working, and the descriptor number the closed file leaves free (and that
// the next open takes) is never locked or unlocked by the package.
func TestFileCloseKeepsLock(t *testing.T) {
	if backendName != "flock" {
		t.Skipf("on the %s backend closing any descriptor of the file releases the process's lock, as documented", backendName)
	}
	for _, viaWait := range []bool{false, true} {
		name := "direct"
		if viaWait {
			name = "granted after a kernel wait"
		}
		t.Run(name, func(t *testing.T) {
			p := lockPath(t)
			m, other := mustOpen(t, p), mustOpen(t, p)
			before := m.File() // a view made before the lock moves
			if viaWait {
				c := startChild(t, p)
				c.Must(t, "lock")
				got := make(chan struct{})
				go func() { m.Lock(); close(got) }()
				waitingInKernel(t, m)
				c.Must(t, "unlock")
				<-got
			} else {
				m.Lock()
			}
			f := m.File()
			if f != before {
				t.Fatal("File returned a new *os.File while the first is open")
			}
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				t.Fatalf("File's descriptor does not carry the lock: flock on it = %v", err)
			}
			n := int(f.Fd())
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			// Take the freed number for another file, as the next open in
			// the program would.
			stray, err := os.Create(filepath.Join(t.TempDir(), "stray"))
			if err != nil {
				t.Fatal(err)
			}
			defer stray.Close()
			if int(stray.Fd()) != n {
				t.Logf("the freed descriptor %d went to %d, not the stray file", n, stray.Fd())
			}
			if got := flockExit(t, p, "-n"); got != 1 {
				t.Fatalf("flock -n after File().Close() while we hold: exit %d; want 1 (lock lost)", got)
			}
			checkHeldAfterFileClose(t, m, other, f)
			m.Unlock()
			if err := unix.Flock(int(stray.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				t.Fatalf("the stray file was locked or touched: %v", err)
			}
			if ok, err := other.TryLock(); !ok || err != nil {
				t.Fatalf("other handle's TryLock after Unlock = %v, %v", ok, err)
			}
			if got := flockExit(t, p, "-n"); got != 1 {
				t.Fatalf("flock -n while the other handle holds: exit %d; want 1", got)
			}
			other.Unlock()
			if got := flockExit(t, p, "-n"); got != 0 {
				t.Fatalf("flock -n once all is released: exit %d; want 0", got)
			}
		})
	}
}
