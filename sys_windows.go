//go:build windows

package flock

// The Windows backend: LockFileEx on one byte far past any data. Windows
// locks are mandatory (a locked range cannot be read or written through
// other handles), so locking the file's real content would break readers;
// a range no file reaches leaves the content free. Other handles on the
// same file, in this or another process, conflict as flock(2) locks do.

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

type fd = windows.Handle

// fileID identifies a file as os.SameFile does on Windows.
type fileID struct{ vol, idxHigh, idxLow uint32 }

// The locked byte: offset 2^63-2, length 1.
const (
	lockOffsetLow  = 0xFFFFFFFE
	lockOffsetHigh = 0x7FFFFFFF
)

func sysFD(f *os.File) fd { return windows.Handle(f.Fd()) }

const shareAll = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE

var (
	errSymlink = errors.New("final path element is a symbolic link (NoFollow)")
	errDir     = errors.New("is a directory: directories cannot be locked on Windows")
)

func statFile(path string, noFollow bool) (fileID, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	attrs := uint32(windows.FILE_FLAG_BACKUP_SEMANTICS)
	if noFollow {
		attrs |= windows.FILE_FLAG_OPEN_REPARSE_POINT
	}
	h, err := windows.CreateFile(p, 0, shareAll, nil, windows.OPEN_EXISTING, attrs, 0)
	if err != nil {
		return fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer windows.CloseHandle(h)
	id, err := identify(h, noFollow)
	if err != nil {
		return fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return id, nil
}

func identify(h windows.Handle, noFollow bool) (fileID, error) {
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fileID{}, err
	}
	switch {
	case noFollow && info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		return fileID{}, errSymlink
	case info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0:
		return fileID{}, errDir
	}
	return fileID{info.VolumeSerialNumber, info.FileIndexHigh, info.FileIndexLow}, nil
}

func openFile(path string, c *config) (*os.File, fileID, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	create := uint32(windows.OPEN_ALWAYS)
	if c.noCreate {
		create = windows.OPEN_EXISTING
	}
	attrs := uint32(windows.FILE_ATTRIBUTE_NORMAL)
	if c.perm&0o200 == 0 {
		attrs = windows.FILE_ATTRIBUTE_READONLY
	}
	if c.noFollow {
		attrs |= windows.FILE_FLAG_OPEN_REPARSE_POINT
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, shareAll, nil, create, attrs, 0)
	if err == windows.ERROR_ACCESS_DENIED {
		// A read-only file can still be locked through a read handle.
		h2, err2 := windows.CreateFile(p, windows.GENERIC_READ, shareAll, nil, windows.OPEN_EXISTING, attrs, 0)
		if err2 == nil {
			h, err = h2, nil
		}
	}
	if err != nil {
		return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	id, err := identify(h, c.noFollow)
	if err != nil {
		windows.CloseHandle(h)
		return nil, fileID{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), id, nil
}

func lockFile(h fd, mode lockMode, wait bool) error {
	var flags uint32
	if mode == exclusive {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	if !wait {
		flags |= windows.LOCKFILE_FAIL_IMMEDIATELY
	}
	ol := windows.Overlapped{Offset: lockOffsetLow, OffsetHigh: lockOffsetHigh}
	switch err := windows.LockFileEx(h, flags, 0, 1, 0, &ol); err {
	case nil:
		return nil
	case windows.ERROR_LOCK_VIOLATION, windows.ERROR_IO_PENDING:
		return errWouldBlock
	case windows.ERROR_NOT_SUPPORTED, windows.ERROR_INVALID_FUNCTION:
		return unsupportedError{err}
	default:
		return err
	}
}

// waitFile blocks in LockFileEx on the synchronous handle; the wait cannot
// be abandoned yet.
func waitFile(h fd, mode lockMode, abandon <-chan struct{}) error {
	return lockFile(h, mode, true)
}

func unlockFile(h fd) error {
	ol := windows.Overlapped{Offset: lockOffsetLow, OffsetHigh: lockOffsetHigh}
	return windows.UnlockFileEx(h, 0, 1, 0, &ol)
}
