//go:build unix && !aix && !(solaris && !illumos)

package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// fdLockSupported says whether the FD form works here: where flock(2)
// exists, the lock belongs to the open file that the caller shares with
// flock, and so outlives flock.
const fdLockSupported = true

// maxPoll bounds the interval between attempts of a -w wait in the FD form.
const maxPoll = 25 * time.Millisecond

// lockFD applies mode to the inherited descriptor fd with flock(2). It
// returns false, nil if the lock is held elsewhere and nonblock is set or
// limit (if not 0) passed.
//
// A blocking flock(2) cannot be abandoned from Go (the runtime restarts
// interrupted system calls), and abandoning it by exiting could leave the
// caller's open file locked just after flock reported a timeout. So a wait
// with a limit polls, never more than maxPoll apart; a wait without one
// blocks in the kernel, as util-linux does, until the lock comes or a
// signal ends flock.
func lockFD(fd int, mode lockMode, nonblock bool, limit time.Duration) (bool, error) {
	if fd < 0 {
		return false, unix.EBADF
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		return false, err
	}
	if flags&unix.FD_CLOEXEC != 0 {
		// Opened by this process (the Go runtime opens everything
		// close-on-exec), so not a descriptor the caller passed in.
		return false, unix.EBADF
	}
	how := unix.LOCK_EX
	switch mode {
	case modeShared:
		how = unix.LOCK_SH
	case modeUnlock:
		how = unix.LOCK_UN
	}
	if !nonblock && limit == 0 {
		return true, flockFD(fd, how)
	}
	deadline := time.Now().Add(limit)
	delay := time.Millisecond
	for {
		err := flockFD(fd, how|unix.LOCK_NB)
		if err != unix.EWOULDBLOCK {
			return err == nil, err
		}
		left := time.Until(deadline)
		if nonblock || left <= 0 {
			return false, nil
		}
		time.Sleep(min(delay, left))
		delay = min(2*delay, maxPoll)
	}
}

func flockFD(fd, how int) error {
	for {
		if err := unix.Flock(fd, how); err != unix.EINTR {
			return err
		}
	}
}
