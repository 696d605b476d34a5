//go:build unix

package flock

// What every Unix backend shares: opening the lock file and its identity.

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fileID identifies a file as os.SameFile does on Unix.
type fileID struct{ dev, ino uint64 }

// statFile returns the identity of the file at path without opening it.
func statFile(path string, noFollow bool) (fileID, error) {
	var st unix.Stat_t
	var err error
	for {
		if err = statPath(path, noFollow, &st); err != unix.EINTR {
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
	errSymlink = errors.New("final path element is a symbolic link (refused with NoFollow or RemoveOnUnlock)")
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

// openFile opens the lock file close-on-exec, read-write if it may, else
// read-only: flock(1) locks files and directories it can only read.
func openFile(path string, c *config) (*os.File, fileID, error) {
	flag := os.O_RDWR
	if !c.noCreate {
		flag |= os.O_CREATE
	}
	if c.noFollow {
		flag |= unix.O_NOFOLLOW
	}
	f, err := open(path, flag, c.perm)
	if err != nil && c.forWriting && readOnlyWillDo(err) {
		return nil, fileID{}, refuseReadOnly(path, err)
	}
	if err != nil && readOnlyWillDo(err) {
		f2, err2 := open(path, flag&^(os.O_RDWR|os.O_CREATE), 0)
		switch {
		case err2 == nil:
			f, err = f2, nil
		case errors.Is(err, unix.EISDIR):
			err = err2 // "is a directory" says nothing; why reading failed does
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

// open opens path as os.OpenFile does (close-on-exec, errors as
// *fs.PathError), but as a blocking descriptor that the runtime's poller
// never sees: os.OpenFile would make it non-blocking and try to register
// it, and the first Fd would make it blocking again, five system calls a
// lock file does not need (RemoveOnUnlock opens one per lock).
func open(path string, flag int, perm fs.FileMode) (*os.File, error) {
	for {
		fd, err := openPath(path, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
		switch err {
		case nil:
			return os.NewFile(uintptr(fd), path), nil
		case unix.EINTR:
			continue
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
}

// refuseReadOnly returns the error of ForWriting for a file that failed to
// open for writing with err: writeRefusedError if it could be read (asked
// of access(2), not by opening it: closing a descriptor of a file the
// process locks would drop the lock on fcntl platforms), else err.
func refuseReadOnly(path string, err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) || unix.Access(path, unix.R_OK) != nil {
		return err
	}
	return &fs.PathError{Op: "open", Path: path, Err: writeRefusedError{pe.Err}}
}

// fileUnlinked reports whether f's file has no name left: it was removed
// (or renamed over) since f was opened, which fstat's link count says
// without a walk of the path.
func fileUnlinked(f *os.File) bool {
	var st unix.Stat_t
	return fstat(f, &st) == nil && st.Nlink == 0
}

// fileWritable reports whether f is open for writing.
func fileWritable(f *os.File) bool {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_ACCMODE != unix.O_RDONLY
}

// readOnlyWillDo reports whether opening for writing failed for a reason
// that opening for reading may not share: a file or file system one may
// only read, a directory, a running executable (ETXTBSY), an append-only or
// immutable file (EPERM).
func readOnlyWillDo(err error) bool {
	for _, errno := range []unix.Errno{unix.EACCES, unix.EROFS, unix.EISDIR, unix.ETXTBSY, unix.EPERM} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// lockError maps the errors by which file systems say they cannot lock to
// errors matching errors.ErrUnsupported.
func lockError(err error) error {
	if err == unix.ENOLCK || err == unix.ENOTSUP || err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		return unsupportedError{err}
	}
	return err
}

// createSidecar creates the file at path, unless something is there
// already (then it returns a nil file), with the permission bits perm and,
// where the process may, the owner and group of like, the file it is the
// sidecar of (a FileInfo of it, from Stat, so that like is never opened and
// closed: on fcntl platforms that would drop the process's locks on it);
// the umask does not apply, since the sidecar is meant to be exactly as
// accessible as the caller says. It is created empty, never through a
// symbolic link, and returned open for reading and writing, with its
// identity: the caller keeps the very descriptor that created it.
func createSidecar(path string, like fs.FileInfo, perm fs.FileMode) (*os.File, fileID, error) {
	uid, gid := -1, -1
	if st, ok := like.Sys().(*syscall.Stat_t); ok {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	return createOwned(path, uint32(perm.Perm()), uid, gid)
}

// createOwned creates path as createSidecar does, with permission bits
// perm and, where the process may, owner uid and group gid (-1: the
// creator's).
func createOwned(path string, perm uint32, uid, gid int) (*os.File, fileID, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, fs.FileMode(perm))
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil, fileID{}, nil
	case err != nil:
		return nil, fileID{}, err
	}
	fail := func(op string, err error) (*os.File, fileID, error) {
		f.Close() // nobody else can hold a lock on a file just created
		return nil, fileID{}, &fs.PathError{Op: op, Path: path, Err: err}
	}
	fd := int(f.Fd())
	if err := unix.Fchmod(fd, perm); err != nil {
		return fail("chmod", err)
	}
	// Only a privileged process may give a file away; anyone may give it
	// to a group it belongs to. Short of both, the sidecar is the
	// creator's, with the permission bits above.
	if uid >= 0 && unix.Fchown(fd, uid, gid) != nil {
		unix.Fchown(fd, -1, gid)
	}
	var own unix.Stat_t
	if err := fstat(f, &own); err != nil {
		return fail("stat", err)
	}
	if testHookSidecarCreated != nil {
		testHookSidecarCreated(path)
	}
	return f, fileID{uint64(own.Dev), uint64(own.Ino)}, nil
}

// testHookSidecarCreated, if set by a test, runs when createSidecar has
// created a sidecar, before it returns the descriptor.
var testHookSidecarCreated func(path string)

func fstat(f *os.File, st *unix.Stat_t) error {
	for {
		if err := unix.Fstat(int(f.Fd()), st); err != unix.EINTR {
			return err
		}
	}
}

// syncFile flushes f for SyncOnUnlock; fsync works on a descriptor open
// for reading only too.
func syncFile(f *os.File) error { return f.Sync() }

// removeLockFile removes the file at path, for RemoveOnUnlock.
func removeLockFile(path string) error { return removePath(path) }

// viewFile returns the descriptor File hands out for f: a duplicate, on f's
// open file description (so on flock(2) it shares f's lock, and closing it
// leaves the lock alone), close-on-exec. If view is such a duplicate still
// open it is returned, made to refer to f's open file description again
// first if repoint is set (f's was replaced by lockOnFile). The duplicate is
// reached only through view's own *os.File (Control holds it open), so a
// view the caller closed, whose number may belong to another file by now,
// is never touched: a new one replaces it.
func viewFile(f, view *os.File, repoint bool) (*os.File, error) {
	if view != nil {
		if rc, err := view.SyscallConn(); err == nil {
			var dupErr error
			ctlErr := rc.Control(func(v uintptr) {
				if repoint {
					dupErr = dupOnto(int(f.Fd()), int(v))
				}
			})
			if ctlErr == nil {
				if dupErr != nil {
					return nil, &fs.PathError{Op: "dup", Path: f.Name(), Err: dupErr}
				}
				return view, nil
			}
		}
	}
	// dup and then close-on-exec, with fork-exec held off in between, as
	// the syscall package does: F_DUPFD_CLOEXEC is not on every Unix (AIX).
	syscall.ForkLock.RLock()
	nfd, err := unix.Dup(int(f.Fd()))
	if err == nil {
		unix.CloseOnExec(nfd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, &fs.PathError{Op: "dup", Path: f.Name(), Err: err}
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

// dupOnto makes to refer to from's open file description, close-on-exec.
// dup2 leaves the new descriptor inheritable; fork-exec is held off until it
// is close-on-exec again, as the syscall package's own code does.
func dupOnto(from, to int) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := unix.Dup2(from, to); err != nil {
		return err
	}
	unix.CloseOnExec(to)
	return nil
}
