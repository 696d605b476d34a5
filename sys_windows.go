//go:build windows

package flock

// The Windows backend: LockFileEx on one byte far past any data.
//
// Windows locks are mandatory (a locked range cannot be read or written
// through other handles), so locking the file's real content would break
// readers; a range no file reaches leaves the content free. Locks belong to
// a file object (one CreateFile), so other handles on the same file, in
// this process or another, conflict as flock(2) locks do.
//
// Two kinds of handle, and why:
//
//   - The entry's *os.File, which File returns and the registry closes, is
//     an ordinary synchronous handle. Go's os package only handles
//     overlapped handles well since Go 1.26 (which attaches them to the
//     runtime's I/O completion port); on older releases Read, Write and Seek
//     misbehave on them, and this module supports Go 1.21. Non-blocking
//     lock attempts (LOCKFILE_FAIL_IMMEDIATELY) are made on this handle
//     too: on a synchronous handle they cannot pend, and they need no
//     second handle.
//
//   - A blocking wait must be abandonable. An overlapped lock request is:
//     CancelIoEx cancels exactly that request (CancelSynchronousIo would
//     have to aim at a thread that Go's scheduler may have moved on), but
//     it needs a handle opened with FILE_FLAG_OVERLAPPED, on which the
//     request is then made. waitFile therefore reopens the file as a raw
//     overlapped handle (never wrapped in an *os.File, so no completion
//     port sees it), and that handle then carries the lock until unlockFile
//     unlocks and closes it. It exists only while a wait is in flight or
//     the lock it took is held, because the registry closes nothing but the
//     *os.File when the last handle goes: a handle that lived as long as the
//     entry would leak. The shared core calls lockFile and unlockFile under
//     the entry's mutex and never while a wait is in flight, and at most
//     one OS lock per entry exists, so the lock is on one of the two handles
//     at a time and lockHandle needs no lock of its own.
//
// Wine (8 at least) answers an overlapped lock request that must wait with
// ERROR_IO_PENDING but never completes it, and cannot cancel it. waitFile
// recognises such an untracked request (see untracked) and falls back to
// polling there, rather than hanging or, worse, trusting a result that
// GetOverlappedResult makes up from an untouched OVERLAPPED.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"

	"golang.org/x/sys/windows"
)

type fd = *lockHandle

// A lockHandle is the entry's synchronous handle and, while a lock taken by
// a blocking wait is held, the overlapped handle that carries it.
type lockHandle struct {
	file    windows.Handle // the entry's *os.File; owned by it
	carrier windows.Handle // overlapped handle holding the lock, or 0
}

// fileID identifies a file as os.SameFile does on Windows.
type fileID struct{ vol, idxHigh, idxLow uint32 }

// The locked byte: offset 2^63-2, length 1. Far past any real file's end,
// while the range's end (2^63-1) is still a valid signed 64-bit offset.
const (
	lockOffsetLow  = 0xFFFFFFFE
	lockOffsetHigh = 0x7FFFFFFF
)

func sysFD(f *os.File) fd { return &lockHandle{file: windows.Handle(f.Fd())} }

// separateWait reports false: a wait nobody wants any more is cancelled
// (CancelIoEx), so waiters of the other mode need not lock beside it.
func separateWait(h fd, mode lockMode) bool { return false }

// closeFD has nothing to close: the overlapped handle lives only while a
// wait or the lock it got needs it.
// waitGranted has nothing to record: the lock waitFile got is on the
// descriptor unlockFile releases.
func waitGranted(h fd, mode lockMode) {}

// createSidecar creates the file at path, unless something is there
// already. Its access control comes from the directory, as the lock
// file's does unless someone changed it; only the read-only attribute is
// copied from like.
func createSidecar(path string, like *os.File) error {
	perm := fs.FileMode(0o666)
	if st, err := like.Stat(); err == nil && st.Mode().Perm()&0o200 == 0 {
		perm = 0o444
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

func closeFD(h fd) error { return nil }

const shareAll = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE

var (
	errSymlink = errors.New("final path element is a symbolic link (refused with NoFollow or RemoveOnUnlock)")
	errDir     = errors.New("is a directory: directories cannot be locked on Windows")
	errType    = errors.New("not a regular file: devices, pipes and consoles cannot be locked")
)

func statFile(path string, noFollow bool) (fileID, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	attrs := uint32(windows.FILE_FLAG_BACKUP_SEMANTICS)
	if noFollow {
		attrs |= windows.FILE_FLAG_OPEN_REPARSE_POINT
	}
	h, err := windows.CreateFile(p, 0, shareAll, nil, windows.OPEN_EXISTING, attrs, 0)
	if err != nil {
		return fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer windows.CloseHandle(h)
	id, err := identify(h, noFollow)
	if err != nil {
		return fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return id, nil
}

func identify(h windows.Handle, noFollow bool) (fileID, error) {
	// Checked first: devices such as NUL fail the query below with errors
	// that would not say what is wrong.
	if t, err := windows.GetFileType(h); err != nil {
		return fileID{}, err
	} else if t != windows.FILE_TYPE_DISK {
		return fileID{}, errType
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fileID{}, err
	}
	switch {
	case noFollow && info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		return fileID{}, errSymlink
	case info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0:
		return fileID{}, errDir
	}
	return fileID{info.VolumeSerialNumber, info.FileIndexHigh, info.FileIndexLow}, nil
}

// openFile opens the synchronous handle that File returns. CreateFile's
// handles are not inheritable, which is Windows' close-on-exec.
func openFile(path string, c *config) (*os.File, fileID, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	create := uint32(windows.OPEN_ALWAYS)
	if c.noCreate {
		create = windows.OPEN_EXISTING
	}
	attrs := uint32(windows.FILE_ATTRIBUTE_NORMAL)
	if c.perm&0o200 == 0 {
		attrs = windows.FILE_ATTRIBUTE_READONLY
	}
	if c.noFollow {
		attrs |= windows.FILE_FLAG_OPEN_REPARSE_POINT
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, shareAll, nil, create, attrs, 0)
	if err == windows.ERROR_ACCESS_DENIED {
		// A read-only file can still be locked through a read handle.
		h2, err2 := windows.CreateFile(p, windows.GENERIC_READ, shareAll, nil, windows.OPEN_EXISTING, attrs, 0)
		if err2 == nil {
			h, err = h2, nil
		}
	}
	if err != nil {
		return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	id, err := identify(h, c.noFollow)
	if err != nil {
		windows.CloseHandle(h)
		return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), id, nil
}

func lockFlags(mode lockMode) uint32 {
	if mode == exclusive {
		return windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	return 0
}

func lockFile(h fd, mode lockMode, wait bool) error {
	if wait {
		return waitFile(h, mode, nil)
	}
	// On a synchronous handle the request never pends (ERROR_IO_PENDING is
	// an overlapped handle's answer): it is granted or refused now.
	ol := windows.Overlapped{Offset: lockOffsetLow, OffsetHigh: lockOffsetHigh}
	err := windows.LockFileEx(h.file, lockFlags(mode)|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	switch err {
	case nil:
		return nil
	case windows.ERROR_LOCK_VIOLATION:
		return errWouldBlock
	}
	return lockError(err)
}

// lockError maps the errors by which file systems and network redirectors
// say they cannot lock to errors matching errors.ErrUnsupported, so that
// callers can tell "no locks here" from a failure: file systems and SMB
// shares without locks answer STATUS_NOT_SUPPORTED (ERROR_NOT_SUPPORTED),
// other redirectors (WebDAV, some NFS clients) STATUS_INVALID_DEVICE_REQUEST
// or STATUS_NOT_IMPLEMENTED, which both become ERROR_INVALID_FUNCTION, and
// a system without LockFileEx ERROR_CALL_NOT_IMPLEMENTED.
func lockError(err error) error {
	switch err {
	case windows.ERROR_NOT_SUPPORTED, windows.ERROR_INVALID_FUNCTION, windows.ERROR_CALL_NOT_IMPLEMENTED:
		return unsupportedError{err}
	}
	return err
}

var procReOpenFile = windows.NewLazySystemDLL("kernel32.dll").NewProc("ReOpenFile")

// reopenOverlapped opens the file behind h again, for overlapped I/O.
// Reopening the handle, rather than the path, reaches the same file even if
// it was renamed or its path now names another. Read access is enough for
// LockFileEx, exclusive locks included.
func reopenOverlapped(h windows.Handle) (windows.Handle, error) {
	if err := procReOpenFile.Find(); err != nil {
		return 0, err
	}
	r, _, err := procReOpenFile.Call(uintptr(h), windows.GENERIC_READ, shareAll, windows.FILE_FLAG_OVERLAPPED)
	if windows.Handle(r) == windows.InvalidHandle {
		return 0, err
	}
	return windows.Handle(r), nil
}

// waitFile waits in the kernel for the lock in mode, on a new overlapped
// handle that keeps the lock if it is granted. If abandon is closed first,
// the request is cancelled; a lock the kernel granted before the
// cancellation took effect is kept and reported (nil), since the caller
// releases what it no longer needs.
func waitFile(h fd, mode lockMode, abandon <-chan struct{}) error {
	carrier, err := reopenOverlapped(h.file)
	if err != nil {
		return fmt.Errorf("reopen for an overlapped lock wait: %w", err)
	}
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		windows.CloseHandle(carrier)
		return fmt.Errorf("create the lock wait's event: %w", err)
	}
	// Closed only once the request has completed (awaitLock returns only
	// then): the kernel signals it until that moment.
	defer windows.CloseHandle(ev)
	err = lockOverlapped(carrier, ev, mode, abandon)
	if err != nil {
		windows.CloseHandle(carrier)
		if err == errUntracked {
			return pollLock(h, mode, abandon)
		}
		return err
	}
	h.carrier = carrier
	return nil
}

// errUntracked reports an overlapped lock request that the system answered
// ERROR_IO_PENDING without taking it over, so that it will never complete.
var errUntracked = errors.New("overlapped lock request not tracked by the system")

// untracked is stored in OVERLAPPED.Internal before a request. Windows
// replaces it with STATUS_PENDING when it issues the request, and later
// with the final status, as OVERLAPPED's documentation says; Wine (8 at
// least) does not implement lock requests that wait on overlapped handles,
// answers ERROR_IO_PENDING, leaves Internal alone and never completes them.
// No NTSTATUS has this value.
const untracked = ^uintptr(0)

func lockOverlapped(carrier, ev windows.Handle, mode lockMode, abandon <-chan struct{}) error {
	for {
		if err := windows.ResetEvent(ev); err != nil {
			return fmt.Errorf("reset the lock wait's event: %w", err)
		}
		// On the heap, and referenced until the request completes: the
		// kernel writes the result into it then.
		ol := &windows.Overlapped{Internal: untracked, Offset: lockOffsetLow, OffsetHigh: lockOffsetHigh, HEvent: ev}
		err := windows.LockFileEx(carrier, lockFlags(mode), 0, 1, 0, ol)
		if err == windows.ERROR_IO_PENDING {
			if atomic.LoadUintptr(&ol.Internal) == untracked {
				return errUntracked
			}
			err = awaitLock(carrier, ol, abandon)
		}
		if err != windows.ERROR_OPERATION_ABORTED {
			return lockError(err)
		}
		select {
		case <-abandon:
			return errAbandoned
		default:
			// Not our cancellation: Windows cancels a thread's pending
			// I/O when the thread exits, and the thread that issued the
			// request belongs to the Go scheduler. Ask again.
		}
	}
}

// awaitLock waits for the pending lock request ol to complete or abandon to
// close, whichever is first; on abandon it cancels the request and still
// waits for it to complete, so that ol and its event outlive it. It returns
// the request's result: nil if the lock was granted, even after abandon.
func awaitLock(carrier windows.Handle, ol *windows.Overlapped, abandon <-chan struct{}) error {
	// One OS thread blocks in the kernel; the caller's goroutine waits on
	// channels, so abandon is seen at once, without polling.
	done := make(chan error, 1)
	go func() {
		var n uint32
		done <- windows.GetOverlappedResult(carrier, ol, &n, true)
	}()
	select {
	case err := <-done:
		return err
	case <-abandon:
	}
	// ERROR_NOT_FOUND means the request completed meanwhile; any other
	// failure leaves nothing to do but wait for it to complete.
	_ = windows.CancelIoEx(carrier, ol)
	return <-done
}

// pollLock takes the lock by retrying non-blocking attempts, with capped,
// jittered backoff, where overlapped lock requests never complete (Wine).
// Polling is the last resort the design allows where the system offers no
// wait that can be abandoned; it keeps such systems correct rather than
// hung. Nothing was queued by the untracked request that could grant the
// lock behind our back, and its handle is closed.
func pollLock(h fd, mode lockMode, abandon <-chan struct{}) error {
	delay := backoffFirst
	for {
		switch err := lockFile(h, mode, false); err {
		case nil:
			return nil
		case errWouldBlock:
		default:
			return err
		}
		if !delay.wait(abandon) {
			return errAbandoned
		}
	}
}

// unlockFile releases the lock explicitly rather than by closing: Windows
// frees a closed handle's locks only eventually.
func unlockFile(h fd) error {
	if h.carrier == 0 {
		return unlockRange(h.file)
	}
	c := h.carrier
	h.carrier = 0
	err := unlockRange(c)
	if cerr := windows.CloseHandle(c); err == nil && cerr != nil {
		err = fmt.Errorf("close the lock's overlapped handle: %w", cerr)
	}
	return err
}

func unlockRange(h windows.Handle) error {
	ol := windows.Overlapped{Offset: lockOffsetLow, OffsetHigh: lockOffsetHigh}
	return windows.UnlockFileEx(h, 0, 1, 0, &ol)
}
