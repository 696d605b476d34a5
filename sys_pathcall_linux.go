//go:build amd64 || arm64

package flock

// The system calls that take a path, on Linux amd64 and arm64, made with a
// NUL-terminated copy of the path on the caller's stack when it fits.
// x/sys/unix and os copy the path to the heap for every such call, and
// RemoveOnUnlock makes four of them per lock (the open, the two checks that
// the file is still at the path, the removal). Each is the call x/sys/unix
// makes on these architectures, with the same arguments; only where the
// path lives differs. The stack copy is safe for the same reason x/sys's
// own pointer arguments are: the call takes it as a uintptr converted in
// its argument list, and a goroutine's stack does not move during a system
// call.

import (
	"io/fs"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pathBufSize bounds the paths copied to the stack; longer ones go through
// x/sys/unix's own calls.
const pathBufSize = 256

// pathOnStack copies path into buf, NUL-terminated, and reports whether it
// fit. A path with a NUL of its own is not copied, so that x/sys refuses
// it as it always does (the kernel would take the NUL for the path's end).
func pathOnStack(buf *[pathBufSize]byte, path string) bool {
	if len(path) >= pathBufSize || strings.IndexByte(path, 0) >= 0 {
		return false
	}
	copy(buf[:], path)
	buf[len(path)] = 0
	return true
}

// atFDCWD is AT_FDCWD, which as a constant cannot be converted to uintptr.
var atFDCWD = unix.AT_FDCWD

// statPath is unix.Lstat (noFollow) or unix.Stat.
func statPath(path string, noFollow bool, st *unix.Stat_t) error {
	var buf [pathBufSize]byte
	if !pathOnStack(&buf, path) {
		if noFollow {
			return unix.Lstat(path, st)
		}
		return unix.Stat(path, st)
	}
	flags := 0
	if noFollow {
		flags = unix.AT_SYMLINK_NOFOLLOW
	}
	if _, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0); e != 0 {
		return e
	}
	return nil
}

// openPath is unix.Open.
func openPath(path string, flag int, perm uint32) (int, error) {
	var buf [pathBufSize]byte
	if !pathOnStack(&buf, path) {
		return unix.Open(path, flag, perm)
	}
	fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(&buf[0])), uintptr(flag|unix.O_LARGEFILE), uintptr(perm), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// removePath is os.Remove: unlink, else rmdir, and the error of the one
// that says why (unlink's if path is no directory).
func removePath(path string) error {
	var buf [pathBufSize]byte
	if !pathOnStack(&buf, path) {
		return os.Remove(path)
	}
	e := unlinkat(&buf[0], 0)
	if e == 0 {
		return nil
	}
	e1 := unlinkat(&buf[0], unix.AT_REMOVEDIR)
	if e1 == 0 {
		return nil
	}
	if e1 != unix.ENOTDIR {
		e = e1
	}
	return &fs.PathError{Op: "remove", Path: path, Err: e}
}

// unlinkat is unlinkat(2) of the NUL-terminated path at p, retried on
// EINTR as os.Remove does.
func unlinkat(p *byte, flags int) unix.Errno {
	for {
		_, _, e := unix.Syscall(unix.SYS_UNLINKAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)), uintptr(flags))
		if e != unix.EINTR {
			return e
		}
	}
}
