//go:build !(aix || (solaris && !illumos) || (unix && flock_fcntl))

package fuzz

// fcntlBackend is whether the package locks with fcntl(2) here; see
// backend_fcntl_test.go.
const fcntlBackend = false
