//go:build unix

package flock

// What WriteFile and Update need from a Unix file system: rename over the
// target, a create-only link, and a flush of the directory.

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// matchFile gives f the permission bits (set-id and sticky bits included)
// of the file it replaces and, where the process may, its owner and group.
func matchFile(f *os.File, like fs.FileInfo) error {
	st, ok := like.Sys().(*syscall.Stat_t)
	if !ok {
		return f.Chmod(like.Mode())
	}
	fd := int(f.Fd())
	// Owner first: chown clears the set-id bits that chmod then restores.
	// Only a privileged process may give a file away; anyone may give it
	// to a group it belongs to; short of both, the file is the writer's.
	if unix.Fchown(fd, int(st.Uid), int(st.Gid)) != nil {
		unix.Fchown(fd, -1, int(st.Gid))
	}
	return ignoringEINTR(func() error { return unix.Fchmod(fd, uint32(st.Mode)&0o7777) })
}

// replaceFile renames tmp over target, atomically.
func replaceFile(tmp, target string) error {
	return os.Rename(tmp, target)
}

// placeNew moves tmp to target unless target exists (EEXIST): a hard link
// is created only where no name is, and tmp's name then goes. Once the link
// exists the file is in place: a failure to remove tmp leaves a temporary
// file behind, as a writer killed there would, and is no error.
func placeNew(tmp, target string) error {
	if err := os.Link(tmp, target); err != nil {
		return err
	}
	os.Remove(tmp)
	return nil
}

// A dirFlusher flushes a directory, so that a rename in it survives a
// crash.
type dirFlusher struct{ fd int }

// openDir opens dir for a flush after a rename: before it, so that a
// directory that cannot be opened fails the write while nothing changed.
func openDir(dir string) (dirFlusher, error) {
	for {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return dirFlusher{fd}, err
		}
	}
}

// sync flushes the directory. File systems that cannot flush a directory
// say so with EINVAL or ENOTSUP; nothing more can be done there.
func (d dirFlusher) sync() error {
	err := ignoringEINTR(func() error { return unix.Fsync(d.fd) })
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	return err
}

func (d dirFlusher) close() { unix.Close(d.fd) }

func ignoringEINTR(call func() error) error {
	for {
		if err := call(); err != unix.EINTR {
			return err
		}
	}
}
