//go:build aix || (solaris && !illumos) || (unix && flock_fcntl)

package flock

// The fcntl(2) backend, for AIX and Solaris, which have no flock(2). It is
// also built on any Unix with the build tag flock_fcntl, so that its tests
// run where flock(2) exists.
//
// POSIX record locks belong to the process, not the descriptor: two
// descriptors, or two goroutines, of one process never conflict, and
// closing any descriptor of the file releases the process's lock. The
// in-process layer makes that safe: one descriptor per file per process,
// never closed while it carries a lock, and one OS lock shared or owned
// through the gate. The lock covers the whole file (start 0, length 0), as
// lockf(3) and Python's fcntl.lockf(fd, op) do.

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// backendName names the backend, in messages; procLocksType is the kind of
// lock the kernel reports for its locks (Holder.Kind, /proc/locks).
const (
	backendName   = "fcntl"
	procLocksType = "POSIX"
)

type fd = int

// fdMem is the memory of an entry's fd, inside the entry: none, an fd is
// the descriptor itself.
type fdMem struct{}

func sysFD(f *os.File, mem *fdMem) fd { return int(f.Fd()) }

// separateWait reports false: record locks belong to the process, so no
// second descriptor is a separate owner. A wait nobody wants any more keeps
// the file until it is granted, then releases it.
func separateWait(fd fd, mode lockMode) bool { return false }

// waitGranted has nothing to record: the lock waitFile got is on the
// descriptor unlockFile releases.
func waitGranted(fd fd, mode lockMode) {}

// lockOnFile has nothing to move: the lock is where unlockFile releases it.
func lockOnFile(fd fd) bool { return false }

func closeFD(fd fd) error { return nil }

func lockFile(fd fd, mode lockMode) error {
	return setlk(fd, mode, false, nil)
}

func waitFile(fd fd, mode lockMode, abandon <-chan struct{}) error {
	return setlk(fd, mode, true, abandon)
}

func setlk(fd fd, mode lockMode, wait bool, abandon <-chan struct{}) error {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: 0, Len: 0}
	if mode == exclusive {
		lk.Type = unix.F_WRLCK
	}
	cmd := unix.F_SETLK
	if wait {
		cmd = unix.F_SETLKW
	}
	delay := backoffFirst
	for {
		switch err := unix.FcntlFlock(uintptr(fd), cmd, &lk); err {
		case nil:
			return nil
		case unix.EINTR:
		case unix.EAGAIN, unix.EACCES:
			return errWouldBlock
		case unix.EBADF:
			if mode == exclusive {
				return &readOnlyError{}
			}
			return err
		case unix.EDEADLK:
			// The kernel's deadlock detection treats a whole process as
			// one owner, so in a threaded program it reports deadlocks
			// that are not there. Back off (capped, jittered) and retry.
			if !delay.wait(abandon) {
				return errAbandoned
			}
		default:
			return lockError(err)
		}
	}
}

type readOnlyError struct{}

func (*readOnlyError) Error() string { return errReadOnly.Error() }
func (*readOnlyError) Is(target error) bool {
	return target == fs.ErrPermission || target == errReadOnly
}

func unlockFile(fd fd) error {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: 0, Len: 0}
	for {
		if err := unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk); err != unix.EINTR {
			return err
		}
	}
}
