//go:build unix && !aix && !(solaris && !illumos) && !flock_fcntl

package flock

// The flock(2) backend. Locks belong to the open file description, so the
// entry's one descriptor carries the process's one lock; flock(1), Python's
// fcntl.flock and Rust's File::lock see and respect it.

import "golang.org/x/sys/unix"

func lockFile(fd fd, mode lockMode, wait bool) error {
	how := unix.LOCK_SH
	if mode == exclusive {
		how = unix.LOCK_EX
	}
	if !wait {
		how |= unix.LOCK_NB
	}
	for {
		switch err := unix.Flock(fd, how); err {
		case nil:
			return nil
		case unix.EINTR:
		case unix.EWOULDBLOCK:
			return errWouldBlock
		default:
			return lockError(err)
		}
	}
}

// waitFile blocks in the kernel; flock(2) offers no way to abandon the wait.
func waitFile(fd fd, mode lockMode, abandon <-chan struct{}) error {
	return lockFile(fd, mode, true)
}

func unlockFile(fd fd) error {
	for {
		if err := unix.Flock(fd, unix.LOCK_UN); err != unix.EINTR {
			return err
		}
	}
}
