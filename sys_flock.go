//go:build unix && !aix && !(solaris && !illumos) && !flock_fcntl

package flock

// The flock(2) backend. Locks belong to the open file description, so the
// entry's one descriptor carries the process's one lock; flock(1), Python's
// fcntl.flock and Rust's File::lock see and respect it.
//
// A blocking flock(2) cannot be abandoned, and a wait that outlives its
// caller must not sit on the descriptor the process locks through: flock
// converts a lock in place, so a pending LOCK_EX granted later would turn
// the readers' LOCK_SH, taken meanwhile, into LOCK_EX (and releasing the
// unwanted grant would release theirs). Blocking waits therefore go through
// a second open file description of the same file, opened the first time
// one is needed; the two conflict like any two owners, so the process's
// goroutines can take the lock through the first beside a wait nobody wants
// any more, and that wait is granted only after they let go.

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

type fd = *flockFD

type flockFD struct {
	main   int    // the entry's file
	name   string // the path main was opened by
	wait   int    // the descriptor for blocking waits, or -1
	onWait bool   // the lock held was granted through wait
}

func sysFD(f *os.File) fd { return &flockFD{main: int(f.Fd()), name: f.Name(), wait: -1} }

func lockFile(fd fd, mode lockMode, wait bool) error {
	return flock(fd.main, mode, wait)
}

func flock(fd int, mode lockMode, wait bool) error {
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

// separateWait prepares the wait descriptor and reports whether waits go
// through it. It runs under the entry's mutex, before the wait starts.
func separateWait(fd fd) bool {
	if fd.wait >= 0 {
		return true
	}
	var st, st2 unix.Stat_t
	if unix.Fstat(fd.main, &st) != nil {
		return false
	}
	// /proc reaches the very file even if its path is gone or names another
	// now; elsewhere, open the path and check it is the same file.
	for _, name := range []string{"/proc/self/fd/" + strconv.Itoa(fd.main), fd.name} {
		w, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		if unix.Fstat(w, &st2) == nil && st2.Dev == st.Dev && st2.Ino == st.Ino {
			fd.wait = w
			return true
		}
		unix.Close(w)
	}
	return false
}

// waitFile blocks in the kernel; flock(2) offers no way to abandon the wait.
func waitFile(fd fd, mode lockMode, abandon <-chan struct{}) error {
	if fd.wait < 0 {
		return flock(fd.main, mode, true)
	}
	return flock(fd.wait, mode, true)
}

// waitGranted records that the lock waitFile got is the one held. It runs
// under the entry's mutex, which unlockFile's callers hold too.
func waitGranted(fd fd) { fd.onWait = fd.wait >= 0 }

func unlockFile(fd fd) error {
	d := fd.main
	if fd.onWait {
		d, fd.onWait = fd.wait, false
	}
	for {
		if err := unix.Flock(d, unix.LOCK_UN); err != unix.EINTR {
			return err
		}
	}
}

// closeFD closes what sysFD's descriptor does not own.
func closeFD(fd fd) error {
	if fd.wait < 0 {
		return nil
	}
	w := fd.wait
	fd.wait = -1
	return unix.Close(w)
}
