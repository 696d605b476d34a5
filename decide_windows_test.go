package flock

// Unit tests of the Windows backend's decisions, fed with the answers the
// system would give on file systems and in situations that neither Wine
// nor a test machine has (ReFS, SMB, WinFsp, lost sessions). They run under
// Wine and on Windows alike.

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"golang.org/x/sys/windows"
)

func TestWindowsChooseID(t *testing.T) {
	ntfs := windows.ByHandleFileInformation{VolumeSerialNumber: 0x1234abcd, FileIndexHigh: 0x00050000, FileIndexLow: 0x0000002a}
	id128 := func(b ...byte) (id [16]byte) { copy(id[:], b); return id }
	ones := id128(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)

	// The 64-bit fallback is NTFS's index, zero-extended as FILE_ID_INFO
	// reports it there.
	want64 := fileID{vol: 0x1234abcd, id: id128(0x2a, 0, 0, 0, 0, 0, 5, 0)}
	for _, c := range []struct {
		name  string
		ex    fileIDInfo
		exErr error
		info  windows.ByHandleFileInformation
		want  fileID
		ok    bool
	}{
		{"FileIdInfo", fileIDInfo{0xfeed00001234abcd, id128(1, 2, 3)}, nil, ntfs, fileID{vol: 0xfeed00001234abcd, id: id128(1, 2, 3)}, true},
		{"ReFS 128-bit ID beyond the index", fileIDInfo{7, id128(0x2a, 0, 0, 0, 0, 0, 5, 0, 9)}, nil, ntfs, fileID{vol: 7, id: id128(0x2a, 0, 0, 0, 0, 0, 5, 0, 9)}, true},
		{"SMB refuses FileIdInfo", fileIDInfo{}, windows.ERROR_INVALID_PARAMETER, ntfs, want64, true},
		{"old system refuses FileIdInfo", fileIDInfo{}, windows.ERROR_NOT_SUPPORTED, ntfs, want64, true},
		{"no 128-bit IDs: zero FileId", fileIDInfo{0x1234abcd, id128()}, nil, ntfs, want64, true},
		{"all-ones FileId (no unique ID for this file)", fileIDInfo{0x1234abcd, ones}, nil, ntfs, fileID{}, false},
		{"WinFsp: zero everywhere", fileIDInfo{}, nil, windows.ByHandleFileInformation{}, fileID{}, false},
		{"zero index, serial set", fileIDInfo{}, windows.ERROR_INVALID_PARAMETER, windows.ByHandleFileInformation{VolumeSerialNumber: 5}, fileID{}, false},
		{"all-ones index", fileIDInfo{}, windows.ERROR_INVALID_PARAMETER, windows.ByHandleFileInformation{VolumeSerialNumber: 5, FileIndexHigh: ^uint32(0), FileIndexLow: ^uint32(0)}, fileID{}, false},
		{"zero serial, real index", fileIDInfo{}, windows.ERROR_INVALID_PARAMETER, windows.ByHandleFileInformation{FileIndexLow: 3}, fileID{}, false},
		{"zero serial, FileIdInfo", fileIDInfo{0, id128(3)}, nil, ntfs, fileID{}, false},
	} {
		got, ok := chooseID(&c.ex, c.exErr, &c.info)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("%s: chooseID = %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	// Two files that only the 128-bit ID tells apart get two keys.
	a, _ := chooseID(&fileIDInfo{7, id128(1, 0, 0, 0, 0, 0, 0, 0, 1)}, nil, &ntfs)
	b, _ := chooseID(&fileIDInfo{7, id128(1, 0, 0, 0, 0, 0, 0, 0, 2)}, nil, &ntfs)
	if a == b {
		t.Error("files with one 64-bit index and different 128-bit IDs share a key")
	}
	if x, y := unidentified(), unidentified(); x == y || x.uniq == 0 {
		t.Errorf("unidentified() twice: %+v, %+v", x, y)
	}
}

func TestWindowsIsLink(t *testing.T) {
	const reparse = windows.FILE_ATTRIBUTE_REPARSE_POINT
	for _, c := range []struct {
		name       string
		attrs, tag uint32
		want       bool
	}{
		{"symbolic link", reparse, windows.IO_REPARSE_TAG_SYMLINK, true},
		{"mount point or junction", reparse, windows.IO_REPARSE_TAG_MOUNT_POINT, true},
		{"WSL symbolic link (name surrogate)", reparse, 0xA000001D, true},
		{"deduplicated file", reparse, 0x80000013, false},
		{"WOF-compressed file", reparse, 0x80000017, false},
		{"cloud placeholder", reparse, 0x9000001A, false},
		{"AF_UNIX socket", reparse, 0x80000023, false},
		{"not a reparse point", windows.FILE_ATTRIBUTE_ARCHIVE, windows.IO_REPARSE_TAG_SYMLINK, false},
	} {
		if got := isLink(c.attrs, c.tag); got != c.want {
			t.Errorf("%s: isLink = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWindowsNamesStream(t *testing.T) {
	for _, c := range []struct {
		path string
		want bool
	}{
		{`C:\dir\lock`, false},
		{`c:lock`, false}, // drive-relative
		{`lock`, false},
		{`\\?\C:\dir\lock`, false},
		{`\\.\C:\dir\lock`, false},
		{`//?/C:/dir/lock`, false},
		{`\??\C:\dir\lock`, false},
		{`\\server\share\lock`, false},
		{`\\?\UNC\server\share\lock`, false},
		{`\\?\Volume{0b1e4c2a-0000-0000-0000-100000000000}\lock`, false},
		{`lock:s`, true},
		{`C:\dir\lock:s`, true},
		{`C:\dir\lock::$DATA`, true},
		{`C:\dir\lock:s:$DATA`, true},
		{`\\?\C:\dir\lock:s`, true},
		{`\\server\share\lock:s`, true},
		{`dir/lock:s`, true},
	} {
		if got := namesStream(c.path); got != c.want {
			t.Errorf("namesStream(%q) = %v, want %v", c.path, got, c.want)
		}
	}
	if !errors.Is(errStream, fs.ErrInvalid) {
		t.Error("errStream does not match fs.ErrInvalid")
	}
}

func TestWindowsLongPathFixup(t *testing.T) {
	long := `C:\` + repeat(`d\`, 130) + "lock" // 267 bytes
	full := func(p string) (string, error) { return p, nil }
	fail := func(string) (string, error) { return "", windows.ERROR_INVALID_NAME }
	for _, c := range []struct {
		path, want string
		full       func(string) (string, error)
	}{
		{`C:\short\lock`, `C:\short\lock`, full},
		{long, `\\?\` + long, full},
		{`\\?\` + long, `\\?\` + long, full},
		{`\\.\` + long, `\\.\` + long, full},
		{`\\server\share\` + long[3:], `\\?\UNC\server\share\` + long[3:], full},
		// Relative and unclean paths are resolved first: \\?\ paths are not.
		{`rel\..\` + long[3:], `\\?\C:\cwd\` + long[3:], func(p string) (string, error) { return `C:\cwd\` + p[len(`rel\..\`):], nil }},
		{long, long, fail},
	} {
		if got := longPath(c.path, c.full); got != c.want {
			t.Errorf("longPath(%.40q...) = %.60q..., want %.60q...", c.path, got, c.want)
		}
	}
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for i := 0; i < n; i++ {
		b = append(b, s...)
	}
	return string(b)
}

func TestWindowsOpenDecisions(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{windows.ERROR_ACCESS_DENIED, true},
		{windows.ERROR_SHARING_VIOLATION, true},
		{errDeletePending, false},
		{windows.ERROR_FILE_NOT_FOUND, false},
		{nil, false},
	} {
		if got := readOnlyRetry(c.err); got != c.want {
			t.Errorf("readOnlyRetry(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if err := openError(windows.ERROR_ACCESS_DENIED, true); err != errDeletePending {
		t.Errorf("access denied while the status says delete pending: %v", err)
	}
	if err := openError(windows.ERROR_ACCESS_DENIED, false); err != windows.ERROR_ACCESS_DENIED {
		t.Errorf("plain access denied: %v", err)
	}
	pe := &fs.PathError{Op: "open", Path: "x", Err: errDeletePending}
	if !errors.Is(pe, windows.ERROR_DELETE_PENDING) || errors.Is(pe, fs.ErrPermission) {
		t.Errorf("errDeletePending: Is(ERROR_DELETE_PENDING) = %v, Is(fs.ErrPermission) = %v; want true, false",
			errors.Is(pe, windows.ERROR_DELETE_PENDING), errors.Is(pe, fs.ErrPermission))
	}
	if !errors.Is(errNoIdentity, errors.ErrUnsupported) {
		t.Error("errNoIdentity does not match errors.ErrUnsupported")
	}
}

func TestWindowsUnlockResult(t *testing.T) {
	lost := windows.Errno(64) // ERROR_NETNAME_DELETED: the SMB session went away
	for _, c := range []struct {
		name                string
		unlockErr, closeErr error
		carrier             bool
		wantErr             bool
	}{
		{"own handle: unlocked", nil, nil, false, false},
		{"own handle: nothing was locked", windows.ERROR_NOT_LOCKED, nil, false, false},
		{"own handle: session lost", lost, nil, false, true},
		{"own handle: closed behind our back", windows.ERROR_INVALID_HANDLE, nil, false, true},
		{"carrier: unlocked and closed", nil, nil, true, false},
		{"carrier: session lost, closed", lost, nil, true, false},
		{"carrier: unexpected network error, closed", windows.ERROR_UNEXP_NET_ERR, nil, true, false},
		{"carrier: session cancelled, closed", windows.ERROR_VC_DISCONNECTED, nil, true, false},
		{"carrier: network resource gone, closed", windows.ERROR_DEV_NOT_EXIST, nil, true, false},
		{"carrier: nothing was locked, closed", windows.ERROR_NOT_LOCKED, nil, true, false},
		{"carrier: lock elsewhere (Wine's answer for no lock), closed", windows.ERROR_LOCK_VIOLATION, nil, true, true},
		{"carrier: not our handle, closed", windows.ERROR_INVALID_HANDLE, nil, true, true},
		{"carrier: close failed", windows.ERROR_INVALID_HANDLE, windows.ERROR_INVALID_HANDLE, true, true},
		{"carrier: unlocked, close failed", nil, windows.ERROR_INVALID_HANDLE, true, true},
	} {
		err := unlockResult(c.unlockErr, c.closeErr, c.carrier)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: unlockResult = %v, want error %v", c.name, err, c.wantErr)
		}
	}
}

func TestWindowsSyncNeeded(t *testing.T) {
	for _, c := range []struct {
		access uint32
		err    error
		want   bool
	}{
		{windows.FILE_GENERIC_READ | windows.FILE_GENERIC_WRITE, nil, true},
		{windows.FILE_APPEND_DATA | windows.SYNCHRONIZE, nil, true},
		{windows.FILE_GENERIC_READ, nil, false},
		{0, fmt.Errorf("query refused"), true},
	} {
		if got := syncNeeded(c.access, c.err); got != c.want {
			t.Errorf("syncNeeded(%#x, %v) = %v, want %v", c.access, c.err, got, c.want)
		}
	}
}

func TestWindowsRemoveRefusal(t *testing.T) {
	// NTFS-like: case and Unicode names, ACLs, compression, quotas...,
	// and FILE_SUPPORTS_POSIX_UNLINK_RENAME.
	const ntfs = 0x000000ff | fileSupportsPosixUnlinkRename
	for _, c := range []struct {
		name     string
		flags    uint32
		queryErr error
		refused  bool
	}{
		{"NTFS, POSIX deletion", ntfs, nil, false},
		{"just the flag", fileSupportsPosixUnlinkRename, nil, false},
		{"NTFS before POSIX deletion", ntfs &^ fileSupportsPosixUnlinkRename, nil, true},
		{"FAT-like: case-preserved Unicode names only", 0x00000006, nil, true},
		{"Wine 8 (measured)", 0xa, nil, true},
		{"no flags at all", 0, nil, true},
		{"query refused", 0, windows.ERROR_INVALID_FUNCTION, false},
	} {
		err := removeRefusal(c.flags, c.queryErr)
		if (err != nil) != c.refused {
			t.Errorf("%s: removeRefusal(%#x, %v) = %v, want refused %v", c.name, c.flags, c.queryErr, err, c.refused)
		}
		if err != nil && (!errors.Is(err, errors.ErrUnsupported) || err != errNoPosixDelete) {
			t.Errorf("%s: refusal %v is not errNoPosixDelete matching errors.ErrUnsupported", c.name, err)
		}
	}
	// Identity is checked first: without it nothing else matters.
	if err := removeSupported(0, fileID{uniq: 1}); err != errNoIdentity {
		t.Errorf("removeSupported without identity: %v, want errNoIdentity", err)
	}
}

func TestWindowsDeleteFallback(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{windows.ERROR_INVALID_PARAMETER, true}, // class or flag unknown (older Windows, Wine)
		{windows.ERROR_NOT_SUPPORTED, true},     // the file system does not do it (FAT)
		{windows.ERROR_INVALID_FUNCTION, true},  // redirectors
		{windows.ERROR_ACCESS_DENIED, false},    // read-only, or no right to delete
		{windows.ERROR_SHARING_VIOLATION, false},
		{windows.ERROR_DIR_NOT_EMPTY, false},
	} {
		if got := deleteFallback(c.err); got != c.want {
			t.Errorf("deleteFallback(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
