package flock

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"golang.org/x/sys/unix"
)

// mustHolders returns m's holders sorted by pid, failing t on an error.
func mustHolders(t *testing.T, m *RWMutex) []Holder {
	t.Helper()
	hs, err := m.Holders()
	if err != nil {
		t.Fatalf("Holders: %v", err)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].PID < hs[j].PID })
	return hs
}

// testComm is the command name /proc/PID/comm shows for this test binary
// and its children.
func testComm() string {
	name := filepath.Base(os.Args[0])
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

// A child holding the lock exclusively is reported with its pid, command
// and mode; after it releases, nobody is.
func TestHoldersChildExclusive(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	c.must(t, "lock")
	want := []Holder{{PID: c.cmd.Process.Pid, Exclusive: true, Command: testComm(), Kind: procLocksType}}
	if got := mustHolders(t, m); !reflect.DeepEqual(got, want) {
		t.Fatalf("Holders with a child writer = %+v; want %+v", got, want)
	}
	c.must(t, "unlock")
	if got := mustHolders(t, m); len(got) != 0 {
		t.Fatalf("Holders after the child's Unlock = %+v; want none", got)
	}
}

// Three readers, two child processes and this one, are all reported.
func TestHoldersThreeReaders(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c1, c2 := startChild(t, p), startChild(t, p)
	c1.must(t, "rlock")
	c2.must(t, "rlock")
	m.RLock()
	var want []Holder
	for _, pid := range []int{os.Getpid(), c1.cmd.Process.Pid, c2.cmd.Process.Pid} {
		want = append(want, Holder{PID: pid, Command: testComm(), Kind: procLocksType})
	}
	sort.Slice(want, func(i, j int) bool { return want[i].PID < want[j].PID })
	if got := mustHolders(t, m); !reflect.DeepEqual(got, want) {
		t.Fatalf("Holders with three readers = %+v; want %+v", got, want)
	}
	m.RUnlock()
	c1.must(t, "runlock")
	if got := mustHolders(t, m); len(got) != 1 || got[0].PID != c2.cmd.Process.Pid {
		t.Fatalf("Holders with one reader left = %+v; want child %d", got, c2.cmd.Process.Pid)
	}
	c2.must(t, "runlock")
	if got := mustHolders(t, m); len(got) != 0 {
		t.Fatalf("Holders after every RUnlock = %+v; want none", got)
	}
}

// util-linux flock(1) holding the file is reported with flock's own pid
// (the process that took the lock, not the command it runs).
func TestHoldersFlockCommand(t *testing.T) {
	path, err := exec.LookPath("flock")
	if err != nil {
		t.Skipf("no flock(1) to hold the lock: %v", err)
	}
	p := lockPath(t)
	m := mustOpen(t, p)
	for _, shared := range []bool{true, false} {
		args := []string{p, "cat"}
		if shared {
			args = []string{"-s", p, "cat"}
		}
		cmd := exec.Command(path, args...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// flock(1) runs cat only once it holds the lock: an echo says so.
		out := bufio.NewReader(stdout)
		fmt.Fprintln(stdin, "held")
		if line, err := out.ReadString('\n'); err != nil || line != "held\n" {
			stdin.Close()
			cmd.Wait()
			t.Fatalf("flock %v cat: %q, %v", args, line, err)
		}
		want := []Holder{{PID: cmd.Process.Pid, Exclusive: !shared, Command: "flock", Kind: "FLOCK"}}
		got := mustHolders(t, m)
		stdin.Close() // cat exits, and flock(1) with it
		io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			t.Errorf("flock %v cat: %v", args, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Holders with flock %v cat = %+v; want %+v", args, got, want)
		}
		if got := mustHolders(t, m); len(got) != 0 {
			t.Fatalf("Holders after flock(1) exited = %+v; want none", got)
		}
	}
}

// While another handle of the process locks and unlocks as fast as it can,
// Holders never fails and reports nobody but this process; once it stops,
// nobody.
func TestHoldersRacingRelease(t *testing.T) {
	p := lockPath(t)
	m, b := mustOpen(t, p), mustOpen(t, p)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			b.Lock()
			b.Unlock()
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		for _, h := range mustHolders(t, m) {
			if h.PID != os.Getpid() || !h.Exclusive || h.Kind != procLocksType {
				t.Fatalf("phantom holder %+v", h)
			}
		}
	}
	if got := mustHolders(t, m); len(got) != 0 {
		t.Fatalf("Holders after the last Unlock = %+v; want none", got)
	}
}

// A RemoveOnUnlock handle reports the holders of the file now at its path,
// and, closed, fails with os.ErrClosed.
func TestHoldersRemoveOnUnlock(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p, RemoveOnUnlock())
	c := startChild(t, p)
	c.must(t, "rlock")
	if got := mustHolders(t, m); len(got) != 1 || got[0].PID != c.cmd.Process.Pid || got[0].Exclusive {
		t.Fatalf("Holders with a child reader = %+v; want child %d, shared", got, c.cmd.Process.Pid)
	}
	c.must(t, "runlock")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Holders(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Holders after Close: %v; want os.ErrClosed", err)
	}
}

// With more locks in the system than /proc/locks returns in one read(2)
// (about a page), a holder listed after the first page is still found.
func TestHoldersLongProcLocks(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 200; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
			t.Fatal(err)
		}
	}
	if data, err := readProcLocks(); err != nil || len(data) < 8<<10 {
		t.Fatalf("/proc/locks: %d bytes, %v; want more than two pages", len(data), err)
	}
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	c.must(t, "lock")
	if got := mustHolders(t, m); len(got) != 1 || got[0].PID != c.cmd.Process.Pid || !got[0].Exclusive {
		t.Fatalf("Holders = %+v; want child %d, exclusive", got, c.cmd.Process.Pid)
	}
}
