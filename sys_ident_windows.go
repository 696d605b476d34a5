//go:build windows

package flock

// File identity on Windows, and what the backend refuses to lock.
//
// The registry is keyed by fileID, so two files that got one key would
// share one entry, and every lock on the second would land on the first:
// exclusion would break silently. Two keys for one file are harmless here,
// by contrast: Windows locks belong to a handle, so the two entries' handles
// exclude each other in the kernel, as handles of two processes do. Every
// doubtful case therefore gives the file an identity of its own.

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/windows"
)

// fileID identifies a file as os.SameFile does on Windows, with the 128-bit
// file IDs of ReFS: the volume serial number and the file ID that
// GetFileInformationByHandleEx(FileIdInfo) reports, or the 32-bit serial
// and 64-bit file index of GetFileInformationByHandle where that is refused.
// A file whose file system reports no usable ID gets a uniq that no other
// open has, so that it shares no entry.
type fileID struct {
	vol  uint64
	id   [16]byte
	uniq uint64 // nonzero: no identity; unique to one statFile or openFile
}

// fileIDInfo is FILE_ID_INFO.
type fileIDInfo struct {
	VolumeSerialNumber uint64
	FileID             [16]byte
}

// fileAttributeTagInfo is FILE_ATTRIBUTE_TAG_INFO.
type fileAttributeTagInfo struct {
	FileAttributes uint32
	ReparseTag     uint32
}

// lastUniq numbers the opens of files without identity.
var lastUniq atomic.Uint64

// hasIdentity reports whether id is a file ID: file systems without IDs
// (WinFsp-based ones such as sshfs-win, some network redirectors) report 0,
// and all ones is the "no ID" value of FILE_ID_128 (FILE_INVALID_FILE_ID).
func hasIdentity(id []byte) bool {
	zero, ones := true, true
	for _, b := range id {
		zero = zero && b == 0
		ones = ones && b == 0xFF
	}
	return !zero && !ones
}

// chooseID decides a file's identity from what the system said: ex and exErr
// are the result of GetFileInformationByHandleEx(FileIdInfo), info that of
// GetFileInformationByHandle. It reports false where the file has no usable
// identity.
//
// FileIdInfo is preferred: on ReFS (and Dev Drives) only its 128-bit ID is
// unique, the 64-bit index is not. Where it is refused (SMB shares answer
// ERROR_INVALID_PARAMETER, older systems ERROR_INVALID_PARAMETER or
// ERROR_NOT_SUPPORTED) or reports a zero ID, which is how file systems
// without 128-bit IDs answer it, the 64-bit index is used, zero-extended as
// NTFS extends it in FILE_ID_INFO. A file system answers one way for all its
// files, so every handle of one file gets the same key.
func chooseID(ex *fileIDInfo, exErr error, info *windows.ByHandleFileInformation) (fileID, bool) {
	if exErr == nil && hasIdentity(ex.FileID[:]) {
		return fileID{vol: ex.VolumeSerialNumber, id: ex.FileID}, ex.VolumeSerialNumber != 0
	}
	if exErr == nil && allOnes(ex.FileID[:]) {
		// MS-FSCC 2.1.10: the file system has 128-bit IDs but could not
		// establish a unique one for this file; its 64-bit index is no
		// better (ReFS).
		return fileID{}, false
	}
	var id fileID
	id.vol = uint64(info.VolumeSerialNumber)
	binary.LittleEndian.PutUint32(id.id[0:4], info.FileIndexLow)
	binary.LittleEndian.PutUint32(id.id[4:8], info.FileIndexHigh)
	if !hasIdentity(id.id[:8]) || id.vol == 0 {
		return fileID{}, false
	}
	return id, true
}

// unidentified returns an identity no other open of any file has.
func unidentified() fileID { return fileID{uniq: lastUniq.Add(1)} }

// Reparse tags are name surrogates (links to another name: symbolic links,
// mount points and junctions, WSL symbolic links) when this bit is set.
const reparseTagNameSurrogate = 0x20000000

// isLink reports whether a file with these attributes and reparse tag is a
// link that NoFollow refuses: a symbolic link, a mount point (junction), or
// another name surrogate. Other reparse points (deduplicated, WOF-compressed
// and cloud placeholder files, AF_UNIX sockets...) are the file itself.
func isLink(attrs, tag uint32) bool {
	if attrs&windows.FILE_ATTRIBUTE_REPARSE_POINT == 0 {
		return false
	}
	switch tag {
	case windows.IO_REPARSE_TAG_SYMLINK, windows.IO_REPARSE_TAG_MOUNT_POINT:
		return true
	}
	return tag&reparseTagNameSurrogate != 0
}

var (
	errSymlink = errors.New("final path element is a symbolic link or mount point (refused with NoFollow or RemoveOnUnlock)")
	errDir     = errors.New("is a directory: directories cannot be locked on Windows")
	errType    = errors.New("not a regular file: devices, pipes and consoles cannot be locked")
)

// errNoIdentity is openFile's refusal of RemoveOnUnlock on a file system
// that reports no file IDs: the option must tell whether the file at the
// path is still the one locked, and nothing could tell it there. It matches
// errors.ErrUnsupported.
var errNoIdentity error = noIdentityError{}

type noIdentityError struct{}

func (noIdentityError) Error() string {
	return "the file system reports no file identity, so RemoveOnUnlock could not tell a replaced lock file from its own"
}
func (noIdentityError) Is(target error) bool { return target == errors.ErrUnsupported }

// errNoPosixDelete is openFile's refusal of RemoveOnUnlock on a volume
// that does not delete with POSIX semantics (FAT, exFAT, SMB shares, older
// Windows): Unlock removes the path while the
// process still has the file open, and there the name then stays, pending
// deletion, until the last handle closes; nothing can open or re-create a
// file of that name meanwhile, so the next Lock could not lock the path.
// It matches errors.ErrUnsupported.
var errNoPosixDelete error = noPosixDeleteError{}

type noPosixDeleteError struct{}

func (noPosixDeleteError) Error() string {
	return "the volume does not delete files with POSIX semantics (no FILE_SUPPORTS_POSIX_UNLINK_RENAME), so a lock file RemoveOnUnlock removed would stay pending deletion, and unopenable, while still open"
}
func (noPosixDeleteError) Is(target error) bool { return target == errors.ErrUnsupported }

// fileSupportsPosixUnlinkRename is the volume flag that says the file
// system deletes and renames with POSIX semantics.
const fileSupportsPosixUnlinkRename = 0x00000400

// removeRefusal decides whether RemoveOnUnlock is refused on a volume with
// these flags, as GetVolumeInformationByHandle reported them (queryErr is
// its failure). A volume that cannot be asked is not refused: the removal
// itself then shows what the file system does.
func removeRefusal(flags uint32, queryErr error) error {
	if queryErr == nil && flags&fileSupportsPosixUnlinkRename == 0 {
		return errNoPosixDelete
	}
	return nil
}

// volumeFlags returns the file system flags of the volume h is on.
func volumeFlags(h windows.Handle) (uint32, error) {
	var flags uint32
	err := windows.GetVolumeInformationByHandle(h, nil, 0, nil, nil, &flags, nil, 0)
	return flags, err
}

// identify returns the identity of the file open as h, refusing what cannot
// be locked. With noFollow it refuses links (h was opened with
// FILE_FLAG_OPEN_REPARSE_POINT); reparse reports a reparse point that is
// not a link, which such a handle opened as itself rather than as the file
// the reparse point stands for.
func identify(h windows.Handle, noFollow bool) (id fileID, reparse bool, err error) {
	// Checked first: devices such as NUL fail the queries below with
	// errors that would not say what is wrong.
	if t, err := windows.GetFileType(h); err != nil {
		return fileID{}, false, err
	} else if t != windows.FILE_TYPE_DISK {
		return fileID{}, false, errType
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fileID{}, false, err
	}
	if noFollow {
		tag, err := queryReparse(h, &info)
		if err != nil {
			return fileID{}, false, err
		}
		if isLink(tag.FileAttributes, tag.ReparseTag) {
			return fileID{}, false, errSymlink
		}
		reparse = tag.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0 {
		return fileID{}, false, errDir
	}
	ex, exErr := queryFileID(h, &info)
	id, ok := chooseID(&ex, exErr, &info)
	if !ok {
		id = unidentified()
	}
	return id, reparse, nil
}

// queryFileID returns h's FILE_ID_INFO. It is a variable so that tests can
// make the system answer as other file systems do (info, the answer of
// GetFileInformationByHandle, may be changed too).
var queryFileID = func(h windows.Handle, info *windows.ByHandleFileInformation) (fileIDInfo, error) {
	var ex fileIDInfo
	err := windows.GetFileInformationByHandleEx(h, windows.FileIdInfo, (*byte)(unsafe.Pointer(&ex)), uint32(unsafe.Sizeof(ex)))
	return ex, err
}

// queryReparse returns the attributes and reparse tag of the file open as
// h (FILE_ATTRIBUTE_TAG_INFO), given its GetFileInformationByHandle
// answer info; a file that is no reparse point needs no query. It is a
// variable so that tests can make a file look like a reparse point that is
// not a link (deduplicated, WOF-compressed, cloud files), which a test
// machine cannot make.
var queryReparse = func(h windows.Handle, info *windows.ByHandleFileInformation) (fileAttributeTagInfo, error) {
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT == 0 {
		return fileAttributeTagInfo{FileAttributes: info.FileAttributes}, nil
	}
	var tag fileAttributeTagInfo
	err := windows.GetFileInformationByHandleEx(h, windows.FileAttributeTagInfo, (*byte)(unsafe.Pointer(&tag)), uint32(unsafe.Sizeof(tag)))
	return tag, err
}

func allOnes(b []byte) bool {
	for _, c := range b {
		if c != 0xFF {
			return false
		}
	}
	return true
}
