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
	lk, err := probeLock(int(fd))
	if err != nil {
		return nil, lockError(err)
	}
	if lk.Type != unix.F_UNLCK {
		hs = append(hs, Holder{PID: int(lk.Pid), Exclusive: lk.Type == unix.F_WRLCK, Kind: "POSIX"})
	}
	return hs, nil
}
