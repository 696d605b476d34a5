//go:build unix

package flock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPathCallsAsXSys checks that the path system calls (see
// sys_pathcall_*.go) answer as x/sys/unix and os do, on every kind of path
// the package meets: files, directories, links, missing names, paths too
// long for the stack copy, paths with a NUL.
func TestPathCallsAsXSys(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nothing"), dangling); err != nil {
		t.Fatal(err)
	}
	long := dir
	for len(long) < 2*pathBufSizeForTest {
		long = filepath.Join(long, strings.Repeat("d", 60))
	}
	if err := os.MkdirAll(long, 0o700); err != nil {
		t.Fatal(err)
	}
	longFile := filepath.Join(long, "file")
	if err := os.WriteFile(longFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	paths := []string{file, link, dangling, dir, filepath.Join(dir, "missing"), filepath.Join(file, "below"), long, longFile, file + "\x00x", ""}

	for _, path := range paths {
		for _, noFollow := range []bool{false, true} {
			var got, want unix.Stat_t
			gotErr := statPath(path, noFollow, &got)
			var wantErr error
			if noFollow {
				wantErr = unix.Lstat(path, &want)
			} else {
				wantErr = unix.Stat(path, &want)
			}
			if gotErr != wantErr || got != want {
				t.Errorf("statPath(%q, noFollow %v) = %v (dev %d ino %d), want %v (dev %d ino %d)",
					path, noFollow, gotErr, got.Dev, got.Ino, wantErr, want.Dev, want.Ino)
			}
		}
		for _, flag := range []int{unix.O_RDONLY, unix.O_RDWR, unix.O_RDONLY | unix.O_NOFOLLOW} {
			gotFD, gotErr := openPath(path, flag|unix.O_CLOEXEC, 0)
			wantFD, wantErr := unix.Open(path, flag|unix.O_CLOEXEC, 0)
			if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr != wantErr {
				t.Errorf("openPath(%q, %#x) = %v, want %v", path, flag, gotErr, wantErr)
			}
			if gotErr == nil {
				var a, b unix.Stat_t
				unix.Fstat(gotFD, &a)
				unix.Fstat(wantFD, &b)
				if a.Dev != b.Dev || a.Ino != b.Ino {
					t.Errorf("openPath(%q) opened another file than unix.Open", path)
				}
				unix.Close(gotFD)
			}
			if wantErr == nil {
				unix.Close(wantFD)
			}
		}
	}

	// Creation: the mode and flags reach the kernel.
	created := filepath.Join(dir, "created")
	fd, err := openPath(created, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if _, err := openPath(created, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o640); err != unix.EEXIST {
		t.Errorf("openPath with O_EXCL of an existing file: %v, want EEXIST", err)
	}
	if fi, err := os.Stat(created); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm()&^0o640 != 0 {
		t.Errorf("created file's mode %v, want at most 0640", fi.Mode())
	}
}

// TestRemovePathAsOSRemove checks that removePath removes what os.Remove
// removes and fails as it fails, with the same error.
func TestRemovePathAsOSRemove(t *testing.T) {
	type setup func(t *testing.T, path string)
	must := func(t *testing.T, err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	mkfile := func(t *testing.T, path string) { must(t, os.WriteFile(path, nil, 0o600)) }
	mkdir := func(t *testing.T, path string) { must(t, os.Mkdir(path, 0o700)) }
	mkfull := func(t *testing.T, path string) { mkdir(t, path); mkfile(t, filepath.Join(path, "x")) }
	mklink := func(t *testing.T, path string) { must(t, os.Symlink("nothing", path)) }
	nothing := func(t *testing.T, path string) {}
	for _, c := range []struct {
		name  string
		setup setup
	}{
		{"file", mkfile}, {"empty dir", mkdir}, {"full dir", mkfull}, {"dangling link", mklink}, {"missing", nothing},
	} {
		t.Run(c.name, func(t *testing.T) {
			var errs [2]error
			var left [2]bool
			for i, remove := range []func(string) error{removePath, os.Remove} {
				path := filepath.Join(t.TempDir(), "x")
				c.setup(t, path)
				errs[i] = remove(path)
				_, err := os.Lstat(path)
				left[i] = err == nil
			}
			if left[0] != left[1] {
				t.Errorf("after removePath the path is there: %v; after os.Remove: %v", left[0], left[1])
			}
			var pe0, pe1 *os.PathError
			switch {
			case (errs[0] == nil) != (errs[1] == nil):
				t.Errorf("removePath: %v; os.Remove: %v", errs[0], errs[1])
			case errs[0] != nil && (!errors.As(errs[0], &pe0) || !errors.As(errs[1], &pe1) || pe0.Op != pe1.Op || pe0.Err != pe1.Err):
				t.Errorf("removePath: %#v; os.Remove: %#v", errs[0], errs[1])
			}
		})
	}
}
