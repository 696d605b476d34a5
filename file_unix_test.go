//go:build unix

package flock

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// flockExit runs util-linux flock(1) with args on path and returns its exit
// status; the test is skipped where flock(1) cannot see our locks.
func flockExit(t *testing.T, path string, args ...string) int {
	t.Helper()
	bin, err := exec.LookPath("flock")
	if err != nil {
		t.Skipf("flock(1) is not installed (util-linux): %v", err)
	}
	err = exec.Command(bin, append(args, path, "true")...).Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
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
				c.must(t, "lock")
				got := make(chan struct{})
				go func() { m.Lock(); close(got) }()
				waitingInKernel(t, m)
				c.must(t, "unlock")
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
			if ok, err := other.TryLock(); ok || err != nil {
				t.Fatalf("other handle's TryLock while m holds = %v, %v", ok, err)
			}
			g := m.File()
			if g == nil || g == f {
				t.Fatalf("File after its result was closed = %v; want a new open file", g)
			}
			if _, err := g.WriteAt([]byte("ok"), 0); err != nil {
				t.Fatalf("writing through the new File: %v", err)
			}
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

// ForWriting refuses a file that can only be read, naming the path;
// without it the file is locked read-only and Writable says so.
func TestForWriting(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "sleep")
	data, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Skipf("no /bin/sleep to run as a busy executable (ETXTBSY cannot be opened for writing, even by root): %v", err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot run %s: %v", exe, err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	plain := filepath.Join(dir, "plain")
	cases := []struct {
		path     string
		writable bool
	}{
		{exe, false},
		{dir, false}, // a directory
		{plain, true},
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "readonly")
		if err := os.WriteFile(ro, nil, 0o444); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			path     string
			writable bool
		}{ro, false})
	} else {
		t.Log("running as root: a mode 0444 file is writable to root and is not a case here (the busy executable and TestReadOnlyFileSystem are)")
	}
	for _, tc := range cases {
		m, err := Open(tc.path, ForWriting())
		if tc.writable {
			if err != nil {
				t.Errorf("Open(%s, ForWriting()) = %v", tc.path, err)
				continue
			}
			if !m.Writable() {
				t.Errorf("%s: Writable() = false with ForWriting", tc.path)
			}
			m.Close()
		} else {
			var pe *fs.PathError
			if !errors.Is(err, fs.ErrPermission) || !errors.As(err, &pe) || pe.Path != tc.path {
				t.Errorf("Open(%s, ForWriting()) = %v; want fs.ErrPermission naming the path", tc.path, err)
			} else {
				t.Logf("%s: %v", filepath.Base(tc.path), err)
			}
			if m != nil {
				m.Close()
			}
		}
		m, err = Open(tc.path)
		if err != nil {
			t.Errorf("Open(%s) without ForWriting = %v; want it locked read-only", tc.path, err)
			continue
		}
		if got := m.Writable(); got != tc.writable {
			t.Errorf("%s: Writable() = %v; want %v", tc.path, got, tc.writable)
		}
		if ok, err := m.TryRLock(); !ok || err != nil {
			t.Errorf("%s: TryRLock = %v, %v", tc.path, ok, err)
		} else {
			m.RUnlock()
		}
		m.Close()
		if m.Writable() {
			t.Errorf("%s: Writable() after Close = true", tc.path)
		}
	}
}
