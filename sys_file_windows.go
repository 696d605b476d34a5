//go:build windows

package flock

// What the Windows backend does with the file itself, beside locking: the
// flush for SyncOnUnlock, its access and link count, and the removal for
// RemoveOnUnlock (POSIX semantics, with its fallback).

import (
	"io/fs"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

var procNtQueryInformationFile = windows.NewLazySystemDLL("ntdll.dll").NewProc("NtQueryInformationFile")

// syncFile flushes f for SyncOnUnlock, or does nothing where f was opened
// for reading only: FlushFileBuffers needs write access and fails with
// ERROR_ACCESS_DENIED on such a handle (fsync on a read-only descriptor
// works on Unix), and nothing can have been written through it.
func syncFile(f *os.File) error {
	access, err := grantedAccess(windows.Handle(f.Fd()))
	if !syncNeeded(access, err) {
		return nil
	}
	return f.Sync()
}

// fileUnlinked reports whether f's file has no name left or is being
// deleted, from FILE_STANDARD_INFO.
func fileUnlinked(f *os.File) bool {
	var info struct {
		AllocationSize, EndOfFile int64
		NumberOfLinks             uint32
		DeletePending, Directory  bool
	}
	err := windows.GetFileInformationByHandleEx(windows.Handle(f.Fd()), windows.FileStandardInfo, (*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)))
	return err == nil && (info.NumberOfLinks == 0 || info.DeletePending)
}

// fileWritable reports whether f is open for writing.
func fileWritable(f *os.File) bool {
	access, err := grantedAccess(windows.Handle(f.Fd()))
	return err == nil && access&(windows.FILE_WRITE_DATA|windows.FILE_APPEND_DATA) != 0
}

// syncNeeded decides whether a handle with the granted access needs a
// flush; where the access could not be queried, the flush decides.
func syncNeeded(access uint32, queryErr error) bool {
	return queryErr != nil || access&(windows.FILE_WRITE_DATA|windows.FILE_APPEND_DATA) != 0
}

// grantedAccess returns the access h was opened with
// (FILE_ACCESS_INFORMATION).
func grantedAccess(h windows.Handle) (uint32, error) {
	const fileAccessInformation = 8
	if err := procNtQueryInformationFile.Find(); err != nil {
		return 0, err
	}
	var iosb windows.IO_STATUS_BLOCK
	var access uint32
	r, _, _ := procNtQueryInformationFile.Call(uintptr(h), uintptr(unsafe.Pointer(&iosb)), uintptr(unsafe.Pointer(&access)), unsafe.Sizeof(access), fileAccessInformation)
	if r != 0 {
		return 0, windows.NTStatus(r)
	}
	return access, nil
}

// removeLockFile removes the file at path, for RemoveOnUnlock; the core
// calls it holding the exclusive lock, so the file is still open, in this
// process and perhaps others. It deletes with POSIX semantics, which
// remove the name at once even while handles are open (what unlink does
// on Unix): a classic deletion would leave the name pending deletion until
// the last handle closes, and no Lock could open or re-create it
// meanwhile. Where the system or the file system refuses POSIX semantics
// (older Windows, FAT, SMB: openFile refuses RemoveOnUnlock on volumes
// that say so, but a volume may not say), it falls back to os.Remove.
func removeLockFile(path string) error {
	done, err := posixDelete(path)
	if done {
		if err != nil {
			return &fs.PathError{Op: "remove", Path: path, Err: err}
		}
		return nil
	}
	return os.Remove(path)
}

// posixDelete deletes the file at path with POSIX semantics. done is false
// where the system refused them (deleteFallback), so that the caller
// deletes the classic way; otherwise err is the deletion's result. The read-only
// attribute is ignored as os.Remove ignores it, where the system knows
// how (Windows 10 1809 and later).
func posixDelete(path string) (done bool, err error) {
	// DELETE access, which every handle of ours shares; the path itself,
	// even if it is a link, as os.Remove removes it.
	h, err := createFile(path, windows.DELETE, shareAll, windows.OPEN_EXISTING,
		windows.FILE_FLAG_OPEN_REPARSE_POINT|windows.FILE_FLAG_BACKUP_SEMANTICS)
	if err != nil {
		return true, err
	}
	// With POSIX semantics the name goes when this handle closes.
	defer windows.CloseHandle(h)
	for _, flags := range []uint32{posixDeleteFlagsIgnoreRO, posixDeleteFlags} {
		err = windows.SetFileInformationByHandle(h, windows.FileDispositionInfoEx, (*byte)(unsafe.Pointer(&flags)), uint32(unsafe.Sizeof(flags)))
		if err == nil || !deleteFallback(err) {
			return true, err
		}
	}
	return false, err
}

// deleteFallback reports whether a FileDispositionInfoEx failure says the
// system or file system does not do what was asked (rather than that the
// file may not be deleted): the class or a flag is unknown
// (ERROR_INVALID_PARAMETER: before Windows 10 1607, or a flag newer than
// the system, and Wine 8), or the file system does not implement it
// (ERROR_NOT_SUPPORTED; ERROR_INVALID_FUNCTION from redirectors).
func deleteFallback(err error) bool {
	switch err {
	case windows.ERROR_INVALID_PARAMETER, windows.ERROR_NOT_SUPPORTED, windows.ERROR_INVALID_FUNCTION:
		return true
	}
	return false
}

// FILE_DISPOSITION_INFO_EX flags.
const (
	dispositionDelete         = 0x00000001 // FILE_DISPOSITION_FLAG_DELETE
	dispositionPosixSemantics = 0x00000002 // FILE_DISPOSITION_FLAG_POSIX_SEMANTICS
	dispositionIgnoreReadOnly = 0x00000010 // FILE_DISPOSITION_FLAG_IGNORE_READONLY_ATTRIBUTE (Windows 10 1809)
	posixDeleteFlags          = dispositionDelete | dispositionPosixSemantics
	posixDeleteFlagsIgnoreRO  = posixDeleteFlags | dispositionIgnoreReadOnly
)
