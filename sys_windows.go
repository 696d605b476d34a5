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
//
// File identity, and what Open refuses, are in sys_ident_windows.go; paths
// (stream paths, long paths, pending deletion) in sys_path_windows.go.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

type fd = *lockHandle

// A lockHandle is the entry's synchronous handle and, while a lock taken by
// a blocking wait is held, the overlapped handle that carries it.
type lockHandle struct {
	file    windows.Handle // the entry's *os.File; owned by it
	carrier windows.Handle // overlapped handle holding the lock, or 0
}

// The locked byte: offset 2^63-2, length 1. Far past any real file's end,
// while the range's end (2^63-1) is still a valid signed 64-bit offset.
const (
	lockOffsetLow  = 0xFFFFFFFE
	lockOffsetHigh = 0x7FFFFFFF
)

// fdMem is the memory of an entry's fd, inside the entry (see sysFD).
type fdMem = lockHandle

func sysFD(f *os.File, mem *fdMem) fd {
	*mem = lockHandle{file: windows.Handle(f.Fd())}
	return mem
}

// separateWait reports false: a wait nobody wants any more is cancelled
// (CancelIoEx), so waiters of the other mode need not lock beside it.
func separateWait(h fd, mode lockMode) bool { return false }

// waitGranted has nothing to record: the lock waitFile got is on the
// descriptor unlockFile releases.
func waitGranted(h fd, mode lockMode) {}

// lockOnFile has nothing to move: the lock is where unlockFile releases it (a lock taken by a blocking wait stays on its overlapped handle, which File does not return).
func lockOnFile(h fd) bool { return false }

// viewFile returns the *os.File that File hands out for f: a duplicate of
// f's handle (the same file object, so closing it leaves alone the lock,
// which is on another handle anyway), not inheritable. If view is such a
// duplicate still open it is returned; Windows has no dup2, and nothing
// moves a lock here, so repoint never applies.
func viewFile(f, view *os.File, repoint bool) (*os.File, error) {
	if view != nil {
		if rc, err := view.SyscallConn(); err == nil && rc.Control(func(uintptr) {}) == nil {
			return view, nil
		}
	}
	self := windows.CurrentProcess()
	var h windows.Handle
	if err := windows.DuplicateHandle(self, windows.Handle(f.Fd()), self, &h, 0, false, windows.DUPLICATE_SAME_ACCESS); err != nil {
		return nil, &fs.PathError{Op: "DuplicateHandle", Path: f.Name(), Err: err}
	}
	return os.NewFile(uintptr(h), f.Name()), nil
}

// closeFD has nothing to close: the overlapped handle lives only while a
// wait or the lock it got needs it.
func closeFD(h fd) error { return nil }

// createSidecar creates the file at path, unless something is there
// already. Its access control comes from the directory, as the lock
// file's does unless someone changed it; of perm only the read-only
// attribute exists here, and like's owner is not copied. It returns no
// file: the caller opens the sidecar as any lock file (closing a handle
// here releases no other handle's lock).
func createSidecar(path string, like fs.FileInfo, perm fs.FileMode) (*os.File, fileID, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return nil, fileID{}, nil
	}
	if err != nil {
		return nil, fileID{}, err
	}
	return nil, fileID{}, f.Close()
}

const shareAll = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE

// checkPath refuses what no handle could lock by its name alone.
func checkPath(path string) error {
	if namesStream(path) {
		return errStream
	}
	return nil
}

func statFile(path string, noFollow bool) (fileID, error) {
	if err := checkPath(path); err != nil {
		return fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	attrs := uint32(windows.FILE_FLAG_BACKUP_SEMANTICS)
	if noFollow {
		attrs |= windows.FILE_FLAG_OPEN_REPARSE_POINT
	}
	// FILE_READ_ATTRIBUTES, which no sharing mode denies, so that the
	// identity queries answer as they do on openFile's handle: a key that
	// differed between the two would never match.
	h, err := createFile(path, windows.FILE_READ_ATTRIBUTES, shareAll, windows.OPEN_EXISTING, attrs)
	if err != nil {
		return fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer windows.CloseHandle(h)
	id, _, err := identify(h, noFollow)
	if err != nil {
		return fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return id, nil
}

// readOnlyRetry reports whether an open for reading and writing that failed
// with err may succeed for reading only, which is all LockFileEx needs: the
// file or the caller's rights forbid writing (ERROR_ACCESS_DENIED), or
// another program has it open without sharing write access
// (ERROR_SHARING_VIOLATION). A file pending deletion refuses every open.
func readOnlyRetry(err error) bool {
	return err == windows.ERROR_ACCESS_DENIED || err == windows.ERROR_SHARING_VIOLATION
}

// openFile opens the synchronous handle that File returns. CreateFile's
// handles are not inheritable, which is Windows' close-on-exec.
func openFile(path string, c *config) (*os.File, fileID, error) {
	if err := checkPath(path); err != nil {
		return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	h, id, err := openHandle(path, c)
	if err != nil {
		return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), id, nil
}

func openHandle(path string, c *config) (windows.Handle, fileID, error) {
	create := uint32(windows.OPEN_ALWAYS)
	if c.noCreate {
		create = windows.OPEN_EXISTING
	}
	attrs := uint32(windows.FILE_ATTRIBUTE_NORMAL)
	if c.perm&0o200 == 0 {
		attrs = windows.FILE_ATTRIBUTE_READONLY
	}
	link := uint32(0)
	if c.noFollow {
		link = windows.FILE_FLAG_OPEN_REPARSE_POINT
	}
	access := uint32(windows.GENERIC_READ | windows.GENERIC_WRITE)
	h, err := createFile(path, access, shareAll, create, attrs|link)
	if readOnlyRetry(err) {
		// If reading is refused too, the first error says why.
		if h2, err2 := createFile(path, windows.GENERIC_READ, shareAll, windows.OPEN_EXISTING, attrs|link); err2 == nil {
			if c.forWriting {
				windows.CloseHandle(h2) // Windows locks are per handle: closing this one drops none
				return 0, fileID{}, writeRefusedError{err}
			}
			h, err, access = h2, nil, windows.GENERIC_READ
		}
	}
	if err != nil {
		return 0, fileID{}, err
	}
	id, reparse, err := identify(h, c.noFollow)
	if err == nil && reparse {
		// Not a link, but opened as the reparse point itself, whose content
		// may not be the file's (WOF, deduplication, cloud files): open the
		// file, and make sure it is still the one just looked at.
		h2, err2 := createFile(path, access, shareAll, windows.OPEN_EXISTING, attrs)
		windows.CloseHandle(h)
		if err2 != nil {
			return 0, fileID{}, err2
		}
		h = h2
		var id2 fileID
		id2, _, err = identify(h, false)
		switch {
		case err != nil:
		case id.uniq != 0:
			id = id2 // no identity to compare: a fresh one either way
		case id2 != id:
			err = errors.New("the file at the path changed while it was opened")
		}
	}
	if err == nil && c.removeOnUnlock {
		err = removeSupported(h, id)
	}
	if err != nil {
		windows.CloseHandle(h)
		return 0, fileID{}, err
	}
	return h, id, nil
}

// removeSupported refuses RemoveOnUnlock where it cannot work: the file
// has no identity (errNoIdentity), or its volume does not delete with POSIX
// semantics (errNoPosixDelete; see removeRefusal).
func removeSupported(h windows.Handle, id fileID) error {
	if id.uniq != 0 {
		return errNoIdentity
	}
	return removeRefusal(volumeFlags(h))
}

func lockFlags(mode lockMode) uint32 {
	if mode == exclusive {
		return windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	return 0
}

// lockFile makes a non-blocking attempt on the entry's own handle.
func lockFile(h fd, mode lockMode) error {
	// On a synchronous handle the request never pends (ERROR_IO_PENDING is
	// an overlapped handle's answer): it is granted or refused within the
	// call, so ol is not used after it returns.
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

// unlockFile releases the lock. It unlocks explicitly rather than by
// closing: a lock on the entry's own handle must go while the handle stays
// open, and Microsoft's documentation leaves the time at which a closed
// handle's locks are released to "available system resources", so a
// release that others must see is not left to the close.
//
// The overlapped handle is closed whatever UnlockFileEx said, which
// releases any lock still on it; whether a failed unlock counts: see
// unlockResult.
func unlockFile(h fd) error {
	if h.carrier == 0 {
		return unlockResult(unlockRange(h.file), nil, false)
	}
	c := h.carrier
	h.carrier = 0
	err := unlockRange(c)
	return unlockResult(err, windows.CloseHandle(c), true)
}

// unlockResult decides what an unlock's failures mean; a non-nil result
// makes Unlock panic, so it is kept for faults.
//
// On the entry's own handle, ERROR_NOT_LOCKED says there is no lock to
// release, which is what the caller wants (the lock went with a lost
// network session); any other failure is reported, since the handle stays
// open and, for all we know, keeps the lock (a reconnected SMB handle may).
//
// On the overlapped handle (carrier), which is closed in any case, a
// failure that says the lock or the handle's network session is gone
// (lockGone) is no failure once the close succeeded: nothing is left to
// release. Any other unlock failure is reported even though the close
// released whatever the handle held: an UnlockFileEx that fails for
// another reason on a handle that should hold the lock is a fault (the
// lock was not where the backend thought, or the handle was not ours), and
// hiding it would hide that. A failed close is reported too.
func unlockResult(unlockErr, closeErr error, carrier bool) error {
	switch {
	case carrier && closeErr != nil:
		return fmt.Errorf("close the lock's overlapped handle: %w", errors.Join(closeErr, unlockErr))
	case unlockErr == nil, unlockErr == windows.ERROR_NOT_LOCKED:
		return nil
	case carrier && lockGone(unlockErr):
		return nil
	}
	return unlockErr
}

// lockGone reports whether an UnlockFileEx failure says there is no lock
// left to release because the file's network session went away: the
// server or share dropped it (ERROR_NETNAME_DELETED), the connection failed
// (ERROR_UNEXP_NET_ERR, ERROR_VC_DISCONNECTED, ERROR_CONNECTION_ABORTED),
// or the network resource is no longer available (ERROR_DEV_NOT_EXIST,
// ERROR_BAD_NETPATH, ERROR_NETWORK_UNREACHABLE). ERROR_NOT_LOCKED (no
// lock in the range) is taken on either handle.
func lockGone(err error) bool {
	switch err {
	case windows.ERROR_NOT_LOCKED,
		windows.ERROR_NETNAME_DELETED,
		windows.ERROR_UNEXP_NET_ERR,
		windows.ERROR_VC_DISCONNECTED,
		windows.ERROR_CONNECTION_ABORTED,
		windows.ERROR_DEV_NOT_EXIST,
		windows.ERROR_BAD_NETPATH,
		windows.ERROR_NETWORK_UNREACHABLE:
		return true
	}
	return false
}

func unlockRange(h windows.Handle) error {
	ol := windows.Overlapped{Offset: lockOffsetLow, OffsetHigh: lockOffsetHigh}
	return windows.UnlockFileEx(h, 0, 1, 0, &ol)
}
