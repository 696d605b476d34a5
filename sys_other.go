//go:build !unix && !windows

package flock

// Platforms without file locks (js, wasip1, plan9): the package compiles and
// Open fails with an error matching errors.ErrUnsupported.

import (
	"errors"
	"io/fs"
	"os"
)

type fd = uintptr

type fileID struct{}

// fdMem is the memory of an entry's fd, inside the entry: none.
type fdMem struct{}

func sysFD(f *os.File, mem *fdMem) fd { return f.Fd() }

func statFile(path string, noFollow bool) (fileID, error) {
	return fileID{}, &fs.PathError{Op: "open", Path: path, Err: errors.ErrUnsupported}
}

func openFile(path string, c *config) (*os.File, fileID, error) {
	return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: errors.ErrUnsupported}
}

func createSidecar(path string, like fs.FileInfo, perm fs.FileMode) (*os.File, fileID, error) {
	return nil, fileID{}, &fs.PathError{Op: "create", Path: path, Err: errors.ErrUnsupported}
}

func separateWait(fd fd, mode lockMode) bool { return false }

// waitGranted has nothing to record: the lock waitFile got is on the
// descriptor unlockFile releases.
func waitGranted(fd fd, mode lockMode) {}

// lockOnFile has nothing to move: the lock is where unlockFile releases it.
func lockOnFile(fd fd) bool { return false }

func viewFile(f, view *os.File, repoint bool) (*os.File, error) {
	return nil, &fs.PathError{Op: "dup", Path: f.Name(), Err: errors.ErrUnsupported}
}

func closeFD(fd fd) error { return nil }

func lockFile(fd fd, mode lockMode) error                          { return errors.ErrUnsupported }
func waitFile(fd fd, mode lockMode, abandon <-chan struct{}) error { return errors.ErrUnsupported }
func unlockFile(fd fd) error                                       { return errors.ErrUnsupported }

func fileWritable(f *os.File) bool { return false }
func fileUnlinked(f *os.File) bool { return false }

func matchFile(f *os.File, like fs.FileInfo) error { return f.Chmod(like.Mode()) }
func replaceFile(tmp, target string) error         { return os.Rename(tmp, target) }

type dirFlusher struct{}

func openDir(dir string) (dirFlusher, error) { return dirFlusher{}, nil }
func (dirFlusher) sync() error               { return nil }
func (dirFlusher) close()                    {}

func placeNew(tmp, target string) error {
	if err := os.Link(tmp, target); err != nil {
		return err
	}
	os.Remove(tmp) // the file is in place: a leftover is no error
	return nil
}

func syncFile(f *os.File) error { return f.Sync() }

// removeLockFile removes the file at path, for RemoveOnUnlock.
func removeLockFile(path string) error { return os.Remove(path) }

var errSymlink = errors.New("final path element is a symbolic link (refused with NoFollow)")
