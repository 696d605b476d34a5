//go:build amd64 || arm64

package flock

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

const pathBufSizeForTest = pathBufSize

// TestPathCallsAllocateNothing checks that the path system calls copy a
// short path to the stack, not the heap, as RemoveOnUnlock's four per lock
// need (x/sys/unix and os allocate a copy for each).
func TestPathCallsAllocateNothing(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "gone")
	var st unix.Stat_t
	for _, c := range []struct {
		name string
		call func()
	}{
		{"statPath", func() { statPath(file, true, &st) }},
		{"openPath", func() {
			if fd, err := openPath(file, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
				unix.Close(fd)
			}
		}},
		{"openPath with O_CREAT, then removePath", func() {
			if fd, err := openPath(gone, unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o600); err == nil {
				unix.Close(fd)
			}
			if err := removePath(gone); err != nil {
				t.Error(err)
			}
		}},
	} {
		if n := testing.AllocsPerRun(100, c.call); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", c.name, n)
		}
	}
}
