//go:build windows

package flock

// The Windows backend's blocking wait: an overlapped LockFileEx on a
// handle reopened for it, cancelled with CancelIoEx when its caller leaves,
// and polling where the handle cannot be reopened.

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/windows"
)

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

// reopen is reopenOverlapped; a variable so that tests can make it fail.
var reopen = reopenOverlapped

// waitFile waits in the kernel for the lock in mode, on a new overlapped
// handle that keeps the lock if it is granted. If abandon is closed first,
// the request is cancelled; a lock the kernel granted before the
// cancellation took effect is kept and reported (nil), since the caller
// releases what it no longer needs.
//
// Where the file cannot be reopened, the wait polls the entry's own handle
// instead (pollLock). ReOpenFile fails for a file pending deletion
// (ERROR_ACCESS_DENIED: it was removed while open, on a file system that
// does not delete with POSIX semantics) and on redirectors that cannot
// reopen;
// none of those stops the entry's own handle from locking, and any fault of
// that handle is reported by the first attempt.
func waitFile(h fd, mode lockMode, abandon <-chan struct{}) error {
	carrier, err := reopen(h.file)
	if err != nil {
		return pollLock(h, mode, abandon)
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
	if err == errUntracked {
		// lockRequest closed carrier.
		return pollLock(h, mode, abandon)
	}
	if err != nil {
		windows.CloseHandle(carrier)
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

// lockOverlapped requests the lock on carrier until the request is not
// one the system cancelled by itself. On errUntracked carrier is closed
// (see lockRequest).
func lockOverlapped(carrier, ev windows.Handle, mode lockMode, abandon <-chan struct{}) error {
	for {
		if err := windows.ResetEvent(ev); err != nil {
			return fmt.Errorf("reset the lock wait's event: %w", err)
		}
		err := lockRequest(carrier, ev, mode, abandon)
		if err != windows.ERROR_OPERATION_ABORTED {
			return err
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

// lockRequest makes one overlapped lock request and returns its result.
// On errUntracked it has closed carrier; on any other result carrier is
// the caller's.
// The kernel writes the result into the OVERLAPPED when the request
// completes, long after LockFileEx returned, so it is pinned (the garbage
// collector must neither move nor free it) until then.
func lockRequest(carrier, ev windows.Handle, mode lockMode, abandon <-chan struct{}) error {
	ol := &windows.Overlapped{Internal: untracked, Offset: lockOffsetLow, OffsetHigh: lockOffsetHigh, HEvent: ev}
	var pin runtime.Pinner
	pin.Pin(ol)
	defer pin.Unpin()
	err := windows.LockFileEx(carrier, lockFlags(mode), 0, 1, 0, ol)
	if err == windows.ERROR_IO_PENDING {
		if atomic.LoadUintptr(&ol.Internal) == untracked {
			// Never to be completed (Wine), as far as anything shows.
			// Should the request have been queued after all, cancelling
			// it and closing carrier end it, and both happen here, before
			// the deferred Unpin lets ol go: nothing may write ol after.
			_ = windows.CancelIoEx(carrier, ol)
			windows.CloseHandle(carrier)
			return errUntracked
		}
		err = awaitLock(carrier, ol, abandon)
	}
	if err == windows.ERROR_OPERATION_ABORTED {
		return err
	}
	return lockError(err)
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

// pollLock takes the lock on the entry's own handle by retrying
// non-blocking attempts, with capped, jittered backoff, where no
// abandonable wait can be made: overlapped lock requests never complete
// (Wine), or the file cannot be reopened for one. Polling is the last
// resort the design allows there; it keeps such cases correct rather than
// hung or failed. Nothing queued in the kernel can grant the lock behind
// our back: an untracked request's handle is closed.
func pollLock(h fd, mode lockMode, abandon <-chan struct{}) error {
	delay := backoffFirst
	for {
		switch err := lockFile(h, mode); err {
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
