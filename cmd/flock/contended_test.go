//go:build unix && !aix && !(solaris && !illumos)

package main

// Contended runs: the lock is held by someone else when flock starts, so
// flock has to wait for it, and what the command gets afterwards must be
// the same as when the lock was free: the locked open file, inherited by the
// command (and by whatever it leaves behind) unless -o, kept across the exec
// with -F. A wait that is granted on some other descriptor than the one the
// command gets is the failure these tests are for.
//
// The holder is the test process itself, through flock(2) on its own open
// file, so that it is neither implementation under test. That flock really
// waited is established from /proc/locks (a blocked request on the file's
// inode) before the holder lets go; without /proc/locks the contended cases
// skip, since they could not tell a wait from a late start.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// An extHolder is a lock taken by the test process on its own open file.
type extHolder struct {
	t *testing.T
	f *os.File
}

// holdExternally takes an exclusive lock on path (creating it) through a
// new open file of the test process, failing if it is not free.
func holdExternally(t *testing.T, path string) *extHolder {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		t.Fatalf("cannot take the holder's lock on %s: %v", path, err)
	}
	h := &extHolder{t: t, f: f}
	t.Cleanup(h.release)
	return h
}

// release drops the holder's lock; it may be called more than once.
func (h *extHolder) release() {
	if h.f != nil {
		// Unlock before closing: a child the test forks meanwhile shares
		// the open file until it execs, and would hold the lock that long.
		unix.Flock(int(h.f.Fd()), unix.LOCK_UN)
		h.f.Close()
		h.f = nil
	}
}

// A lockEntry is one line of /proc/locks about a file.
type lockEntry struct {
	blocked bool   // a request waiting for the lock ("->")
	class   string // FLOCK, POSIX, OFDLCK, ...
	mode    string // READ or WRITE
	pid     int
	line    string // as /proc/locks has it
}

// lockEntries returns what /proc/locks says about path, or the error that
// kept it from reading /proc/locks.
func lockEntries(t *testing.T, path string) ([]lockEntry, error) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ino := strconv.FormatUint(fi.Sys().(*syscall.Stat_t).Ino, 10)
	data, err := readProcLocks()
	if err != nil {
		return nil, err
	}
	var list []lockEntry
	// "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"
	// "1: -> FLOCK  ADVISORY  WRITE 1235 fe:00:5678 0 EOF"
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		f = f[1:]
		var e lockEntry
		if f[0] == "->" {
			e.blocked, f = true, f[1:]
		}
		if len(f) < 5 {
			continue
		}
		id := strings.Split(f[4], ":")
		if id[len(id)-1] != ino {
			continue
		}
		e.class, e.mode, e.line = f[0], f[2], line
		e.pid, _ = strconv.Atoi(f[3])
		list = append(list, e)
	}
	return list, nil
}

// requireProcLocks skips the test, with the reason, if /proc/locks cannot
// show that flock waited.
func requireProcLocks(t *testing.T) {
	t.Helper()
	if _, err := readProcLocks(); err != nil {
		t.Skipf("cannot read /proc/locks (%v), so cannot make sure flock waits for the lock", err)
	}
}

// utilProbe is the lock state of path as util-linux flock -n sees it:
// "free", "shared" or "exclusive"; "" if util-linux flock is not installed.
func utilProbe(t *testing.T, path string) string {
	t.Helper()
	if utilBin == "" {
		return ""
	}
	switch r := run(t, utilBin, "-n", path, "true"); r.code {
	case 0:
		return "free"
	case 1:
	default:
		t.Fatalf("%s -n %s true: %v", utilBin, path, r)
	}
	switch r := run(t, utilBin, "-s", "-n", path, "true"); r.code {
	case 0:
		return "shared"
	case 1:
		return "exclusive"
	default:
		t.Fatalf("%s -s -n %s true: %v", utilBin, path, r)
	}
	return ""
}

// checkState checks that path is in state want as other processes see it:
// through flock(2) from the test and through util-linux flock -n.
func checkState(t *testing.T, path, want, when string) {
	t.Helper()
	if got := probe(t, path); got != want {
		t.Errorf("%s the lock is %s (flock(2) probe), want %s", when, got, want)
	}
	if got := utilProbe(t, path); got != "" && got != want {
		t.Errorf("%s the lock is %s (%s -n probe), want %s", when, got, utilBin, want)
	}
}

// checkOwner checks that /proc/locks shows pid holding a flock lock of
// state want ("exclusive" or "shared") on path, and nobody else holding one.
func checkOwner(t *testing.T, path string, pid int, want, when string) {
	t.Helper()
	list, err := lockEntries(t, path)
	if err != nil {
		t.Logf("cannot read /proc/locks (%v); not checking who holds the lock", err)
		return
	}
	mode := map[string]string{"exclusive": "WRITE", "shared": "READ"}[want]
	var held, lines []string
	ok := false
	for _, e := range list {
		lines = append(lines, e.line)
		if e.blocked {
			continue
		}
		held = append(held, fmt.Sprintf("%s %s by pid %d", e.class, e.mode, e.pid))
		if e.class == "FLOCK" && e.mode == mode && e.pid == pid {
			ok = true
		}
	}
	if !ok || len(held) != 1 {
		t.Errorf("%s /proc/locks shows %q on the lock file, want only FLOCK %s by pid %d; its lines:\n%s", when, held, mode, pid, strings.Join(lines, "\n"))
	}
}

// waitQueued waits until flock is blocked in the kernel on path, and checks
// that the command, which prints its first line only once it runs, has not
// run yet.
func waitQueued(t *testing.T, c *proc, path string) {
	t.Helper()
	waitBlocked(t, path)
	select {
	case line, ok := <-c.Lines():
		if ok {
			t.Fatalf("%q ran its command (it printed %q) while another process held the lock", c.cmd.Args, line)
		}
		t.Fatalf("%q ended while another process held the lock: %v", c.cmd.Args, c.wait())
	default:
	}
}

// lockModes are the lock modes of the tests, with the state a holder in
// that mode shows to a probe.
var lockModes = []struct {
	name  string
	opts  []string
	state string
}{
	{"exclusive", nil, "exclusive"},
	{"shared", []string{"-s"}, "shared"},
}

// contention: each case runs with the lock free and with it held by
// another process when flock starts.
type contentionCase struct {
	name      string
	contended bool
}

var contention = []contentionCase{
	{"free", false},
	{"contended", true},
}

// setUp names the lock file in dir and, if contended, holds it from this
// process (nil otherwise); contended cases need /proc/locks to see flock
// queue.
func (cn contentionCase) setUp(t *testing.T, dir string) (lock string, h *extHolder) {
	t.Helper()
	lock = filepath.Join(dir, "lock")
	if cn.contended {
		requireProcLocks(t)
		h = holdExternally(t, lock)
	}
	return lock, h
}

// TestContendedNoFork checks that flock -F, having waited for the lock,
// execs the command with the lock held: while the command runs, an
// independent probe (flock(2), util-linux flock -n) finds the lock held in
// the mode asked for, /proc/locks shows it held by the command's pid (which
// is flock's), and it is released when the command exits. The same with the
// lock free at the start, for comparison.
func TestContendedNoFork(t *testing.T) {
	for _, m := range lockModes {
		for _, cn := range contention {
			m, cn := m, cn
			t.Run(m.name+"/"+cn.name, func(t *testing.T) {
				t.Parallel()
				forEach(t, func(t *testing.T, bin string) {
					lock, h := cn.setUp(t, testDir(t))
					argv := append(append([]string{bin, "-F"}, m.opts...), lock, "sh", "-c", "echo $$; read x; exit 0")
					c := start(t, argv...)
					if h != nil {
						waitQueued(t, c, lock)
						h.release()
					}
					pid := c.line()
					if pid != strconv.Itoa(c.cmd.Process.Pid) {
						t.Errorf("the command runs as pid %s, flock was %d", pid, c.cmd.Process.Pid)
					}
					checkState(t, lock, m.state, "while the command runs")
					checkOwner(t, lock, c.cmd.Process.Pid, m.state, "while the command runs")
					if r := c.wait(); r.code != 0 {
						t.Errorf("flock -F: %v, want exit 0", r)
					}
					checkState(t, lock, "free", "after the command exited")
				})
			})
		}
	}
}

// TestContendedBackgroundChild checks that, whether or not flock had to
// wait for the lock, a background process left behind by the command keeps
// the lock after the command and flock have exited, in the mode asked for,
// and that the lock goes when that process exits; with -o, that the
// background process does not have it: the lock goes with flock.
func TestContendedBackgroundChild(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []string
		want string // after flock exited, with the background child running
	}{
		{"inherited", nil, "exclusive"},
		{"inherited -s", []string{"-s"}, "shared"},
		{"-F", []string{"-F"}, "exclusive"},
		{"-F -s", []string{"-F", "-s"}, "shared"},
		{"-o", []string{"-o"}, "free"},
		{"-o -s", []string{"-o", "-s"}, "free"},
	} {
		for _, cn := range contention {
			tc, cn := tc, cn
			t.Run(tc.name+"/"+cn.name, func(t *testing.T) {
				t.Parallel()
				forEach(t, func(t *testing.T, bin string) {
					lock, h := cn.setUp(t, testDir(t))
					// cat runs in the background, keeping whatever
					// descriptors sh had apart from standard output and
					// error, until the test closes its standard input; sh
					// exits at once, and so does flock.
					script := "exec 7<&0; cat <&7 >/dev/null 2>&1 & echo started"
					argv := append(append([]string{bin}, tc.opts...), lock, "sh", "-c", script)
					c := start(t, argv...)
					if h != nil {
						waitQueued(t, c, lock)
						h.release()
					}
					c.expect("started")
					if st := c.waitProcess(); st.ExitStatus() != 0 {
						t.Fatalf("flock: %v, want exit 0", st)
					}
					checkState(t, lock, tc.want, "after flock exited, with its command's background child running,")
					c.CloseStdin() // ends cat
					waitFree(t, lock)
					checkState(t, lock, "free", "after the background child exited")
				})
			})
		}
	}
}

// TestContendedCommandDescriptor checks that the descriptor the command
// inherits is the one that carries the lock, whether or not flock had to
// wait: once the command has unlocked every descriptor it has on the lock
// file (with the FD form, flock -u N), the lock is free, although flock is
// still running.
func TestContendedCommandDescriptor(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skipf("no /proc/self/fd (%v) for the command to find its descriptors with", err)
	}
	if !fdLockSupported {
		t.Skip("the FD form is not supported here")
	}
	// $1 the lock file (symbolic links resolved, as readlink shows it), $2
	// the flock whose FD form unlocks.
	const script = `n=0
for l in /proc/$$/fd/*; do
	if [ "$(readlink "$l")" = "$1" ]; then
		"$2" -u "${l##*/}" || exit 99
		n=$((n+1))
	fi
done
echo "unlocked $n"
read x
exit 0`
	for _, m := range lockModes {
		for _, cn := range contention {
			m, cn := m, cn
			t.Run(m.name+"/"+cn.name, func(t *testing.T) {
				t.Parallel()
				forEach(t, func(t *testing.T, bin string) {
					dir, err := filepath.EvalSymlinks(testDir(t))
					if err != nil {
						t.Fatal(err)
					}
					lock, h := cn.setUp(t, dir)
					argv := append(append([]string{bin}, m.opts...), lock, "sh", "-c", script, "sh", lock, bin)
					c := start(t, argv...)
					if h != nil {
						waitQueued(t, c, lock)
						h.release()
					}
					if line := c.line(); line == "unlocked 0" {
						t.Errorf("the command inherited no descriptor of the lock file")
					} else if !strings.HasPrefix(line, "unlocked ") {
						t.Fatalf("the command printed %q", line)
					}
					checkState(t, lock, "free", "with flock running and its command having unlocked its descriptors of the lock file,")
					if r := c.wait(); r.code != 0 {
						t.Errorf("flock: %v, want exit 0", r)
					}
				})
			})
		}
	}
}
