//go:build unix && !aix && !(solaris && !illumos) && !flock_fcntl

package flock

// What the flock(2) backend looks like from outside, for the tests.
const (
	backendName = "flock"
	// procLocksType is how /proc/locks names the backend's locks.
	procLocksType = "FLOCK"
)
