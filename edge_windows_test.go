package flock

// Windows tests of file identity, the paths Open refuses or fixes up, the
// fallbacks of opening and waiting, and unlocking a lock that is gone
// (issue 15). They run under Wine where it shows the behaviour; the
// decisions behind them are unit-tested in decide_windows_test.go. One
// file (over the usual length): each case is short, and they share the raw
// Windows calls that set them up.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// TestWindowsFileIdentity checks that the identity Open keys on is the
// same however the file is reached (statFile, openFile, a \\?\ path), and
// says which query the file system answered.
func TestWindowsFileIdentity(t *testing.T) {
	dir := winTempDir(t)
	path := filepath.Join(dir, "lock")
	f, id, err := openFile(path, &config{perm: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(windows.Handle(f.Fd()), &info); err != nil {
		t.Fatal(err)
	}
	ex, exErr := queryFileID(windows.Handle(f.Fd()), &info)
	switch {
	case exErr != nil:
		t.Logf("FileIdInfo refused (%v): keyed on the 64-bit file index", exErr)
	case !hasIdentity(ex.FileID[:]):
		t.Logf("FileIdInfo reports no 128-bit ID: keyed on the 64-bit file index")
	default:
		t.Logf("keyed on FileIdInfo: volume %#x, ID %x", ex.VolumeSerialNumber, ex.FileID)
	}
	if id.uniq != 0 {
		t.Fatalf("a file on the test's file system has no identity: %+v", id)
	}
	for _, p := range []string{path, `\\?\` + path} {
		got, err := statFile(p, false)
		if err != nil {
			t.Fatal(err)
		}
		if got != id {
			t.Errorf("statFile(%s) = %+v, openFile gave %+v", p, got, id)
		}
	}
	m := winOpen(t, path)
	m2 := winOpen(t, `\\?\`+path)
	if m.e != m2.e {
		t.Error(`a path and its \\?\ form have different registry entries`)
	}
}

// winNoIdentity makes every file look as it does on file systems that
// report no file IDs (zero serial and index, FileIdInfo all zero), until
// the test ends.
func winNoIdentity(t *testing.T) {
	saved := queryFileID
	queryFileID = func(h windows.Handle, info *windows.ByHandleFileInformation) (fileIDInfo, error) {
		info.VolumeSerialNumber, info.FileIndexHigh, info.FileIndexLow = 0, 0, 0
		return fileIDInfo{}, nil
	}
	t.Cleanup(func() { queryFileID = saved })
}

// TestWindowsNoIdentity checks what happens on a file system that reports
// no file IDs: every Open gets an entry of its own (two different files
// must never share one), handles on one file still exclude each other
// through the OS, blocking waits included, and RemoveOnUnlock, which could
// not tell a replaced file from its own, is refused.
func TestWindowsNoIdentity(t *testing.T) {
	dir := winTempDir(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	winNoIdentity(t)

	ma := winOpen(t, a)
	mb := winOpen(t, b)
	ma2 := winOpen(t, a)
	if ma.e == mb.e || ma.e == ma2.e || ma.e.id == mb.e.id {
		t.Fatal("opens of files without identity share a registry entry")
	}
	if ok, err := ma.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock(a): %v, %v", ok, err)
	}
	if ok, err := mb.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock(b) while a is locked: %v, %v (the files were merged)", ok, err)
	}
	mb.Unlock()
	// The second handle on a is another entry: the OS excludes it.
	if ok, err := ma2.TryLock(); ok || err != nil {
		t.Fatalf("TryLock through a second entry of a while a is locked: %v, %v", ok, err)
	}
	if ok, err := ma2.TryRLock(); ok || err != nil {
		t.Fatalf("TryRLock through a second entry of a while a is locked: %v, %v", ok, err)
	}
	got := make(chan struct{})
	go func() {
		ma2.Lock()
		close(got)
	}()
	// Once the second entry's OS wait is in flight, the Lock has passed
	// every in-process step and is up against the OS lock alone: a grant
	// there would be a grant through the OS.
	eventually(t, "the second entry's Lock waits for the OS lock", func() bool {
		select {
		case <-got:
			return true
		default:
		}
		ma2.e.mu.Lock()
		defer ma2.e.mu.Unlock()
		return ma2.e.waiting()
	})
	select {
	case <-got:
		t.Fatal("Lock through a second entry granted while a is locked")
	default:
	}
	ma.Unlock()
	select {
	case <-got:
	case <-time.After(childTimeout):
		t.Fatal("Lock through the second entry not granted after Unlock")
	}
	if ok, err := ma.TryRLock(); ok || err != nil {
		t.Fatalf("TryRLock while the second entry holds the write lock: %v, %v", ok, err)
	}
	ma2.Unlock()
	winRawFree(t, a, "after the locks")

	_, err := Open(filepath.Join(dir, "c"), RemoveOnUnlock())
	var pe *fs.PathError
	if !errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, errNoIdentity) || !errors.As(err, &pe) {
		t.Fatalf("Open(RemoveOnUnlock) without file identity: %v, want errNoIdentity (errors.ErrUnsupported) in an *fs.PathError", err)
	}
	_, err = Open(a, RemoveOnUnlock())
	if !errors.Is(err, errNoIdentity) {
		t.Fatalf("Open(RemoveOnUnlock) of an existing file without identity: %v", err)
	}
}

// TestWindowsStreamPath checks that a path naming an alternate data stream
// is refused, and a drive letter or \\?\ prefix is not mistaken for one.
func TestWindowsStreamPath(t *testing.T) {
	dir := winTempDir(t)
	path := filepath.Join(dir, "lock")
	winOpen(t, path)
	for _, p := range []string{path + ":s", path + "::$DATA", `\\?\` + path + ":s"} {
		_, err := Open(p)
		var pe *fs.PathError
		if !errors.Is(err, fs.ErrInvalid) || !errors.Is(err, errStream) || !errors.As(err, &pe) || pe.Path != p {
			t.Errorf("Open(%s): %v, want errStream (fs.ErrInvalid) naming the path", p, err)
		}
		if _, err := statFile(p, false); !errors.Is(err, errStream) {
			t.Errorf("statFile(%s): %v, want errStream", p, err)
		}
	}
	if !strings.Contains(path, ":") {
		t.Fatalf("the test directory %s has no drive letter", path)
	}
	for _, p := range []string{path, `\\?\` + path, `\\.\` + path} {
		m, err := Open(p)
		if err != nil {
			t.Errorf("Open(%s): %v", p, err)
			continue
		}
		m.Close()
	}
}

// TestWindowsLongPath checks that a lock file whose path is longer than
// MAX_PATH opens and locks as with os.Open, in this process and another.
func TestWindowsLongPath(t *testing.T) {
	dir := winTempDir(t)
	deep := dir
	// Long both as an absolute path and relative to dir.
	for len(deep) < 300 || len(deep)-len(dir) < longPathMin+10 {
		deep = filepath.Join(deep, "a-directory-name-of-some-length")
	}
	if err := os.MkdirAll(deep, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(deep, "lock")
	t.Logf("path of %d characters", len(path))
	m := winOpen(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Open did not create the file: %v", err)
	}
	if ok, err := m.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock: %v, %v", ok, err)
	}
	winRawHeld(t, path, "locked through a long path")
	c := startChild(t, path)
	if got := c.Do("trylock"); got != "held" {
		t.Fatalf("child trylock through the long path while we hold the lock: %s", got)
	}
	m.Unlock()
	c.Must(t, "trylock")
	if ok, err := m.TryRLock(); ok || err != nil {
		t.Fatalf("TryRLock while the child holds the lock: %v, %v", ok, err)
	}
	c.Must(t, "unlock")
	// Relative to the working directory, as os allows: the test's
	// directory, since the original one may be on another drive (Z: under
	// Wine, whose temporary directory is on C:).
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Chdir(wd); err != nil {
			t.Errorf("restore the working directory %s: %v", wd, err)
		}
	})
	rel, err := filepath.Rel(dir, path)
	if err != nil || filepath.IsAbs(rel) || len(rel) < longPathMin {
		t.Fatalf("no long relative path to %s from %s: %q (%d characters), %v", path, dir, rel, len(rel), err)
	}
	t.Logf("relative path of %d characters", len(rel))
	m2 := winOpen(t, rel)
	if m2.e != m.e {
		t.Error("the relative long path has another registry entry")
	}
	if ok, err := m2.TryRLock(); !ok || err != nil {
		t.Errorf("TryRLock through the relative path while the lock is free: %v, %v, want true, nil", ok, err)
	} else {
		if ok, release := winRawLock(t, path, true); ok {
			release()
			t.Error("another handle got the write lock while the relative long path holds the read lock")
		}
		m2.RUnlock()
	}
}

// TestWindowsNoFollowLink checks that NoFollow refuses a symbolic link.
// (That other reparse points are not refused is decided by isLink:
// TestWindowsIsLink.)
func TestWindowsNoFollowLink(t *testing.T) {
	dir := winTempDir(t)
	target := filepath.Join(dir, "target")
	winOpen(t, target)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("cannot create a symbolic link here (needs the privilege or developer mode on Windows): %v", err)
	}
	if st, err := os.Lstat(link); err != nil {
		if underWine() {
			t.Skipf("Wine 8 made a link it cannot stat itself (a Unix link to a Windows path): %v", err)
		}
		t.Fatal(err)
	} else if st.Mode()&fs.ModeSymlink == 0 {
		t.Skipf("the system does not report the link it made as a reparse point (Wine 8 makes a Unix link): Lstat mode %v", st.Mode())
	}
	if _, err := Open(link, NoFollow()); !errors.Is(err, errSymlink) {
		t.Fatalf("Open(link, NoFollow): %v, want errSymlink", err)
	}
	m := winOpen(t, link)
	m2 := winOpen(t, target, NoFollow())
	if m.e != m2.e {
		t.Error("the link, followed, and its target have different entries")
	}
}

// TestWindowsSharingViolation checks that a file another program opened
// without sharing write access can still be locked, through a read
// handle, and that SyncOnUnlock's flush is skipped on such a handle.
func TestWindowsSharingViolation(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	// Another program: reads, and lets others only read.
	other, err := windows.CreateFile(winPtr(path), windows.GENERIC_READ, windows.FILE_SHARE_READ, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(other)
	if h, err := windows.CreateFile(winPtr(path), windows.GENERIC_READ|windows.GENERIC_WRITE, shareAll, nil, windows.OPEN_EXISTING, 0, 0); err == nil {
		windows.CloseHandle(h)
		t.Skip("the system did not refuse a write open that the other handle's sharing forbids")
	} else if err != windows.ERROR_SHARING_VIOLATION {
		t.Fatalf("write open beside a handle that shares only reading: %v, want ERROR_SHARING_VIOLATION", err)
	}
	m := winOpen(t, path, SyncOnUnlock())
	access, err := grantedAccess(windows.Handle(m.File().Fd()))
	if err != nil {
		t.Logf("cannot query the handle's access: %v", err)
	} else if access&windows.FILE_WRITE_DATA != 0 {
		t.Fatalf("the handle has write access (%#x) beside a handle that forbids it", access)
	}
	if ok, err := m.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock through the read handle: %v, %v", ok, err)
	}
	ok, release := winRawLock(t, path, false)
	if ok {
		release()
		t.Fatal("another handle got a read lock while we hold the write lock")
	}
	if err := syncFile(m.File()); err != nil {
		t.Errorf("syncFile on a read-only handle: %v, want nil (skipped)", err)
	}
	m.Unlock()
	winRawFree(t, path, "after Unlock")
	if err := m.Close(); err != nil {
		t.Errorf("Close after SyncOnUnlock on a read-only handle: %v, want nil (the flush is skipped)", err)
	}
}

// winDeletePending marks path for deletion the classic way (not POSIX
// semantics): the name stays until every handle on the file is closed, and
// nothing can open it meanwhile.
func winDeletePending(t *testing.T, path string) {
	t.Helper()
	h, err := windows.CreateFile(winPtr(path), windows.DELETE, shareAll, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(h)
	del := uint8(1) // FILE_DISPOSITION_INFO.DeleteFile
	if err := windows.SetFileInformationByHandle(h, windows.FileDispositionInfo, &del, uint32(unsafe.Sizeof(del))); err != nil {
		t.Fatalf("mark %s for deletion: %v", path, err)
	}
}

// TestWindowsPendingDeletion checks a lock file that another program
// deleted while it is open: opening the path fails with errDeletePending,
// and the open handle still locks, blocking waits included (ReOpenFile
// refuses such a file on Windows, so the wait polls its own handle).
func TestWindowsPendingDeletion(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	m := winOpen(t, path)
	// Another program's handle, opened before the deletion.
	ok, release := winRawLock(t, path, true)
	if !ok {
		t.Fatal("raw lock refused on a free file")
	}
	winDeletePending(t, path)

	if h, err := windows.CreateFile(winPtr(path), 0, shareAll, nil, windows.OPEN_EXISTING, 0, 0); err == nil {
		windows.CloseHandle(h)
		if !underWine() {
			t.Fatal("a file pending deletion could be opened")
		}
		t.Log("Wine opens a file pending deletion (Windows refuses): errDeletePending is not shown here, only the waits")
	} else {
		_, err := Open(path)
		if !errors.Is(err, errDeletePending) || !errors.Is(err, windows.ERROR_DELETE_PENDING) {
			t.Fatalf("Open of a file pending deletion: %v, want errDeletePending", err)
		}
		if _, err := statFile(path, false); !errors.Is(err, errDeletePending) {
			t.Fatalf("statFile of a file pending deletion: %v, want errDeletePending", err)
		}
	}
	if c, err := reopenOverlapped(windows.Handle(m.File().Fd())); err != nil {
		t.Logf("ReOpenFile of the file pending deletion: %v (the wait polls its own handle)", err)
	} else {
		windows.CloseHandle(c)
		t.Log("ReOpenFile of the file pending deletion succeeded here")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := m.LockContext(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockContext while another handle holds the lock: %v, want DeadlineExceeded", err)
	}
	got := make(chan struct{})
	go func() {
		m.Lock() // panicked here when ReOpenFile failed
		close(got)
	}()
	// The release must find the Lock waiting, not yet to start.
	eventually(t, "the Lock waits for the other handle's lock", func() bool {
		select {
		case <-got:
			return true
		default:
		}
		m.e.mu.Lock()
		defer m.e.mu.Unlock()
		return m.e.waiting()
	})
	select {
	case <-got:
		t.Fatal("Lock granted while another handle holds the lock")
	default:
	}
	release()
	select {
	case <-got:
	case <-time.After(childTimeout):
		t.Fatal("Lock not granted after the other handle unlocked")
	}
	winRawHeld(t, path, "locked while pending deletion")
	m.Unlock()
	waitIdle(t, m.e)
	winRawFree(t, path, "after Unlock")
}

// TestWindowsReopenFails checks the wait's fallback when the file cannot be
// reopened for an overlapped wait, whatever the reason: the wait polls the
// entry's own handle, is granted when the holder leaves, can be cancelled,
// and leaves no overlapped handle behind.
func TestWindowsReopenFails(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	m := winOpen(t, path)
	c := startChild(t, path)
	saved := reopen
	var calls atomic.Int32
	reopen = func(windows.Handle) (windows.Handle, error) {
		calls.Add(1)
		return 0, windows.ERROR_ACCESS_DENIED
	}
	t.Cleanup(func() { reopen = saved })

	c.Must(t, "lock")
	for _, lock := range []func(context.Context) error{m.LockContext, m.RLockContext} {
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() { res <- lock(ctx) }()
		winReopened(t, &calls, m.e)
		cancel()
		select {
		case err := <-res:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled wait: %v", err)
			}
		case <-time.After(childTimeout):
			t.Fatal("the cancelled wait did not return")
		}
		waitIdle(t, m.e)
	}
	got := make(chan struct{})
	go func() {
		m.Lock()
		close(got)
	}()
	winReopened(t, &calls, m.e)
	c.Must(t, "unlock")
	select {
	case <-got:
	case <-time.After(childTimeout):
		t.Fatal("Lock not granted after the child unlocked")
	}
	if got := c.Do("tryrlock"); got != "held" {
		t.Fatalf("child tryrlock while we hold the lock: %s", got)
	}
	if winCarrier(m.e) != 0 {
		t.Error("an overlapped handle carries the lock although reopening failed")
	}
	m.Unlock()
	c.Must(t, "tryrlock")
	c.Must(t, "runlock")
}

// winReopened waits until a wait on e has tried to reopen the file (calls
// counts the attempts) and is in flight, so that what the test does next
// happens to a wait that fell back to polling; it resets calls.
func winReopened(t *testing.T, calls *atomic.Int32, e *entry) {
	t.Helper()
	eventually(t, "the wait tries to reopen the file", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return calls.Load() > 0 && e.waiting()
	})
	calls.Store(0)
}

// TestWindowsUnlockGone checks that unlocking a lock that is no longer
// there (as after a lost network session) is no failure, on either handle.
func TestWindowsUnlockGone(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	h := winBackend(t, path)
	if err := lockFile(h, exclusive); err != nil {
		t.Fatal(err)
	}
	if err := unlockRange(h.file); err != nil {
		t.Fatal(err)
	}
	switch err := unlockRange(h.file); {
	case err == windows.ERROR_NOT_LOCKED:
		if err := unlockFile(h); err != nil {
			t.Errorf("unlockFile of the own handle's lock, gone already: %v", err)
		}
	case underWine():
		// ERROR_NOT_LOCKED is the only answer unlockResult takes for "no
		// lock here"; Wine's differs, and its other uses are faults.
		t.Logf("Wine answers an UnlockFileEx of an unlocked range with %v, not ERROR_NOT_LOCKED: the own handle's case is unit-tested only (TestWindowsUnlockResult)", err)
	default:
		t.Fatalf("UnlockFileEx of an unlocked range: %v, want ERROR_NOT_LOCKED", err)
	}
	if err := waitFile(h, exclusive, nil); err != nil {
		t.Fatal(err)
	}
	if h.carrier == 0 {
		t.Fatal("an uncontended wait kept no overlapped handle")
	}
	if err := unlockRange(h.carrier); err != nil {
		t.Fatal(err)
	}
	// What the system answers for "no lock here" on the overlapped handle.
	again := unlockRange(h.carrier)
	err := unlockFile(h)
	switch {
	case lockGone(again):
		if err != nil {
			t.Errorf("unlockFile of the overlapped handle's lock, gone already (%v): %v", again, err)
		}
	case underWine() && again == windows.ERROR_LOCK_VIOLATION:
		// Not a "lock gone" answer: reported, as any unexplained unlock
		// failure is, though the close released the handle.
		if err != windows.ERROR_LOCK_VIOLATION {
			t.Errorf("unlockFile of the overlapped handle after Wine's ERROR_LOCK_VIOLATION: %v, want that error reported", err)
		}
		t.Logf("Wine answers %v here: reported as a fault; the lost-lock answers are unit-tested (TestWindowsUnlockResult)", again)
	default:
		t.Fatalf("UnlockFileEx of an unlocked range on the overlapped handle: %v, want ERROR_NOT_LOCKED", again)
	}
	if h.carrier != 0 {
		t.Error("unlockFile kept the overlapped handle")
	}
	winRawFree(t, path, "at the end")
}

// winReparsePoint makes every file that identify looks at as itself
// (NoFollow) look like a reparse point that is not a link, a deduplicated
// file, until the test ends; calls counts the queries.
func winReparsePoint(t *testing.T, calls *atomic.Int32) {
	saved := queryReparse
	queryReparse = func(h windows.Handle, info *windows.ByHandleFileInformation) (fileAttributeTagInfo, error) {
		calls.Add(1)
		return fileAttributeTagInfo{FileAttributes: info.FileAttributes | windows.FILE_ATTRIBUTE_REPARSE_POINT, ReparseTag: 0x80000013}, nil
	}
	t.Cleanup(func() { queryReparse = saved })
}

// TestWindowsReparseReopen checks openFile's handling of a reparse point
// that is not a link, opened as itself by NoFollow: the file is opened
// again through the reparse point, with the same access, and kept only if
// it is still the file first looked at.
func TestWindowsReparseReopen(t *testing.T) {
	dir := winTempDir(t)
	path := filepath.Join(dir, "lock")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	want, err := statFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	winReparsePoint(t, &calls)

	f, id, err := openFile(path, &config{perm: 0o666, noFollow: true})
	if err != nil {
		t.Fatalf("openFile(NoFollow) of a reparse point that is no link: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("reparse queries: %d, want 1 (the reopened handle follows the reparse point)", n)
	}
	if id != want {
		t.Errorf("identity after the reopen: %+v, want %+v", id, want)
	}
	h := windows.Handle(f.Fd())
	if !winSynchronous(t, h) {
		t.Error("the reopened handle is not synchronous")
	}
	if access, err := grantedAccess(h); err != nil {
		t.Logf("cannot query the reopened handle's access: %v", err)
	} else if access&windows.FILE_WRITE_DATA == 0 {
		t.Errorf("the reopened handle lost write access: %#x", access)
	}
	fh := sysFD(f, new(fdMem))
	if err := lockFile(fh, exclusive); err != nil {
		t.Fatal(err)
	}
	winRawHeld(t, path, "locked through the reopened handle")
	if err := unlockFile(fh); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The same through Open: one entry, keyed as the file.
	m := winOpen(t, path, NoFollow())
	m2 := winOpen(t, path)
	if m.e != m2.e || m.e.id != want {
		t.Errorf("Open(NoFollow) of the reparse point: entry %p (%+v), Open without it %p; want one entry keyed %+v", m.e, m.e.id, m2.e, want)
	}
	m.Close()
	m2.Close()

	// Another file at the path by the time of the reopen: refused, and no
	// handle is left open.
	saved := queryFileID
	var n atomic.Int32
	queryFileID = func(h windows.Handle, info *windows.ByHandleFileInformation) (fileIDInfo, error) {
		ex, err := saved(h, info)
		if n.Add(1) == 2 {
			ex.FileID[15] ^= 0x5a
			info.FileIndexHigh ^= 0x5a000000
		}
		return ex, err
	}
	t.Cleanup(func() { queryFileID = saved })
	if f, _, err := openFile(path, &config{perm: 0o666, noFollow: true}); err == nil {
		f.Close()
		t.Fatal("openFile kept a reopened handle whose file ID differs")
	} else if !strings.Contains(err.Error(), "changed") {
		t.Fatalf("openFile with the file changed at the reopen: %v", err)
	}
	winNoHandleOpen(t, path, "after the refused reopen")
	queryFileID = saved

	// No identity: nothing to compare, and the reopened handle's own
	// identity, unique, is kept.
	winNoIdentity(t)
	f, id, err = openFile(path, &config{perm: 0o666, noFollow: true})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if id.uniq == 0 {
		t.Errorf("a file without identity got %+v after the reopen", id)
	}
}

// TestWindowsRemoveOnUnlockRefused checks that RemoveOnUnlock is refused on
// a volume that does not delete with POSIX semantics (under Wine, which
// reports no FILE_SUPPORTS_POSIX_UNLINK_RENAME, the test's own).
func TestWindowsRemoveOnUnlockRefused(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	flags := winVolumeFlags(t, path)
	if removeRefusal(flags, nil) == nil {
		t.Skipf("the test's volume deletes with POSIX semantics (flags %#x): the refusal is unit-tested (TestWindowsRemoveRefusal), the option in TestWindowsRemoveOnUnlock", flags)
	}
	_, err := Open(path, RemoveOnUnlock())
	var pe *fs.PathError
	if !errors.Is(err, errNoPosixDelete) || !errors.Is(err, errors.ErrUnsupported) || !errors.As(err, &pe) || pe.Path != path {
		t.Fatalf("Open(RemoveOnUnlock) on a volume without POSIX deletion: %v, want errNoPosixDelete (errors.ErrUnsupported) in an *fs.PathError", err)
	}
	winNoHandleOpen(t, path, "after the refusal")
	if m, err := Open(path); err != nil {
		t.Errorf("Open without RemoveOnUnlock: %v", err)
	} else {
		m.Close()
	}
}

// winVolumeFlags returns the file system flags of path's volume, creating
// the file; it logs them.
func winVolumeFlags(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := volumeFlags(windows.Handle(f.Fd()))
	if err != nil {
		t.Fatalf("GetVolumeInformationByHandle: %v", err)
	}
	t.Logf("volume flags %#x: FILE_SUPPORTS_POSIX_UNLINK_RENAME %v", flags, flags&fileSupportsPosixUnlinkRename != 0)
	return flags
}

// TestWindowsRemoveOnUnlock checks RemoveOnUnlock where the volume deletes
// with POSIX semantics: Unlock removes the path while another handle keeps
// the file open, and the next Lock re-creates and locks it (with a classic
// deletion the name would stay pending deletion and that Lock panic).
func TestWindowsRemoveOnUnlock(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	if flags := winVolumeFlags(t, path); removeRefusal(flags, nil) != nil {
		t.Skipf("the test's volume does not delete with POSIX semantics (flags %#x; Wine's do not): Open refuses the option there (TestWindowsRemoveOnUnlockRefused)", flags)
	}
	a := winOpen(t, path, RemoveOnUnlock())
	b := winOpen(t, path, RemoveOnUnlock())
	for i := 0; i < 3; i++ {
		a.Lock()
		if ok, err := b.TryLock(); ok || err != nil {
			t.Fatalf("TryLock of the second handle while the first holds the lock: %v, %v", ok, err)
		}
		a.Unlock()
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after Unlock with another handle open: Stat %v, want the file gone", err)
		}
		b.Lock() // panicked here with the name pending deletion
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("Lock did not re-create the file: %v", err)
		}
		winRawHeld(t, path, "locked after the re-creation")
		if ok, err := a.TryRLock(); ok || err != nil {
			t.Fatalf("TryRLock of the first handle while the second holds the lock: %v, %v", ok, err)
		}
		b.Unlock()
	}
}

// TestWindowsRemoveLockFile checks the removal RemoveOnUnlock makes, while
// another handle keeps the file open: with POSIX semantics where the
// system has them (the name goes at once and can be re-created), else the
// classic deletion.
func TestWindowsRemoveLockFile(t *testing.T) {
	dir := winTempDir(t)
	path := filepath.Join(dir, "lock")
	for _, perm := range []fs.FileMode{0o666, 0o444} {
		if err := os.WriteFile(path, nil, perm); err != nil {
			t.Fatal(err)
		}
		h, err := windows.CreateFile(winPtr(path), windows.GENERIC_READ, shareAll, nil, windows.OPEN_EXISTING, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		done, err := posixDelete(path)
		switch {
		case done && err != nil:
			windows.CloseHandle(h)
			t.Fatalf("POSIX deletion of a file open elsewhere (mode %v): %v", perm, err)
		case done:
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after a POSIX deletion (mode %v): Stat %v, want the name gone", perm, err)
			}
			if err := os.WriteFile(path, nil, 0o666); err != nil {
				t.Errorf("re-create the name while the deleted file is open: %v", err)
			}
			if err := removeLockFile(path); err != nil {
				t.Errorf("removeLockFile of the re-created file: %v", err)
			}
		default:
			t.Logf("the system refuses POSIX deletion (%v; Wine does): removeLockFile deletes the classic way", err)
			if err := removeLockFile(path); err != nil {
				t.Errorf("removeLockFile, falling back to os.Remove (mode %v): %v", perm, err)
			}
		}
		windows.CloseHandle(h)
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after the removal and the last close (mode %v): Stat %v, want the file gone", perm, err)
		}
	}
	err := removeLockFile(path)
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != path {
		t.Errorf("removeLockFile of a missing file: %v, want fs.ErrNotExist in an *fs.PathError", err)
	}
}
