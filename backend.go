package flock

// The backend contract: what the in-process layer needs from the OS layer
// (sys_*.go), and the vocabulary they share. Nothing here branches on the
// platform.
//
// Each backend provides the types fd (what an entry locks through), fdMem
// (the memory an fd's state lives in, a field of the entry, so that an
// entry is one allocation) and fileID (a file's identity, as os.SameFile
// compares files), and:
//
//	statFile(path, noFollow) (fileID, error)
//	openFile(path, *config) (*os.File, fileID, error)
//	createSidecar(path, like fs.FileInfo, perm) (*os.File, fileID, error) // create path with permission bits perm and like's owner; the open creator, or nil if it existed (or, on Windows, always: the caller opens it)
//	sysFD(*os.File, *fdMem) fd               // the fd of the file, its state (if any) in the fdMem given
//	lockFile(fd, mode) error                 // without waiting; errWouldBlock if held elsewhere (waits go through waitFile)
//	separateWait(fd, mode) bool              // whether a wait for mode waits on an owner of its own
//	waitFile(fd, mode, abandon) error        // blocking; errAbandoned if abandoned (where it can be)
//	waitGranted(fd, mode)                    // the lock waitFile got is now the one held
//	lockOnFile(fd) bool                      // move the lock held onto the entry's own file, if elsewhere; whether it moved
//	viewFile(f, view *os.File, repoint bool) (*os.File, error) // the descriptor File hands out: view if still open (re-pointed at f's open file if repoint), else a new duplicate of f
//	fileWritable(*os.File) bool              // whether the file is open for writing
//	fileUnlinked(*os.File) bool              // whether the file has no name left (removed since it was opened)
//	unlockFile(fd) error
//	closeFD(fd) error                        // close what sysFD and separateWait opened beside the file
//	syncFile(*os.File) error                 // flush for SyncOnUnlock
//	removeLockFile(path) error               // remove the lock file, for RemoveOnUnlock
//	sysHolders(fd, fileID, own lockMode) ([]Holder, error) // holders of the lock (sys_holders_*.go); own: the OS lock this process holds, for queries blind to it; called with no mutex held
//
// lockFile, separateWait, waitGranted, lockOnFile, viewFile, unlockFile and closeFD are called
// with the entry's mutex held; sysFD with the registry's; statFile,
// openFile, createSidecar, waitFile, syncFile and removeLockFile with
// neither.
//
// Where separateWait reports true, the lock a wait is granted is on the
// wait's own descriptor; lockOnFile, which File calls, moves it onto the
// entry's own file, so that the *os.File that File returns, and that a
// child process may inherit, is the one that carries the lock.

import "errors"

// lockMode is what a lock is held for, in-process or by the OS.
type lockMode uint8

const (
	unlocked lockMode = iota
	shared
	exclusive
)

// other returns the other of shared and exclusive.
func (m lockMode) other() lockMode { return shared + exclusive - m }

var (
	// errWouldBlock is the backend's report that another process holds the
	// lock.
	errWouldBlock = errors.New("lock held elsewhere")

	// errAbandoned is waitFile's report that it gave up because abandon
	// was closed.
	errAbandoned = errors.New("lock wait abandoned")

	// errReadOnly is matched (errors.Is) by the error of a backend that
	// cannot take an exclusive lock through a descriptor open for reading
	// only (fcntl); such an error also matches fs.ErrPermission.
	errReadOnly = errors.New("exclusive fcntl lock needs the file open for writing")
)
