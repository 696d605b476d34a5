//go:build unix && !linux && !aix && !(solaris && !illumos) && !flock_fcntl

package flock

import "golang.org/x/sys/unix"

// locksNeverSleep reports false: which file systems' lock calls never
// sleep is known here for Linux only (see sys_flock_direct_linux.go), so
// every call takes the Go runtime's ordinary system-call path.
func locksNeverSleep(fd int) bool { return false }

// flockDirect is never called where locksNeverSleep is false.
func flockDirect(fd, how int) error { return unix.Flock(fd, how) }
