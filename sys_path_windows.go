//go:build windows

package flock

// Paths on Windows: what the backend refuses (stream paths), what it fixes
// up as the os package does (long paths), and how it opens them (pending
// deletion told apart from a denied access).

import (
	"runtime"
	"strings"

	"golang.org/x/sys/windows"
)

// errStream refuses a path that names an alternate data stream. Byte-range
// locks belong to a stream, but all streams of a file share its identity,
// so "f" and "f:s" would share one registry entry while their OS locks do
// not exclude each other.
var errStream = wrapInvalid(`path names an alternate data stream ("file:stream"), which cannot be locked apart from its file; use a file of its own`)

func isSlash(c byte) bool { return c == '\\' || c == '/' }

// namesStream reports whether path names an alternate data stream: whether
// it has a colon other than a drive letter's, once a \\?\, \\.\ or \??\
// prefix is set aside.
func namesStream(path string) bool {
	p := path
	switch {
	case len(p) >= 4 && isSlash(p[0]) && isSlash(p[1]) && (p[2] == '?' || p[2] == '.') && isSlash(p[3]):
		p = p[4:]
	case strings.HasPrefix(p, `\??\`):
		p = p[4:]
	}
	if len(p) >= 2 && p[1] == ':' && ('a' <= p[0] && p[0] <= 'z' || 'A' <= p[0] && p[0] <= 'Z') {
		p = p[2:]
	}
	return strings.IndexByte(p, ':') >= 0
}

// longPathMin is the length from which os turns a path into a \\?\ path:
// MAX_PATH less the 12 characters of an 8.3 name, the limit for a
// directory's path.
const longPathMin = 248

// longPath returns path as CreateFile can open it whatever its length, as
// the os package does for its own calls: a path of longPathMin bytes or
// more is made absolute and clean (full, GetFullPathName) and given the
// \\?\ prefix (\\?\UNC\ for a share), which lifts MAX_PATH. Shorter paths
// and paths that have a \\?\ or \\.\ prefix already are left alone, as is a
// path that full cannot resolve (CreateFile then reports what is wrong).
func longPath(path string, full func(string) (string, error)) string {
	if len(path) < longPathMin || hasDevicePrefix(path) {
		return path
	}
	abs, err := full(path)
	if err != nil || hasDevicePrefix(abs) {
		return path
	}
	if strings.HasPrefix(abs, `\\`) {
		return `\\?\UNC\` + abs[2:]
	}
	return `\\?\` + abs
}

func hasDevicePrefix(p string) bool {
	return len(p) >= 4 && isSlash(p[0]) && isSlash(p[1]) && (p[2] == '?' || p[2] == '.') && isSlash(p[3]) ||
		strings.HasPrefix(p, `\??\`)
}

// errDeletePending replaces the ERROR_ACCESS_DENIED by which CreateFile
// reports a file pending deletion: removed (DeleteFile without POSIX
// semantics: FAT, exFAT, ReFS, SMB, older Windows) while some handle still
// has it open. Its name stays until the last handle closes, and nothing can
// open or create a file of that name meanwhile. It unwraps to
// ERROR_DELETE_PENDING, so it does not match fs.ErrPermission.
var errDeletePending error = deletePendingError{}

type deletePendingError struct{}

func (deletePendingError) Error() string {
	return "the file is pending deletion: it was removed while a handle still has it open, and its name cannot be opened until the last one closes"
}
func (deletePendingError) Unwrap() error { return windows.ERROR_DELETE_PENDING }

var procRtlGetLastNtStatus = windows.NewLazySystemDLL("ntdll.dll").NewProc("RtlGetLastNtStatus")

// deletePending reports whether the failure status of the calling thread's
// last system call is STATUS_DELETE_PENDING. The thread must be locked
// since that call, and procRtlGetLastNtStatus found before it: looking the
// procedure up may load ntdll's export table with system calls of its own,
// which would replace the status to be read.
func deletePending() bool {
	r, _, _ := procRtlGetLastNtStatus.Call()
	return windows.NTStatus(r) == windows.STATUS_DELETE_PENDING
}

// openError maps CreateFile's error: ERROR_ACCESS_DENIED becomes
// errDeletePending where the status says so.
func openError(err error, pending bool) error {
	if err == windows.ERROR_ACCESS_DENIED && pending {
		return errDeletePending
	}
	return err
}

// createFile is windows.CreateFile on path (given the long-path fix-up),
// telling a file pending deletion from a denied access.
func createFile(path string, access, mode, create, attrs uint32) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(longPath(path, windows.FullPath))
	if err != nil {
		return 0, err
	}
	// Looked up before the call, whose status the lookup could replace
	// (see deletePending).
	canAsk := procRtlGetLastNtStatus.Find() == nil
	// The thread's last status is the failed call's only on the thread
	// that made it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h, err := windows.CreateFile(p, access, mode, nil, create, attrs, 0)
	if err != nil {
		return 0, openError(err, err == windows.ERROR_ACCESS_DENIED && canAsk && deletePending())
	}
	return h, nil
}
