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
// further open file descriptions of the same file, one per mode, opened the
// first time one is needed; they conflict with the entry's own like any two
// owners, so the process's goroutines can take the lock through it beside a
// wait nobody wants any more, and that wait is granted only after they let
// go. A granted wait's descriptor carries the lock until it is released,
// and is then ready for the next wait. When File is called while the lock
// is on such a descriptor, the lock is moved onto the entry's own (dup2):
// then the *os.File that File returns, and that a child process inherits,
// carries it; the entry's previous open file description, which held no
// lock (a grant conflicts with any lock beside it), is closed by the move.
// Moving only then keeps a contended handoff at the system calls a raw
// blocking flock(2) makes.

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// backendName names the backend, in messages; procLocksType is the kind of
// lock the kernel reports for its locks (Holder.Kind, /proc/locks).
const (
	backendName   = "flock"
	procLocksType = "FLOCK"
)

type fd = *flockFD

type flockFD struct {
	main int    // the entry's file
	name string // the path main was opened by
	// direct is whether lockFile and unlockFile, which do not wait, call
	// the kernel directly, without the Go runtime's bookkeeping for a call
	// that may block (see locksNeverSleep); the second lockFile asks the
	// file system (see flock).
	direct directness
	// wait holds the descriptors for blocking waits, by mode, or -1.
	wait [exclusive + 1]int
	// carrier is the mode whose wait descriptor carries the lock held, or
	// unlocked if main does (or nothing is held).
	carrier lockMode
}

// fdMem is the memory of an entry's fd, inside the entry (see sysFD).
type fdMem = flockFD

func sysFD(f *os.File, mem *fdMem) fd {
	*mem = flockFD{main: int(f.Fd()), name: f.Name(), wait: [...]int{-1, -1, -1}}
	return mem
}

func lockFile(fd fd, mode lockMode) error {
	return flock(fd.main, mode, fd)
}

// flock takes the lock on the descriptor d. A call that does not wait
// names nb, the backend's state for d's file, and goes to the kernel
// directly where the file system allows (see locksNeverSleep), once it has
// been asked; with nb nil the call waits.
func flock(d int, mode lockMode, nb *flockFD) error {
	how := unix.LOCK_SH
	if mode == exclusive {
		how = unix.LOCK_EX
	}
	direct := false
	if nb != nil {
		how |= unix.LOCK_NB
		switch nb.direct {
		case notLockedYet:
			// A file locked only once, as RemoveOnUnlock makes one per
			// lock, is not worth an fstatfs(2).
			nb.direct = askNextTime
		case askNextTime:
			nb.askDirect()
		}
		direct = nb.direct == directCalls
	}
	for {
		var err error
		if direct {
			err = flockDirect(d, how)
		} else {
			err = unix.Flock(d, how)
		}
		switch err {
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

// directness is how a descriptor's lock calls that do not wait go to the
// kernel.
type directness uint8

const (
	notLockedYet  directness = iota // ordinary calls
	askNextTime                     // ordinary calls; the next lockFile asks the file system
	directCalls                     // raw system calls: the file system's lock calls never sleep
	ordinaryCalls                   // the runtime's ordinary system-call path
)

// askDirect sets fd.direct from fd's file system.
func (fd *flockFD) askDirect() {
	fd.direct = ordinaryCalls
	if locksNeverSleep(fd.main) {
		fd.direct = directCalls
	}
}

// separateWait prepares the wait descriptor for mode and reports whether
// the wait goes through it. It runs under the entry's mutex, before the
// wait starts. The descriptor is opened with the access mode of main, so
// that moving it onto main changes nothing File's users can see but the
// offset; if that is not possible (no descriptor left, permissions changed
// since), the wait goes on main.
func separateWait(fd fd, mode lockMode) bool {
	if fd.wait[mode] >= 0 {
		return true
	}
	var st, st2 unix.Stat_t
	if unix.Fstat(fd.main, &st) != nil {
		return false
	}
	fl, err := unix.FcntlInt(uintptr(fd.main), unix.F_GETFL, 0)
	if err != nil {
		return false
	}
	// /proc reaches the very file even if its path is gone or names another
	// now; elsewhere, open the path and check it is the same file.
	for _, name := range []string{"/proc/self/fd/" + strconv.Itoa(fd.main), fd.name} {
		w, err := unix.Open(name, fl&unix.O_ACCMODE|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != nil {
			continue
		}
		if unix.Fstat(w, &st2) == nil && st2.Dev == st.Dev && st2.Ino == st.Ino {
			fd.wait[mode] = w
			return true
		}
		unix.Close(w)
	}
	return false
}

// waitFile blocks in the kernel; flock(2) offers no way to abandon the wait.
func waitFile(fd fd, mode lockMode, abandon <-chan struct{}) error {
	if w := fd.wait[mode]; w >= 0 {
		return flock(w, mode, nil)
	}
	return flock(fd.main, mode, nil)
}

// waitGranted records that the wait descriptor of mode, if the wait went
// through one, carries the lock now. It runs under the entry's mutex.
func waitGranted(fd fd, mode lockMode) {
	if fd.wait[mode] >= 0 {
		fd.carrier = mode
	}
}

// lockOnFile moves the lock held onto main if a wait descriptor carries
// it, and reports whether it did (main then refers to another open file
// description). It runs under the entry's mutex. If dup2 fails the lock
// stays where it is, and is released there.
func lockOnFile(fd fd) bool {
	if fd.carrier == unlocked {
		return false
	}
	w := fd.wait[fd.carrier]
	if dupOnto(w, fd.main) != nil {
		return false
	}
	unix.Close(w) // main refers to its open file description now
	fd.wait[fd.carrier] = -1
	fd.carrier = unlocked
	return true
}

func unlockFile(fd fd) error {
	d := fd.main
	if fd.carrier != unlocked {
		d = fd.wait[fd.carrier]
		fd.carrier = unlocked
	}
	for {
		var err error
		if fd.direct == directCalls {
			err = flockDirect(d, unix.LOCK_UN)
		} else {
			err = unix.Flock(d, unix.LOCK_UN)
		}
		if err != unix.EINTR {
			return err
		}
	}
}

// closeFD closes what sysFD's descriptor does not own.
func closeFD(fd fd) error {
	var err error
	for _, w := range fd.wait {
		if w >= 0 {
			if cerr := unix.Close(w); err == nil {
				err = cerr
			}
		}
	}
	fd.wait = [...]int{-1, -1, -1}
	fd.carrier = unlocked
	return err
}
