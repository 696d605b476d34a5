//go:build unix

package flock

// What every Unix backend shares: opening the lock file and its identity.

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

type fd = int

// fileID identifies a file as os.SameFile does on Unix.
type fileID struct{ dev, ino uint64 }

func sysFD(f *os.File) fd { return int(f.Fd()) }

// statFile returns the identity of the file at path without opening it.
func statFile(path string, noFollow bool) (fileID, error) {
	var st unix.Stat_t
	var err error
	for {
		if noFollow {
			err = unix.Lstat(path, &st)
		} else {
			err = unix.Stat(path, &st)
		}
		if err != unix.EINTR {
			break
		}
	}
	if err == nil {
		err = checkType(uint32(st.Mode))
	}
	if err != nil {
		return fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, nil
}

var (
	errSymlink = errors.New("final path element is a symbolic link (NoFollow)")
	errType    = errors.New("not a regular file or directory")
)

func checkType(mode uint32) error {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR:
		return nil
	case unix.S_IFLNK:
		return errSymlink
	}
	return errType
}

// openFile opens the lock file close-on-exec (os.OpenFile always does),
// read-write if it may, else read-only: flock(1) locks files and
// directories it can only read.
func openFile(path string, c *config) (*os.File, fileID, error) {
	flag := os.O_RDWR
	if !c.noCreate {
		flag |= os.O_CREATE
	}
	if c.noFollow {
		flag |= unix.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flag, c.perm)
	if err != nil && (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EISDIR)) {
		var err2 error
		f, err2 = os.OpenFile(path, flag&^(os.O_RDWR|os.O_CREATE), 0)
		if err2 == nil {
			err = nil
		}
	}
	if err != nil {
		return nil, fileID{}, err
	}
	var st unix.Stat_t
	err = unix.Fstat(int(f.Fd()), &st)
	if err == nil {
		err = checkType(uint32(st.Mode))
	}
	if err != nil {
		f.Close()
		return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return f, fileID{uint64(st.Dev), uint64(st.Ino)}, nil
}

// lockError maps the errors by which file systems say they cannot lock to
// errors matching errors.ErrUnsupported.
func lockError(err error) error {
	if err == unix.ENOLCK || err == unix.ENOTSUP || err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		return unsupportedError{err}
	}
	return err
}
