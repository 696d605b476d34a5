//go:build !linux && (darwin || freebsd || aix || (solaris && !illumos) || (unix && flock_fcntl))

package flock

// What the Holders of every platform that asks fcntl(F_GETLK) shares
// (sys_holders_bsd.go, sys_holders_fcntl.go).

import "golang.org/x/sys/unix"

// probeLock asks F_GETLK, through fd, for a lock that conflicts with a
// whole-file write lock: the result's Type is F_UNLCK if there is none.
func probeLock(fd int) (unix.Flock_t, error) {
	probe := func(typ int16) (unix.Flock_t, error) {
		for {
			lk := unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 0}
			if err := unix.FcntlFlock(uintptr(fd), unix.F_GETLK, &lk); err != unix.EINTR {
				return lk, err
			}
		}
	}
	lk, err := probe(unix.F_WRLCK)
	if err == unix.EBADF {
		// Some systems refuse a write-lock probe through a descriptor
		// open for reading only; a read-lock probe still finds a writer.
		lk, err = probe(unix.F_RDLCK)
	}
	return lk, err
}

// holderCommand returns "": F_GETLK tells nothing of the holder but its pid.
func holderCommand(pid int) string { return "" }
