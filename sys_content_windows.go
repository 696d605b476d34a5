package flock

// What WriteFile and Update need from Windows: MoveFileEx with write-through.

import (
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// matchFile keeps the read-only attribute of the file replaced, the one
// permission bit Windows has (os.Chmod maps it).
func matchFile(f *os.File, like fs.FileInfo) error { return f.Chmod(like.Mode()) }

// replaceFile moves tmp over target: MoveFileEx replaces atomically, and
// MOVEFILE_WRITE_THROUGH returns only once the move is on disk, which is
// what flushing the directory gives on Unix.
func replaceFile(tmp, target string) error {
	return moveFile(tmp, target, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH)
}

// placeNew moves tmp to target, failing with ERROR_ALREADY_EXISTS (which
// matches fs.ErrExist) if target exists.
func placeNew(tmp, target string) error {
	return moveFile(tmp, target, windows.MOVEFILE_WRITE_THROUGH)
}

// moveFile retries, for about a second, a move that another program's open
// handle refuses (ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION: a handle
// without FILE_SHARE_DELETE, as os.Open makes): Windows offers no wait for
// a handle to close.
func moveFile(from, to string, flags uint32) error {
	f, err := windows.UTF16PtrFromString(from)
	if err != nil {
		return err
	}
	t, err := windows.UTF16PtrFromString(to)
	if err != nil {
		return err
	}
	delay := time.Millisecond
	for deadline := time.Now().Add(time.Second); ; {
		err = windows.MoveFileEx(f, t, flags)
		if (err != windows.ERROR_ACCESS_DENIED && err != windows.ERROR_SHARING_VIOLATION) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
		if delay < 64*time.Millisecond {
			delay *= 2
		}
	}
}

// A dirFlusher has nothing to do here: the move was written through.
type dirFlusher struct{}

func openDir(dir string) (dirFlusher, error) { return dirFlusher{}, nil }
func (dirFlusher) sync() error               { return nil }
func (dirFlusher) close()                    {}
