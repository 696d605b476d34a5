//go:build unix

package flock

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
