//go:build linux

package proclocks

import (
	"bytes"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// Read sees a lock this process takes, and returns whole lines.
func TestRead(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/lock")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	data, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("the last line is cut: %q", data[len(data)-64:])
	}
	if !bytes.Contains(data, []byte(" FLOCK  ADVISORY  WRITE "+strconv.Itoa(os.Getpid())+" ")) {
		t.Fatalf("our flock(2) lock is not in /proc/locks:\n%s", data)
	}
}
