//go:build unix

package flock

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
	"time"

	"github.com/go-flock/flock/internal/testproc"
	"golang.org/x/sys/unix"
)

func init() {
	childRoles["fds"] = fdsMain
	childRoles["probe"] = probeMain
}

// Exclusive vs exclusive, exclusive vs shared and shared vs shared behave
// as an RWMutex between processes, whichever side holds.
func TestCrossProcess(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	for _, tc := range []struct {
		hold, probe string
		want        string
	}{
		{"lock", "trylock", "held"},
		{"lock", "tryrlock", "held"},
		{"rlock", "trylock", "held"},
		{"rlock", "tryrlock", "ok"},
	} {
		t.Run("we "+tc.hold+", child "+tc.probe, func(t *testing.T) {
			release := m.Unlock
			if tc.hold == "lock" {
				m.Lock()
			} else {
				m.RLock()
				release = m.RUnlock
			}
			got := c.Do(tc.probe)
			release()
			if got != tc.want {
				t.Fatalf("child %s = %s; want %s", tc.probe, got, tc.want)
			}
			if got == "ok" {
				c.Must(t, map[string]string{"trylock": "unlock", "tryrlock": "runlock"}[tc.probe])
			}
			// Released: the child gets an exclusive lock now.
			if got := c.Do("trylock"); got != "ok" {
				t.Fatalf("child trylock after release = %s", got)
			}
			c.Must(t, "unlock")
		})
		t.Run("child "+tc.hold+", we "+tc.probe, func(t *testing.T) {
			c.Must(t, tc.hold)
			try, release := m.TryLock, m.Unlock
			if tc.probe == "tryrlock" {
				try, release = m.TryRLock, m.RUnlock
			}
			ok, err := try()
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				release()
			}
			c.Must(t, strings.TrimSuffix(tc.hold, "lock")+"unlock")
			if want := tc.want == "ok"; ok != want {
				t.Fatalf("%s while child holds %s = %v; want %v", tc.probe, tc.hold, ok, want)
			}
		})
	}
}

// A blocked Lock is woken by another process's release and then holds the
// lock: what the holder wrote is there, and the holder cannot get back in.
func TestCrossProcessHandoff(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	for _, wait := range []struct {
		name string
		lock func()
	}{
		{"Lock", m.Lock},
		{"LockContext", func() {
			if err := m.LockContext(context.Background()); err != nil {
				t.Error(err)
			}
		}},
	} {
		c.Must(t, "lock")
		c.Must(t, "write "+wait.name)
		got := make(chan struct{})
		go func() { wait.lock(); close(got) }()
		waitingInKernel(t, m)
		c.Must(t, "unlock")
		<-got
		if got := c.Do("tryrlock"); got != "held" {
			t.Fatalf("%s: child tryrlock while we hold = %s", wait.name, got)
		}
		b := make([]byte, len(wait.name))
		m.File().ReadAt(b, 0)
		if string(b) != wait.name {
			t.Fatalf("read %q; want %q", b, wait.name)
		}
		m.Unlock()
	}
}

// A process killed while it holds the lock leaves it free.
func TestChildKilledWhileHolding(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	for _, hold := range []string{"lock", "rlock"} {
		c := startChild(t, p)
		c.Must(t, hold)
		if ok, _ := m.TryLock(); ok {
			t.Fatalf("TryLock while the child holds %s succeeded", hold)
		}
		c.Kill()
		if ok, err := m.TryLock(); !ok || err != nil {
			t.Fatalf("TryLock after the child holding %s was killed = %v, %v", hold, ok, err)
		}
		m.Unlock()
	}
}

// Cancelling a wait for another process's lock returns promptly and, once
// the other process releases, leaves nothing held and no goroutine behind.
func TestCancelCrossProcessWait(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	for _, tc := range []struct {
		name string
		hold string
		wait func(context.Context) error
	}{
		{"writer", "rlock", m.LockContext},
		{"reader", "lock", m.RLockContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Must(t, tc.hold)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			err := tc.wait(ctx)
			late := time.Since(deadlineOf(ctx))
			t.Logf("returned %v after the deadline", late)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v; want context.DeadlineExceeded", err)
			}
			if late > time.Second {
				t.Fatalf("returned %v after the deadline", late)
			}
			c.Must(t, strings.TrimSuffix(tc.hold, "lock")+"unlock")
			waitIdle(t, m.e)
			if got := c.Do("trylock"); got != "ok" {
				t.Fatalf("child trylock after our cancelled wait = %s: the abandoned wait kept the lock", got)
			}
			c.Must(t, "unlock")
		})
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// A wait abandoned by its caller is adopted by the next waiter of the same
// mode: no second OS wait starts, and the waiter gets the lock when the
// other process releases.
func TestAbandonedWaitAdopted(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	c.Must(t, "lock")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := m.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	m.e.mu.Lock()
	first := m.e.inflight[exclusive]
	m.e.mu.Unlock()
	if first == nil {
		t.Fatal("no OS wait in flight after the cancelled LockContext")
	}
	got := make(chan struct{})
	go func() { m.Lock(); close(got) }()
	eventually(t, "the second waiter is admitted", func() bool {
		m.e.mu.Lock()
		defer m.e.mu.Unlock()
		return m.e.writer
	})
	m.e.mu.Lock()
	again := m.e.inflight[exclusive]
	m.e.mu.Unlock()
	if again != first {
		t.Fatal("a second OS wait was started instead of adopting the first")
	}
	c.Must(t, "unlock")
	<-got
	if got := c.Do("trylock"); got != "held" {
		t.Fatalf("child trylock = %s while we hold", got)
	}
	m.Unlock()
}

// util-linux flock(1) and this package exclude each other, both ways.
func TestFlockCommandInterop(t *testing.T) {
	if backendName != "flock" {
		t.Skipf("the %s backend's locks are POSIX record locks, which flock(1) does not see on Linux", backendName)
	}
	bin, err := exec.LookPath("flock")
	if err != nil {
		t.Skipf("flock(1) is not installed (util-linux): %v", err)
	}
	p := lockPath(t)
	m := mustOpen(t, p)
	exit := func(args ...string) int { return flockExit(t, p, args...) }
	m.Lock()
	if got := exit("-n"); got != 1 {
		t.Errorf("flock -n while we hold exclusive: exit %d; want 1", got)
	}
	if got := exit("-s", "-n"); got != 1 {
		t.Errorf("flock -s -n while we hold exclusive: exit %d; want 1", got)
	}
	m.Unlock()
	m.RLock()
	if got := exit("-s", "-n"); got != 0 {
		t.Errorf("flock -s -n while we hold shared: exit %d; want 0", got)
	}
	if got := exit("-n"); got != 1 {
		t.Errorf("flock -n while we hold shared: exit %d; want 1", got)
	}
	m.RUnlock()
	if got := exit("-n"); got != 0 {
		t.Errorf("flock -n after we released: exit %d; want 0", got)
	}

	// flock(1) holds: our tries fail until it exits, a blocked Lock then wins.
	c := testproc.Start(t, exec.Command(bin, p, "-c", "echo held; read x"))
	c.Expect(t, "held")
	if ok, err := m.TryLock(); ok || err != nil {
		t.Errorf("TryLock while flock(1) holds = %v, %v; want false, nil", ok, err)
	}
	if ok, err := m.TryRLock(); ok || err != nil {
		t.Errorf("TryRLock while flock(1) holds = %v, %v; want false, nil", ok, err)
	}
	got := make(chan struct{})
	go func() { m.Lock(); close(got) }()
	c.CloseStdin()
	<-got
	c.Stop()
	m.Unlock()
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
