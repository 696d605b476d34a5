//go:build linux

package flock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-flock/flock/internal/testproc"
	"golang.org/x/sys/unix"
)

// osLocks returns the locks /proc/locks lists for the file at path held by
// this process, as "READ" or "WRITE", not counting blocked requests. It
// reads the table as Holders does (readProcLocks); a line that a read in
// pieces shows twice is counted once, since distinct locks differ in their
// ordinal.
func osLocks(t *testing.T, path string) []string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	data, err := readProcLocks()
	if err != nil {
		t.Skipf("cannot count OS locks without /proc/locks: %v", err)
	}
	var locks []string
	pid := strconv.Itoa(os.Getpid())
	seen := make(map[string]bool)
	for _, line := range strings.Split(string(data), "\n") {
		// 1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF
		fields := strings.Fields(line)
		if len(fields) < 6 || fields[1] == "->" || seen[line] {
			continue
		}
		seen[line] = true
		dev := uint64(st.Dev)
		if fields[1] == procLocksType && fields[4] == pid && deviceIs(fields[5], unix.Major(dev), unix.Minor(dev), st.Ino) {
			locks = append(locks, fields[3])
		}
	}
	return locks
}

// All readers of the process share one OS shared lock: the first takes it,
// the last drops it. A writer holds one exclusive lock.
func TestOneOSLockPerProcess(t *testing.T) {
	p := lockPath(t)
	a, b := mustOpen(t, p), mustOpen(t, p)
	if got := osLocks(t, p); len(got) != 0 {
		t.Fatalf("OS locks before locking: %v", got)
	}
	a.RLock()
	if got := osLocks(t, p); fmt.Sprint(got) != "[READ]" {
		t.Fatalf("OS locks with one reader: %v; want [READ]", got)
	}
	const readers = 16
	var wg sync.WaitGroup
	for i := 0; i < readers; i++ {
		m := []*RWMutex{a, b}[i%2]
		wg.Add(1)
		go func() { defer wg.Done(); m.RLock() }()
	}
	wg.Wait()
	if got := osLocks(t, p); fmt.Sprint(got) != "[READ]" {
		t.Fatalf("OS locks with %d readers: %v; want [READ]", readers+1, got)
	}
	a.RUnlock()
	for i := 0; i < readers; i++ {
		[]*RWMutex{a, b}[i%2].RUnlock()
		want := "[READ]"
		if i == readers-1 {
			want = "[]"
		}
		if got := osLocks(t, p); fmt.Sprint(got) != want {
			t.Fatalf("OS locks with %d readers left: %v; want %s", readers-1-i, got, want)
		}
	}
	b.Lock()
	if got := osLocks(t, p); fmt.Sprint(got) != "[WRITE]" {
		t.Fatalf("OS locks with a writer: %v; want [WRITE]", got)
	}
	b.Unlock()
	if got := osLocks(t, p); len(got) != 0 {
		t.Fatalf("OS locks after Unlock: %v", got)
	}
}

// threadsIn returns how many threads of this process are in the system call
// nr, and how many threads it has.
// lockSyscall is the system call in which the backend's waits block.
func lockSyscall() uintptr {
	if backendName == "fcntl" {
		return unix.SYS_FCNTL
	}
	return unix.SYS_FLOCK
}

func threadsIn(t *testing.T, nr uintptr) (in, all int) {
	in, all, err := testproc.ThreadsIn(0, nr)
	if err != nil {
		t.Skipf("cannot inspect threads: %v", err)
	}
	return in, all
}

// However many goroutines wait, one thread waits in the kernel, and it
// waits there (no polling): it is in the lock system call.
func TestOneKernelWaiter(t *testing.T) {
	nr := lockSyscall()
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	c.Must(t, "lock")

	// Let the runtime start the threads it keeps anyway.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); m.RLockContext(context.Background()) }()
	}
	c.Must(t, "unlock")
	wg.Wait()
	for i := 0; i < 8; i++ {
		m.RUnlock()
	}
	c.Must(t, "lock")
	_, before := threadsIn(t, nr)

	const waiters = 200
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, waiters)
	for i := 0; i < waiters; i++ {
		go func() { errs <- m.LockContext(ctx) }()
	}
	eventually(t, "all waiters wait", func() bool {
		m.e.mu.Lock()
		defer m.e.mu.Unlock()
		return m.e.queue.Len() == waiters-1 && m.e.waiting()
	})
	eventually(t, "the wait reaches the kernel", func() bool {
		in, _ := threadsIn(t, nr)
		return in == 1
	})
	in, after := threadsIn(t, nr)
	t.Logf("%d goroutines waiting: %d thread(s) in the lock call, threads %d -> %d", waiters, in, before, after)
	if in != 1 {
		t.Errorf("%d threads in the lock system call; want 1", in)
	}
	if after-before > 3 {
		t.Errorf("threads went from %d to %d with %d waiting goroutines", before, after, waiters)
	}
	cancel()
	for i := 0; i < waiters; i++ {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("waiter returned %v", err)
		}
	}
	c.Must(t, "unlock")
	waitIdle(t, m.e)
	if got := c.Do("trylock"); got != "ok" {
		t.Fatalf("child trylock after all waiters left = %s", got)
	}
}

// descriptorsUnder returns the targets of the process's descriptors open
// on dir or on a file under it (removed ones included). A leak check
// counts only those: descriptors of other tests' child processes and
// background reads come and go meanwhile, so a count of all of them can
// move without any leak (it did, under -count 4).
func descriptorsUnder(t *testing.T, dir string) []string {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list descriptors: %v", err)
	}
	var open []string
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // closed since ReadDir (ReadDir's own, for one)
		}
		if target == real || strings.HasPrefix(target, real+string(filepath.Separator)) {
			open = append(open, target)
		}
	}
	return open
}

func TestNoDescriptorLeak(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 50; i++ {
		p := filepath.Join(dir, strconv.Itoa(i%5))
		a, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && len(descriptorsUnder(t, dir)) == 0 {
			t.Fatal("descriptorsUnder sees no descriptor while a handle is open")
		}
		b, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		a.Lock()
		a.Unlock()
		b.RLock()
		b.RUnlock()
		a.Close()
		b.Close()
		Open(filepath.Join(dir, "missing", "x")) // fails
	}
	if open := descriptorsUnder(t, dir); len(open) != 0 {
		t.Fatalf("descriptors left open: %q", open)
	}
}

// privateMounts moves the test's goroutine, on a thread of its own, into a
// mount namespace of its own, so that what the test mounts is never seen
// outside it and goes with the thread even if the test is killed; it skips
// the test where that is not allowed (it needs CAP_SYS_ADMIN). The thread
// stays locked: it ends with the test's goroutine, and the runtime starts
// no thread from a locked one.
func privateMounts(t *testing.T) {
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		t.Skipf("cannot make a mount namespace (needs root): %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Skipf("cannot make the mounts private: %v", err)
	}
}

// A file on a read-only file system can be locked; creating one there fails
// with EROFS naming the path.
func TestReadOnlyFileSystem(t *testing.T) {
	privateMounts(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs to make read-only (needs root): %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	p := filepath.Join(dir, "lock")
	if err := os.WriteFile(p, []byte("data"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	if _, err := Open(p, ForWriting()); !errors.Is(err, fs.ErrPermission) || !errors.Is(err, unix.EROFS) {
		t.Fatalf("Open with ForWriting on a read-only file system = %v; want fs.ErrPermission wrapping EROFS", err)
	}
	m, err := Open(p)
	if err != nil {
		t.Fatalf("Open on a read-only file system: %v", err)
	}
	if m.Writable() {
		t.Error("Writable() = true on a read-only file system")
	}
	defer m.Close()
	if ok, err := m.TryRLock(); !ok || err != nil {
		t.Fatalf("TryRLock = %v, %v", ok, err)
	}
	m.RUnlock()
	ok, err := m.TryLock()
	if backendName == "fcntl" {
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("exclusive fcntl lock of a read-only file = %v, %v; want fs.ErrPermission", ok, err)
		}
	} else if !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	} else {
		m.Unlock()
	}
	q := filepath.Join(dir, "new")
	_, err = Open(q)
	var pe *fs.PathError
	if !errors.Is(err, unix.EROFS) || !errors.As(err, &pe) || pe.Path != q {
		t.Fatalf("Open of a new file on a read-only file system = %v; want EROFS naming %s", err, q)
	}
}

// A read-only bind mount of a writable directory: ForWriting refuses the
// file there, naming the path; without it the file is locked read-only.
func TestForWritingReadOnlyBindMount(t *testing.T) {
	privateMounts(t)
	src, dst := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "lock"), []byte("data"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount (needs root): %v", err)
	}
	defer unix.Unmount(dst, unix.MNT_DETACH)
	if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot make the bind mount read-only: %v", err)
	}
	p := filepath.Join(dst, "lock")
	_, err := Open(p, ForWriting())
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrPermission) || !errors.As(err, &pe) || pe.Path != p || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("Open with ForWriting on a read-only bind mount = %v; want fs.ErrPermission naming %s and saying read-only", err, p)
	}
	m, err := Open(p)
	if err != nil {
		t.Fatalf("Open on a read-only bind mount: %v", err)
	}
	defer m.Close()
	if m.Writable() {
		t.Error("Writable() = true on a read-only bind mount")
	}
	if ok, err := m.TryRLock(); !ok || err != nil {
		t.Fatalf("TryRLock = %v, %v", ok, err)
	}
	m.RUnlock()
}
