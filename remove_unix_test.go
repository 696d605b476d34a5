//go:build unix

package flock

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A RemoveOnUnlock whose removal fails leaves the file at the path, and the
// process must keep treating it as the one file it is: a later Open of the
// path gets the same entry (on fcntl a second descriptor and entry would
// mean two write holders in one process), and the error names the path
// once.
func TestRemoveOnUnlockRemovalFails(t *testing.T) {
	p := lockPath(t)
	denied := &fs.PathError{Op: "remove", Path: p, Err: fs.ErrPermission}
	removeFile = func(string) error { return denied }
	defer func() { removeFile = os.Remove }()

	a := mustOpen(t, p, RemoveOnUnlock())
	a.Lock()
	held := a.rm.writer
	a.Unlock()
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the file is gone though its removal failed: %v", err)
	}
	b := mustOpen(t, p)
	if b.e != held {
		t.Fatal("Open after a failed removal got a second entry for the same file")
	}
	a.Lock()
	if ok, err := b.TryLock(); ok || err != nil {
		t.Fatalf("TryLock through another handle while a holds = %v, %v", ok, err)
	}
	a.Unlock()
	b.Close()
	err := a.Close()
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Close = %v; want the removal's error", err)
	}
	if n := strings.Count(err.Error(), p); n != 1 {
		t.Fatalf("Close's error names the path %d times: %v", n, err)
	}
}

// RemoveOnUnlock refuses a symbolic link (removing it would remove the
// link and keep the lock file) and refuses NoCreate (the removed file could
// not be locked again); links in the directories above are fine.
func TestRemoveOnUnlockRefuses(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, nil, 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if m, err := Open(link, RemoveOnUnlock()); err == nil {
		m.Close()
		t.Fatal("Open of a symbolic link with RemoveOnUnlock succeeded")
	} else if !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Open of a symbolic link with RemoveOnUnlock: %v", err)
	}
	if m, err := Open(target, RemoveOnUnlock(), NoCreate()); err == nil {
		m.Close()
		t.Fatal("Open with RemoveOnUnlock and NoCreate succeeded")
	} else if !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("Open with RemoveOnUnlock and NoCreate: %v; want fs.ErrInvalid", err)
	}
	linkDir := filepath.Join(dir, "linkdir")
	if err := os.Symlink(dir, linkDir); err != nil {
		t.Fatal(err)
	}
	m := mustOpen(t, filepath.Join(linkDir, "target"), RemoveOnUnlock())
	m.Lock()
	m.Unlock()
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock file reached through a linked directory not removed: %v", err)
	}
}
