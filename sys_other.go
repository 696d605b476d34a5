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

func sysFD(f *os.File) fd { return f.Fd() }

func statFile(path string, noFollow bool) (fileID, error) {
	return fileID{}, &fs.PathError{Op: "open", Path: path, Err: errors.ErrUnsupported}
}

func openFile(path string, c *config) (*os.File, fileID, error) {
	return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: errors.ErrUnsupported}
}

func createSidecar(path string, like *os.File) (*os.File, fileID, error) {
	return nil, fileID{}, &fs.PathError{Op: "create", Path: path, Err: errors.ErrUnsupported}
}

func separateWait(fd fd, mode lockMode) bool { return false }

// waitGranted has nothing to record: the lock waitFile got is on the
// descriptor unlockFile releases.
func waitGranted(fd fd, mode lockMode) {}

// lockOnFile has nothing to move: the lock is where unlockFile releases it.
func lockOnFile(fd fd) {}

func closeFD(fd fd) error { return nil }

func lockFile(fd fd, mode lockMode) error                          { return errors.ErrUnsupported }
func waitFile(fd fd, mode lockMode, abandon <-chan struct{}) error { return errors.ErrUnsupported }
func unlockFile(fd fd) error                                       { return errors.ErrUnsupported }

func syncFile(f *os.File) error { return f.Sync() }

// removeLockFile removes the file at path, for RemoveOnUnlock.
func removeLockFile(path string) error { return os.Remove(path) }
