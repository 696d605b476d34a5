//go:build aix || (solaris && !illumos) || (unix && flock_fcntl)

package flock

// What the fcntl backend looks like from outside, for the tests.
const (
	backendName   = "fcntl"
	procLocksType = "POSIX"
)
