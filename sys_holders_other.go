//go:build !linux && !((darwin || freebsd) && !flock_fcntl) && !(aix || (solaris && !illumos) || (unix && flock_fcntl))

package flock

// Holders where the package does not know how to list them: NetBSD,
// OpenBSD, DragonFly BSD and illumos (whether F_GETLK reports flock(2)
// locks there, and with which pid, is not established here; the BSDs'
// lock code descends from the same 4.4BSD source as FreeBSD's, so it may),
// Windows (the Restart Manager lists processes that have a file open, not
// those that lock it), js, wasip1 and plan9.

import "errors"

func sysHolders(fd fd, id fileID, own lockMode) ([]Holder, error) {
	return nil, errors.ErrUnsupported
}

func holderCommand(pid int) string { return "" }
