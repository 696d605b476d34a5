//go:build unix

package flock

// Open on Unix: close-on-exec, links, directories, special files,
// permissions, read-only fallbacks and the errors of file systems that
// cannot lock.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func init() {
	childRoles["fds"] = fdsMain
	childRoles["probe"] = probeMain
}

// The lock file's descriptor is not inherited by programs the process
// starts.
func TestCloseOnExec(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skipf("no /proc/self/fd to list a child's descriptors: %v", err)
	}
	p := lockPath(t)
	m := mustOpen(t, p)
	m.Lock()
	defer m.Unlock()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=fds")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), p) {
		t.Fatalf("child inherited the lock file:\n%s", out)
	}
	if !strings.Contains(string(out), "/") {
		t.Fatalf("child listed no descriptors: %q", out)
	}
}

func fdsMain() {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Println(e.Name(), target)
	}
}

// Handles reached through a symbolic link or a hard link are the same
// lock; NoFollow refuses the link.
func TestLinks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lock")
	m := mustOpen(t, p)
	sym, hard := filepath.Join(dir, "sym"), filepath.Join(dir, "hard")
	if err := os.Symlink("lock", sym); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(p, hard); err != nil {
		t.Fatal(err)
	}
	s, h := mustOpen(t, sym), mustOpen(t, hard)
	if s.e != m.e || h.e != m.e {
		t.Fatal("handles through links have their own entries")
	}
	hammer(t, []*RWMutex{m, s, h}, 6, 500)

	_, err := Open(sym, NoFollow())
	var pe *fs.PathError
	if !errors.Is(err, errSymlink) || !errors.As(err, &pe) || pe.Path != sym {
		t.Fatalf("Open(symlink, NoFollow) = %v; want a PathError naming %s", err, sym)
	}
	mustOpen(t, hard, NoFollow())

	// A dangling symlink is followed to create its target, unless NoFollow.
	dangling := filepath.Join(dir, "dangling")
	os.Symlink("target", dangling)
	if _, err := Open(dangling, NoFollow()); err == nil {
		t.Fatal("Open(dangling symlink, NoFollow) succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "target")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Open with NoFollow created the symlink's target")
	}
}

// Directories are locked as flock(1) locks them, where the backend can.
func TestDirectory(t *testing.T) {
	dir := t.TempDir()
	m := mustOpen(t, dir)
	c := startChild(t, dir)
	m.RLock()
	if got := c.Do("tryrlock"); got != "ok" {
		t.Fatalf("child tryrlock on a read-locked directory = %s", got)
	}
	c.Must(t, "runlock")
	ok, err := m.TryLock()
	m.RUnlock()
	if ok || err != nil {
		t.Fatalf("TryLock on a directory we read-lock = %v, %v; want false, nil", ok, err)
	}
	if backendName == "fcntl" {
		if _, err := m.TryLock(); !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("exclusive fcntl lock of a directory = %v; want fs.ErrPermission", err)
		}
		return
	}
	if err := m.LockContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.Do("tryrlock"); got != "held" {
		t.Fatalf("child tryrlock on a write-locked directory = %s", got)
	}
	m.Unlock()
}

func TestSpecialFilesRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(p, 0o666); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	_, err := Open(p)
	var pe *fs.PathError
	if !errors.Is(err, errType) || !errors.As(err, &pe) || pe.Path != p {
		t.Fatalf("Open(FIFO) = %v; want a PathError saying it is not a regular file", err)
	}
}

func TestPerm(t *testing.T) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	for _, tc := range []struct {
		opts []Option
		want fs.FileMode
	}{
		{nil, 0o644},
		{[]Option{WithPerm(0o600)}, 0o600},
	} {
		p := lockPath(t)
		mustOpen(t, p, tc.opts...)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.want {
			t.Errorf("created with %v; want %v", fi.Mode().Perm(), tc.want)
		}
	}
	// An existing file keeps its mode.
	p := lockPath(t)
	os.WriteFile(p, nil, 0o640)
	mustOpen(t, p, WithPerm(0o666))
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("Open changed an existing file's mode to %v", fi.Mode().Perm())
	}
}

// Permission cases, checked in a child that runs without root's override
// (as nobody when the test runs as root).
func TestPermissions(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ro := filepath.Join(dir, "readonly")
	os.WriteFile(ro, []byte("x"), 0o444)
	closed := filepath.Join(dir, "closed")
	os.Mkdir(closed, 0o555)
	unreadable := filepath.Join(dir, "unreadable")
	os.Mkdir(unreadable, 0o311)

	want := map[string]string{
		// A file one may only read can be locked, as flock(1) allows;
		// fcntl needs write access for an exclusive lock.
		ro: "open ok; rlock ok; lock " + map[string]string{"flock": "ok", "fcntl": "permission"}[backendName],
		// Creating a file where one may not write fails at Open.
		filepath.Join(closed, "lock"): "open permission",
		// A directory one may not read says so (not "is a directory").
		unreadable: "open permission",
	}
	for path, want := range want {
		if got := probe(t, path); got != want {
			t.Errorf("%s: %s; want %s", path, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(closed, "lock")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a failed Open created the file")
	}
}

// probe runs a child that opens path and tries to lock it, without root's
// permission override, and returns what it could do.
func probe(t *testing.T, path string) string {
	t.Helper()
	bin := os.Args[0]
	cmd := exec.Command(bin, "-test.run=^$")
	if os.Geteuid() == 0 {
		// nobody must be able to run a copy of the test binary.
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		os.Chmod(filepath.Dir(dir), 0o755)
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(dir, "probe.test")
		if err := os.WriteFile(cp, data, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(cp, "-test.run=^$")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	cmd.Env = append(os.Environ(), childEnv+"=probe", "FLOCK_TEST_PATH="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe child: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func probeMain() {
	path := os.Getenv("FLOCK_TEST_PATH")
	m, err := Open(path)
	if err != nil {
		fmt.Println("open", errKind(err, path))
		return
	}
	ok, err := m.TryRLock()
	if ok {
		m.RUnlock()
	}
	fmt.Print("open ok; rlock ", okKind(ok, err, path))
	ok, err = m.TryLock()
	if ok {
		m.Unlock()
	}
	fmt.Println("; lock", okKind(ok, err, path))
}

func okKind(ok bool, err error, path string) string {
	if ok {
		return "ok"
	}
	return errKind(err, path)
}

// errKind names an error's class, or says what is wrong with it.
func errKind(err error, path string) string {
	var pe *fs.PathError
	switch {
	case err == nil:
		return "held"
	case !errors.As(err, &pe) || pe.Path != path:
		return "error without the path: " + err.Error()
	case errors.Is(err, fs.ErrPermission):
		return "permission"
	case errors.Is(err, fs.ErrNotExist):
		return "notexist"
	}
	return "error: " + err.Error()
}

// Files that cannot be opened for writing though they exist (a running
// executable, an immutable or append-only file) are locked read-only, as
// flock(1) locks them.
func TestOpenReadOnlyFallback(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "sleep")
	data, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Skipf("no /bin/sleep to run as a busy executable: %v", err)
	}
	os.WriteFile(exe, data, 0o755)
	cmd := exec.Command(exe, "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot run %s: %v", exe, err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	paths := []string{exe}
	for _, attr := range []string{"i", "a"} {
		p := filepath.Join(dir, "attr-"+attr)
		os.WriteFile(p, nil, 0o644)
		if out, err := exec.Command("chattr", "+"+attr, p).CombinedOutput(); err != nil {
			t.Logf("cannot test chattr +%s here (needs root and a file system with attributes): %v %s", attr, err, out)
			continue
		}
		defer exec.Command("chattr", "-"+attr, p).Run()
		paths = append(paths, p)
	}
	for _, p := range paths {
		m, err := Open(p)
		if err != nil {
			t.Errorf("Open(%s) = %v; want it opened read-only", p, err)
			continue
		}
		if ok, err := m.TryRLock(); !ok || err != nil {
			t.Errorf("%s: TryRLock = %v, %v", p, ok, err)
		} else {
			m.RUnlock()
		}
		m.Close()
	}
}

func TestUnsupportedErrors(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENOLCK, unix.ENOTSUP, unix.EOPNOTSUPP, unix.ENOSYS} {
		err := &fs.PathError{Op: "lock", Path: "p", Err: lockError(errno)}
		if !errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, errno) {
			t.Errorf("%v: errors.Is ErrUnsupported %v, Is the errno %v; want both", errno,
				errors.Is(err, errors.ErrUnsupported), errors.Is(err, errno))
		}
	}
	if err := lockError(unix.EIO); errors.Is(err, errors.ErrUnsupported) {
		t.Error("EIO reported as unsupported")
	}
}
