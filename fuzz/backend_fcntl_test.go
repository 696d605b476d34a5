//go:build aix || (solaris && !illumos) || (unix && flock_fcntl)

package fuzz

// fcntlBackend is whether the package locks with fcntl(2) here (its build
// constraint is sys_fcntl.go's): a descriptor open for reading only, as a
// directory's is, then takes shared locks only.
const fcntlBackend = true
