package flock

// Windows tests of opening, file identity, exclusion between handles and
// processes, and content access; wait_windows_test.go has the blocking
// waits. Under Wine (see .ci/windows.sh) all of these run; the tests that
// need a real Windows kernel skip there and say why. One file (over the
// usual length) for the helpers all of them share.
//
// Multi-process tests use the locker child of main_test.go (startChild).

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// underWine reports whether the tests run under Wine, whose ntdll exports
// wine_get_version and which lacks some of the kernel behaviour tested here.
var underWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})

// skipUnderWine skips a test that needs what Wine does not implement.
func skipUnderWine(t *testing.T, why string) {
	t.Helper()
	if underWine() {
		t.Skipf("needs real Windows, skipped under Wine: %s", why)
	}
}

// winTempDir is t.TempDir with a cleanup that works under Wine, where
// os.RemoveAll fails (Go deletes with POSIX semantics, which Wine 8 does
// not implement) and would fail the test through t.TempDir's cleanup.
func winTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "flock-windows-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err == nil {
			return
		}
		if err := winRemoveAll(dir); err != nil {
			t.Logf("left %s behind: %v", dir, err)
		}
	})
	return dir
}

// winRemoveAll removes dir and what it holds with the classic DeleteFile
// and RemoveDirectory calls.
func winRemoveAll(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			err = winRemoveAll(p)
		} else {
			err = windows.DeleteFile(windows.StringToUTF16Ptr(p))
		}
		if err != nil {
			return &fs.PathError{Op: "remove", Path: p, Err: err}
		}
	}
	if err := windows.RemoveDirectory(windows.StringToUTF16Ptr(dir)); err != nil {
		return &fs.PathError{Op: "remove", Path: dir, Err: err}
	}
	return nil
}

// winOpen opens path and closes the handle when the test ends.
func winOpen(t *testing.T, path string, opts ...Option) *RWMutex {
	t.Helper()
	m, err := Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// winRawLock tries to lock the package's lock byte through a handle of its
// own, as another program or another library in the process would. It
// reports whether the lock was granted; if so, release unlocks and closes.
func winRawLock(t *testing.T, path string, excl bool) (granted bool, release func()) {
	t.Helper()
	h, err := windows.CreateFile(winPtr(path), windows.GENERIC_READ, shareAll, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	flags := uint32(windows.LOCKFILE_FAIL_IMMEDIATELY)
	if excl {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	ol := windows.Overlapped{Offset: lockOffsetLow, OffsetHigh: lockOffsetHigh}
	switch err := windows.LockFileEx(h, flags, 0, 1, 0, &ol); err {
	case nil:
		return true, func() {
			if err := unlockRange(h); err != nil {
				t.Errorf("unlock the raw lock on %s: %v", path, err)
			}
			windows.CloseHandle(h)
		}
	case windows.ERROR_LOCK_VIOLATION:
		windows.CloseHandle(h)
		return false, nil
	default:
		windows.CloseHandle(h)
		t.Fatalf("raw LockFileEx on %s: %v", path, err)
		return false, nil
	}
}

// winPtr is path for CreateFile, long paths included.
func winPtr(path string) *uint16 {
	return windows.StringToUTF16Ptr(longPath(path, windows.FullPath))
}

// winRawFree checks that another handle could lock the file exclusively,
// that is, that nobody holds a lock on it.
func winRawFree(t *testing.T, path, when string) {
	t.Helper()
	ok, release := winRawLock(t, path, true)
	if !ok {
		t.Fatalf("%s: the lock byte of %s is still locked", when, path)
	}
	release()
}

// winRawHeld checks that another handle can take neither lock.
func winRawHeld(t *testing.T, path, when string) {
	t.Helper()
	for _, excl := range []bool{true, false} {
		if ok, release := winRawLock(t, path, excl); ok {
			release()
			t.Fatalf("%s: another handle got the lock (exclusive=%v)", when, excl)
		}
	}
}

// winNoHandleOpen checks that no handle on path is open anywhere: an open
// that shares nothing succeeds only then.
func winNoHandleOpen(t *testing.T, path, when string) {
	t.Helper()
	h, err := windows.CreateFile(winPtr(path), windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		t.Fatalf("%s: exclusive open of %s: %v (a handle is still open)", when, path, err)
	}
	windows.CloseHandle(h)
}

func winModeName(mode lockMode) string {
	switch mode {
	case shared:
		return "read"
	case exclusive:
		return "write"
	}
	return "un"
}

// winSynchronous reports whether h was opened for synchronous I/O (without
// FILE_FLAG_OVERLAPPED).
func winSynchronous(t *testing.T, h windows.Handle) bool {
	t.Helper()
	const fileModeInformation = 16
	var iosb windows.IO_STATUS_BLOCK
	var mode uint32
	r, _, _ := procNtQueryInformationFile.Call(uintptr(h), uintptr(unsafe.Pointer(&iosb)), uintptr(unsafe.Pointer(&mode)), unsafe.Sizeof(mode), fileModeInformation)
	if r != 0 {
		t.Fatalf("NtQueryInformationFile(FileModeInformation): %v", windows.NTStatus(r))
	}
	return mode&(windows.FILE_SYNCHRONOUS_IO_ALERT|windows.FILE_SYNCHRONOUS_IO_NONALERT) != 0
}

func TestWindowsOpen(t *testing.T) {
	dir := winTempDir(t)
	path := filepath.Join(dir, "lock")
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Open did not create the file: %v", err)
	}
	if m.Path() != path {
		t.Errorf("Path() = %q, want %q", m.Path(), path)
	}
	f := m.File()
	if f == nil {
		t.Fatal("File() = nil on an open handle")
	}
	// File is the synchronous handle, so that sequential I/O works with
	// every Go release (overlapped handles keep no file position).
	if !winSynchronous(t, windows.Handle(f.Fd())) {
		t.Error("File() is an overlapped handle")
	}
	if _, err := f.Write([]byte("hello, ")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("world"), 7); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(f); err != nil || string(b) != "hello, world" {
		t.Fatalf("read back %q, %v", b, err)
	}

	m2 := winOpen(t, path)
	if m2.File() != f {
		t.Error("a second handle on the file has another *os.File")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.File() != nil {
		t.Error("File() != nil after Close")
	}
	if ok, err := m2.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock through the remaining handle: %v, %v", ok, err)
	}
	m2.Unlock()

	t.Run("NoCreate", func(t *testing.T) {
		missing := filepath.Join(dir, "missing")
		_, err := Open(missing, NoCreate())
		var pe *fs.PathError
		if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != missing {
			t.Fatalf("Open(NoCreate) of a missing file: %v", err)
		}
		if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open(NoCreate) created the file: %v", err)
		}
	})
	t.Run("MissingParent", func(t *testing.T) {
		_, err := Open(filepath.Join(dir, "no", "such", "lock"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("got %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("Directory", func(t *testing.T) {
		_, err := Open(dir)
		if !errors.Is(err, errDir) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("got %v, want errDir naming the path", err)
		}
	})
	t.Run("Device", func(t *testing.T) {
		_, err := Open("NUL")
		if !errors.Is(err, errType) || !strings.Contains(err.Error(), "NUL") {
			t.Fatalf("got %v, want errType naming the path", err)
		}
	})
	t.Run("ReadOnlyFile", func(t *testing.T) {
		ro := filepath.Join(dir, "readonly")
		if err := os.WriteFile(ro, []byte("x"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(ro, 0o444); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(ro, 0o666) // so that the directory can be removed
		m := winOpen(t, ro)
		// Windows grants exclusive locks through read handles too.
		if ok, err := m.TryLock(); !ok || err != nil {
			t.Fatalf("TryLock on a read-only file: %v, %v", ok, err)
		}
		winRawHeld(t, ro, "read-only file locked")
		m.Unlock()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("WithPermReadOnly", func(t *testing.T) {
		p := filepath.Join(dir, "created-readonly")
		m := winOpen(t, p, WithPerm(0o444))
		defer os.Chmod(p, 0o666)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o200 != 0 {
			t.Errorf("created with mode %v, want read-only", st.Mode())
		}
		if ok, err := m.TryLock(); !ok || err != nil {
			t.Fatalf("TryLock: %v, %v", ok, err)
		}
		m.Unlock()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWindowsIdentity checks that every spelling of a file's path and every
// hard link to it reach one registry entry, keyed by file identity (see
// TestWindowsFileIdentity), and so one in-process gate and one OS lock.
func TestWindowsIdentity(t *testing.T) {
	dir := winTempDir(t)
	path := filepath.Join(dir, "lock")
	m := winOpen(t, path)
	link := filepath.Join(dir, "hardlink")
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		dir + `\.\lock`,
		dir + `\sub\..\lock`,
		strings.ReplaceAll(dir, `\`, `/`) + "/lock",
		dir + `\LOCK`, // Windows file names are case-insensitive
		link,
	} {
		m2 := winOpen(t, p)
		if m2.e != m.e {
			t.Errorf("%s and %s have different registry entries", p, path)
		}
		if ok, err := m.TryLock(); !ok || err != nil {
			t.Fatalf("TryLock: %v, %v", ok, err)
		}
		if ok, err := m2.TryRLock(); ok || err != nil {
			t.Errorf("TryRLock through %s while %s is write-locked: %v, %v", p, path, ok, err)
		}
		m.Unlock()
		if err := m2.Close(); err != nil {
			t.Fatal(err)
		}
	}

	other := winOpen(t, filepath.Join(dir, "other"))
	if other.e == m.e {
		t.Error("two different files share a registry entry")
	}
	id := m.e.id
	if id == other.e.id {
		t.Errorf("two different files have the same identity %+v", id)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	registry.mu.Lock()
	_, still := registry.entries[id]
	registry.mu.Unlock()
	if still {
		t.Error("the entry stayed registered after its last handle closed")
	}
	winNoHandleOpen(t, path, "after the last handle closed")
}

// TestWindowsTryLockHandles checks exclusion between handles of one process:
// two RWMutex handles (one in-process gate), and the package's OS lock
// against a handle that another library of the process might open.
func TestWindowsTryLockHandles(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	m := winOpen(t, path)
	m2 := winOpen(t, path)

	if ok, err := m.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock: %v, %v", ok, err)
	}
	for _, try := range []func() (bool, error){m.TryLock, m.TryRLock, m2.TryLock, m2.TryRLock} {
		if ok, err := try(); ok || err != nil {
			t.Fatalf("second lock while write-locked: %v, %v", ok, err)
		}
	}
	winRawHeld(t, path, "write-locked")
	m.Unlock()
	winRawFree(t, path, "after Unlock")

	// Held by another handle: the OS refuses us, and TryLock says so
	// without an error.
	ok, release := winRawLock(t, path, true)
	if !ok {
		t.Fatal("raw exclusive lock refused on a free file")
	}
	for _, try := range []func() (bool, error){m.TryLock, m.TryRLock} {
		if ok, err := try(); ok || err != nil {
			t.Fatalf("lock while another handle holds it exclusively: %v, %v", ok, err)
		}
	}
	release()

	ok, release = winRawLock(t, path, false)
	if !ok {
		t.Fatal("raw shared lock refused on a free file")
	}
	if ok, err := m.TryLock(); ok || err != nil {
		t.Fatalf("TryLock while another handle holds a shared lock: %v, %v", ok, err)
	}
	if ok, err := m.TryRLock(); !ok || err != nil {
		t.Fatalf("TryRLock while another handle holds a shared lock: %v, %v", ok, err)
	}
	m.RUnlock()
	release()
	winRawFree(t, path, "at the end")
}

// TestWindowsTryLockProcesses checks exclusion between processes.
func TestWindowsTryLockProcesses(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	m := winOpen(t, path)
	c := startChild(t, path)

	c.Must(t, "trylock")
	if ok, err := m.TryLock(); ok || err != nil {
		t.Fatalf("TryLock while the child holds the write lock: %v, %v", ok, err)
	}
	if ok, err := m.TryRLock(); ok || err != nil {
		t.Fatalf("TryRLock while the child holds the write lock: %v, %v", ok, err)
	}
	c.Must(t, "unlock")

	if ok, err := m.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock after the child unlocked: %v, %v", ok, err)
	}
	for _, cmd := range []string{"trylock", "tryrlock"} {
		if got := c.Do(cmd); got != "held" {
			t.Fatalf("child %s while we hold the write lock: %s", cmd, got)
		}
	}
	m.Unlock()
	c.Must(t, "trylock")
	c.Must(t, "unlock")
}

// TestWindowsSharedStacking checks that readers stack, in one process on
// one OS shared lock, and across processes.
func TestWindowsSharedStacking(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	m := winOpen(t, path)
	m2 := winOpen(t, path)
	c := startChild(t, path)

	m.RLock()
	if ok, err := m.TryRLock(); !ok || err != nil {
		t.Fatalf("second TryRLock: %v, %v", ok, err)
	}
	m2.RLock()
	m.e.mu.Lock()
	held := m.e.held
	m.e.mu.Unlock()
	if held != shared {
		t.Errorf("OS lock held = %v with three readers, want shared", held)
	}
	if ok, release := winRawLock(t, path, false); !ok {
		t.Error("another handle cannot share the read lock")
	} else {
		release()
	}
	if ok, release := winRawLock(t, path, true); ok {
		release()
		t.Error("another handle got the write lock while we read")
	}
	c.Must(t, "tryrlock")
	if got := c.Do("trylock"); got != "held" {
		t.Errorf("child trylock while both processes read: %s", got)
	}
	if ok, err := m.TryLock(); ok || err != nil {
		t.Errorf("TryLock while readers hold the lock: %v, %v", ok, err)
	}

	m.RUnlock()
	m2.RUnlock()
	c.Must(t, "runlock")
	if ok, release := winRawLock(t, path, true); ok {
		release()
		t.Fatal("the last reader of the process left, but the OS lock went with the first")
	}
	m.RUnlock()
	winRawFree(t, path, "after the last reader left")
}

// TestWindowsUnlockOnClose checks that closing and exiting leave no lock and
// no handle behind.
func TestWindowsUnlockOnClose(t *testing.T) {
	dir := winTempDir(t)

	t.Run("Close", func(t *testing.T) {
		path := filepath.Join(dir, "close")
		m, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := m.TryLock(); !ok || err != nil {
			t.Fatalf("TryLock: %v, %v", ok, err)
		}
		if err := m.Close(); !errors.Is(err, ErrLocked) {
			t.Fatalf("Close while locked: %v, want ErrLocked", err)
		}
		m.Unlock()
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		winRawFree(t, path, "after Close")
		winNoHandleOpen(t, path, "after Close")
	})

	t.Run("ChildExits", func(t *testing.T) {
		path := filepath.Join(dir, "exit")
		m := winOpen(t, path)
		c := startChild(t, path)
		c.Must(t, "lock")
		if ok, err := m.TryLock(); ok || err != nil {
			t.Fatalf("TryLock while the child holds the lock: %v, %v", ok, err)
		}
		// The child exits holding the lock; Windows releases a dead
		// process's locks when it closes its handles, before the
		// process counts as exited.
		if err := c.Send("exit"); err != nil {
			t.Fatal(err)
		}
		c.Stop()
		if !c.Cmd.ProcessState.Success() {
			t.Fatalf("child: %v", c.Cmd.ProcessState)
		}
		if ok, err := m.TryLock(); !ok || err != nil {
			t.Fatalf("TryLock after the holder exited: %v, %v", ok, err)
		}
		m.Unlock()
	})

	// A lock taken by the overlapped wait lives on its own handle; unlock
	// must close that too. Uncontended, the wait is granted at once, which
	// Wine implements.
	t.Run("OverlappedCarrier", func(t *testing.T) {
		path := filepath.Join(dir, "carrier")
		f, _, err := openFile(path, &config{perm: 0o666})
		if err != nil {
			t.Fatal(err)
		}
		h := sysFD(f, new(fdMem))
		for _, mode := range []lockMode{exclusive, shared} {
			abandoned := make(chan struct{})
			close(abandoned) // granted at once all the same: kept
			for _, abandon := range []chan struct{}{nil, abandoned} {
				if err := waitFile(h, mode, abandon); err != nil {
					t.Fatalf("waitFile(%s) on a free file: %v", winModeName(mode), err)
				}
				if h.carrier == 0 {
					t.Fatal("waitFile granted the lock but kept no overlapped handle")
				}
				if winSynchronous(t, h.carrier) {
					t.Error("the wait's handle is not overlapped")
				}
				if mode == exclusive {
					winRawHeld(t, path, "locked by waitFile")
				} else if ok, release := winRawLock(t, path, true); ok {
					release()
					t.Fatal("another handle got the write lock while waitFile's read lock is held")
				}
				if err := unlockFile(h); err != nil {
					t.Fatal(err)
				}
				if h.carrier != 0 {
					t.Fatal("unlockFile kept the overlapped handle")
				}
				winRawFree(t, path, "after unlockFile")
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		winNoHandleOpen(t, path, "after unlock and close")
	})
}

// TestWindowsContentAccessible checks that the lock leaves the file's
// content readable and writable through other handles and processes: the
// locked byte is far past any data. (Wine does not enforce mandatory locks,
// so there this only checks that nothing fails; TestWindowsMandatoryLocks
// shows on Windows that the check has teeth.)
func TestWindowsContentAccessible(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	m := winOpen(t, path)
	c := startChild(t, path)
	other, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	for _, mode := range []lockMode{exclusive, shared} {
		if mode == exclusive {
			m.Lock()
		} else {
			m.RLock()
		}
		if _, err := other.WriteAt([]byte("written by another handle"), 0); err != nil {
			t.Fatalf("%s-locked: write through another handle: %v", winModeName(mode), err)
		}
		b := make([]byte, 7)
		if _, err := other.ReadAt(b, 0); err != nil || string(b) != "written" {
			t.Fatalf("%s-locked: read through another handle: %q, %v", winModeName(mode), b, err)
		}
		c.Must(t, "write child")
		if got := c.Do("read"); !strings.HasPrefix(got, "child") {
			t.Fatalf("%s-locked: child read %q", winModeName(mode), got)
		}
		if _, err := m.File().WriteAt([]byte("holder"), 0); err != nil {
			t.Fatalf("%s-locked: write through File: %v", winModeName(mode), err)
		}
		if got := c.Do("read"); !strings.HasPrefix(got, "holder") {
			t.Fatalf("%s-locked: child read %q after the holder wrote", winModeName(mode), got)
		}
		if mode == exclusive {
			m.Unlock()
		} else {
			m.RUnlock()
		}
	}
	if underWine() {
		t.Log("under Wine, which does not enforce mandatory locks, this shows only that no I/O failed")
	}
}

func TestWindowsUnsupportedErrors(t *testing.T) {
	for _, errno := range []windows.Errno{windows.ERROR_NOT_SUPPORTED, windows.ERROR_INVALID_FUNCTION, windows.ERROR_CALL_NOT_IMPLEMENTED} {
		err := lockError(errno)
		if !errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, errno) {
			t.Errorf("lockError(%v) = %v: want errors.ErrUnsupported wrapping the errno", errno, err)
		}
	}
	for _, errno := range []windows.Errno{windows.ERROR_ACCESS_DENIED, windows.ERROR_INVALID_HANDLE} {
		if err := lockError(errno); errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("lockError(%v) matches errors.ErrUnsupported", errno)
		}
	}
}
