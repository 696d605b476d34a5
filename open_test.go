package flock

// Open everywhere: invalid paths, a missing directory, NoCreate, and a
// lock file's content left alone.

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenInvalid(t *testing.T) {
	for _, path := range []string{"", "a\x00b"} {
		_, err := Open(path)
		var pe *fs.PathError
		if !errors.Is(err, fs.ErrInvalid) || !errors.As(err, &pe) || pe.Path != path {
			t.Errorf("Open(%q) = %v; want a PathError wrapping fs.ErrInvalid", path, err)
		}
	}
}

func TestOpenMissingParent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "missing", "lock")
	_, err := Open(p)
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != p {
		t.Fatalf("Open = %v; want a PathError for %s wrapping fs.ErrNotExist", err, p)
	}
	if _, err := os.Stat(filepath.Dir(p)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Open created the missing parent")
	}
}

func TestNoCreate(t *testing.T) {
	p := lockPath(t)
	if _, err := Open(p, NoCreate()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(NoCreate) of a missing file = %v; want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Open(NoCreate) created the file")
	}
	os.WriteFile(p, nil, 0o666)
	mustOpen(t, p, NoCreate())
}

// The lock file is neither truncated nor written by locking.
func TestContentUntouched(t *testing.T) {
	p := lockPath(t)
	if err := os.WriteFile(p, []byte("content"), 0o666); err != nil {
		t.Fatal(err)
	}
	m, err := Open(p, SyncOnUnlock())
	if err != nil {
		t.Fatal(err)
	}
	m.Lock()
	m.Unlock()
	m.RLock()
	m.RUnlock()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "content" {
		t.Fatalf("content now %q", b)
	}
}

// Content written through File under the lock is what the next holder reads.
func TestFileContent(t *testing.T) {
	p := lockPath(t)
	a, b := mustOpen(t, p, SyncOnUnlock()), mustOpen(t, p)
	a.Lock()
	if _, err := a.File().WriteAt([]byte("42"), 0); err != nil {
		t.Fatal(err)
	}
	a.Unlock()
	b.RLock()
	buf := make([]byte, 2)
	if _, err := b.File().ReadAt(buf, 0); err != nil || string(buf) != "42" {
		t.Fatalf("ReadAt = %q, %v", buf, err)
	}
	b.RUnlock()
}
