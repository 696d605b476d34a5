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
	"syscall"
	"testing"
	"time"
)

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
	holder.Must(t, "lock")
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
	holder.Must(t, "unlock")
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, p+".gate")
	if got := c.Do("trylock"); got != "held" {
		t.Fatalf("another process's trylock of the gate while a holds the lock = %s; want held", got)
	}
	a.Unlock()
	if got := c.Do("trylock"); got != "ok" {
		t.Fatalf("another process's trylock of the gate after Unlock = %s; want ok", got)
	}
	c.Must(t, "unlock")
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
	c.Must(t, "rlock")
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
	c.Must(t, "runlock")
	waitIdle(t, m.e)
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
