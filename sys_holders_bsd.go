//go:build (darwin || freebsd) && !flock_fcntl

package flock

// Holders on macOS, iOS and FreeBSD (flock(2) backend): fcntl(F_GETLK).
//
// These kernels keep flock(2) locks and fcntl(2) record locks in one list
// per vnode, and F_GETLK looks through all of it: a flock(2) lock held
// through another open file is reported as a conflict, whole-file, with
// l_pid -1, since its owner is an open file and not a process. (From the
// kernel sources: XNU bsd/kern/kern_lockf.c, lf_advlock gives a lock
// without F_POSIX no owner process and lf_getlock reports -1 for it;
// FreeBSD sys/kern/kern_lockf.c, lf_advlockasync gives an F_FLOCK owner
// lo_pid -1, which lf_getlock returns as l_pid.) Record locks are reported
// with their process's pid.

import "golang.org/x/sys/unix"

// sysHolders reports the lock this process holds, if it holds one (its
// own flock(2) lock is on an open file, not on the probing process, so
// F_GETLK would report it as another's, without a pid), and otherwise the
// one conflicting lock that a whole-file write-lock probe finds.
func sysHolders(fd fd, id fileID, own lockMode) ([]Holder, error) {
	if own != unlocked {
		return ownHolder(own, "FLOCK"), nil
	}
	lk, err := probeLock(fd.main)
	if err != nil {
		return nil, lockError(err)
	}
	if lk.Type == unix.F_UNLCK {
		return nil, nil
	}
	h := Holder{PID: int(lk.Pid), Exclusive: lk.Type == unix.F_WRLCK, Kind: "FLOCK"}
	if h.PID > 0 {
		h.Kind = "POSIX"
	}
	return []Holder{h}, nil
}
