//go:build !unix || aix || (solaris && !illumos)

package main

import (
	"errors"
	"time"
)

// fdLockSupported says whether the FD form works here. It does not: without
// flock(2) a lock belongs to the process that takes it (fcntl) or to its
// handle (Windows), so it could not outlive flock for the caller.
const fdLockSupported = false

func lockFD(fd int, mode lockMode, nonblock bool, limit time.Duration) (bool, error) {
	return false, errors.ErrUnsupported
}
