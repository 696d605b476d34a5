//go:build !linux && (aix || (solaris && !illumos) || (unix && flock_fcntl))

package flock

// Holders on fcntl platforms other than Linux: fcntl(F_GETLK).

import "golang.org/x/sys/unix"

// sysHolders probes the whole file with a write lock: F_GETLK returns one
// lock that conflicts with it, held by another process, if there is one.
// It never reports the caller's own locks, so the lock this process holds
// (own) is added from the package's state.
func sysHolders(fd fd, id fileID, own lockMode) ([]Holder, error) {
	hs := ownHolder(own, "POSIX")
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
	if err != nil {
		return nil, lockError(err)
	}
	if lk.Type != unix.F_UNLCK {
		hs = append(hs, Holder{PID: int(lk.Pid), Exclusive: lk.Type == unix.F_WRLCK, Kind: "POSIX"})
	}
	return hs, nil
}

// holderCommand returns "": F_GETLK tells nothing of the holder but its pid.
func holderCommand(pid int) string { return "" }
