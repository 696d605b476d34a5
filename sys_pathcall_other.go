//go:build unix && !(linux && (amd64 || arm64))

package flock

import (
	"os"

	"golang.org/x/sys/unix"
)

// The system calls that take a path, as x/sys/unix and os make them (see
// sys_pathcall_linux.go for the platforms where the path is not copied to
// the heap).

// statPath is unix.Lstat (noFollow) or unix.Stat.
func statPath(path string, noFollow bool, st *unix.Stat_t) error {
	if noFollow {
		return unix.Lstat(path, st)
	}
	return unix.Stat(path, st)
}

// openPath is unix.Open.
func openPath(path string, flag int, perm uint32) (int, error) {
	return unix.Open(path, flag, perm)
}

// removePath is os.Remove.
func removePath(path string) error { return os.Remove(path) }
