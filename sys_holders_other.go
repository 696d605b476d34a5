//go:build !linux && !(aix || (solaris && !illumos) || (unix && flock_fcntl))

package flock

// Holders where the OS offers no documented way to list them: macOS, iOS
// and the BSDs (flock(2) locks; F_GETLK is documented for fcntl record
// locks only), illumos, Windows (the Restart Manager lists processes that
// have a file open, not those that lock it), js, wasip1 and plan9.

import "errors"

func sysHolders(fd fd, id fileID, own lockMode) ([]Holder, error) {
	return nil, errors.ErrUnsupported
}
