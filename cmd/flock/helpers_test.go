//go:build unix && !aix && !(solaris && !illumos)

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-flock/flock/internal/proclocks"
	"github.com/go-flock/flock/internal/testproc"
	"golang.org/x/sys/unix"
)

// The tests run the flock binary built from this directory ("ours") and,
// when it is installed, util-linux flock(1) through the same scenarios, and
// check that both give the same exit status, the same messages where
// util-linux's are matched, and the same lock state. Processes are
// synchronised through pipes: a command that holds a lock prints "ready" and
// waits for its standard input to close.

const (
	utilPath = "/usr/bin/flock"
	bound    = testproc.Timeout // the longest any single step may take
)

var (
	oursBin string // built by TestMain
	utilBin string // utilPath if it is util-linux flock, else ""
	utilWhy string // why utilBin is ""
	umask   int
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "flock-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	// Reachable by an unprivileged user, for the read-only file test.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	oursBin = filepath.Join(dir, "flock")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot build cmd/flock:", err)
		return 2
	}
	build := exec.Command(goTool, "build", "-o", oursBin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 2
	}

	out, err := exec.Command(utilPath, "--version").Output()
	switch {
	case err != nil:
		utilWhy = fmt.Sprintf("%s: %v", utilPath, err)
	case !bytes.Contains(out, []byte("util-linux")):
		utilWhy = fmt.Sprintf("%s is not util-linux flock: %q", utilPath, out)
	default:
		utilBin = utilPath
	}
	if utilBin == "" {
		fmt.Printf("util-linux flock not available (%s): comparisons run against ours only\n", utilWhy)
	}
	umask = syscall.Umask(0)
	syscall.Umask(umask)
	return m.Run()
}

// forEach runs f as a parallel subtest for ours and for util-linux flock,
// skipping the latter with the reason if it is not installed.
func forEach(t *testing.T, f func(t *testing.T, bin string)) {
	t.Helper()
	for _, im := range []struct{ name, bin string }{{"ours", oursBin}, {"util-linux", utilBin}} {
		im := im
		t.Run(im.name, func(t *testing.T) {
			if im.bin == "" {
				t.Skip("util-linux flock not available: " + utilWhy)
			}
			t.Parallel()
			f(t, im.bin)
		})
	}
}

// pairs runs f for each (holder, contender) pair of different
// implementations, for the interoperation tests.
func pairs(t *testing.T, f func(t *testing.T, holder, contender string)) {
	t.Helper()
	for _, p := range []struct{ name, h, c string }{
		{"ours holds, util-linux contends", oursBin, utilBin},
		{"util-linux holds, ours contends", utilBin, oursBin},
	} {
		p := p
		t.Run(p.name, func(t *testing.T) {
			if utilBin == "" {
				t.Skip("util-linux flock not available: " + utilWhy)
			}
			t.Parallel()
			f(t, p.h, p.c)
		})
	}
}

// testDir returns a new directory that an unprivileged user can enter.
func testDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "flock-cmd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A result is how a flock process ended.
type result struct {
	code   int            // exit status; -1 if killed by a signal
	sig    syscall.Signal // the signal that killed it, if any
	stdout string
	stderr string
}

func (r result) String() string {
	if r.code < 0 {
		return fmt.Sprintf("killed by %v (stderr %q)", r.sig, r.stderr)
	}
	return fmt.Sprintf("exit %d (stderr %q)", r.code, r.stderr)
}

func resultOf(ps *os.ProcessState, stdout, stderr string) result {
	r := result{code: ps.ExitCode(), stdout: stdout, stderr: stderr}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.code, r.sig = -1, ws.Signal()
	}
	return r
}

// run runs bin, invoked by the name "flock" so that messages compare, with
// args, and returns how it ended.
func run(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Args = append([]string{"flock"}, args...)
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not end within %v", bin, args, bound)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	return resultOf(cmd.ProcessState, stdout.String(), stderr.String())
}

// A proc is a running process whose standard input and output are pipes to
// the test (see internal/testproc), with its standard error kept.
type proc struct {
	*testproc.Proc
	t      *testing.T
	cmd    *exec.Cmd
	stderr *bytes.Buffer // complete once the output has ended
	waited bool
	res    result
}

// start starts argv (argv[0] is the program's path).
func start(t *testing.T, argv ...string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	p := &proc{t: t, cmd: cmd, stderr: new(bytes.Buffer)}
	cmd.Stderr = p.stderr
	var err error
	if p.Proc, err = testproc.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.waited {
			p.Kill()
		}
	})
	return p
}

// expect waits for the next line of output and checks it.
func (p *proc) expect(want string) {
	p.t.Helper()
	if line := p.line(); line != want {
		p.t.Fatalf("%q printed %q, want %q", p.cmd.Args, line, want)
	}
}

// line returns the next line of output.
func (p *proc) line() string {
	p.t.Helper()
	line, err := p.Line()
	switch err {
	case testproc.ErrExited:
		p.t.Fatalf("%q ended before printing a line: %v", p.cmd.Args, p.wait())
	case testproc.ErrTimeout:
		p.t.Fatalf("%q printed nothing within %v", p.cmd.Args, bound)
	}
	return line
}

// wait closes the process's standard input and waits for it to end.
func (p *proc) wait() result {
	p.t.Helper()
	if p.waited {
		return p.res
	}
	p.waited = true
	out, err := p.End()
	if err == testproc.ErrTimeout {
		p.t.Fatalf("%q did not end within %v", p.cmd.Args, bound)
	}
	p.res = resultOf(p.cmd.ProcessState, strings.Join(out, "\n"), p.stderr.String())
	return p.res
}

// waitProcess waits for the process itself to end, not for its standard
// output to close (a command it started may keep that open), and returns
// its wait status. Its output stays readable with expect.
func (p *proc) waitProcess() syscall.WaitStatus {
	p.t.Helper()
	done := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := p.cmd.Process.Wait()
		done <- st
	}()
	select {
	case st := <-done:
		p.waited = true // the exec.Cmd cannot be waited for any more
		if st == nil {
			p.t.Fatalf("%q: wait failed", p.cmd.Args)
		}
		return st.Sys().(syscall.WaitStatus)
	case <-time.After(bound):
		p.cmd.Process.Kill()
		p.t.Fatalf("%q did not end within %v", p.cmd.Args, bound)
	}
	return 0
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// heldCommand is a command that says "ready" and runs until its standard
// input closes.
var heldCommand = []string{"sh", "-c", "echo ready; read x; exit 0"}

// hold starts bin with args (options and the lock file) around heldCommand
// and returns once the command runs, that is once the lock is held.
func hold(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	argv := append([]string{bin}, args...)
	p := start(t, append(argv, heldCommand...)...)
	p.expect("ready")
	return p
}

// release ends a holder and checks that it exited 0.
func (p *proc) release() {
	p.t.Helper()
	if r := p.wait(); r.code != 0 {
		p.t.Fatalf("holder %q: %v", p.cmd.Args, r)
	}
}

// probe reports the lock state of path as another process sees it:
// "free", "shared" (a shared lock can be added) or "exclusive".
func probe(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	for _, c := range []struct {
		how   int
		state string
	}{{unix.LOCK_EX, "free"}, {unix.LOCK_SH, "shared"}} {
		switch err := unix.Flock(fd, c.how|unix.LOCK_NB); err {
		case nil:
			unix.Flock(fd, unix.LOCK_UN)
			return c.state
		case unix.EWOULDBLOCK:
		default:
			t.Fatalf("flock %s: %v", path, err)
		}
	}
	return "exclusive"
}

// waitFree waits, within bound, until path can be locked exclusively.
func waitFree(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
	select {
	case err := <-done:
		// Unlock before closing: a child the test forks meanwhile shares
		// the open file until it execs, and would hold the lock that long.
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(bound):
		t.Fatalf("%s still locked after %v", path, bound)
	}
}

// waitBlocked waits until some process is blocked in the kernel waiting for
// a lock on path, as /proc/locks shows. Where there is no /proc/locks it
// returns at once: the tests that use it stay correct, only less sharp.
func waitBlocked(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// "1: -> FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"
	inode := fmt.Sprintf(":%d ", fi.Sys().(*syscall.Stat_t).Ino)
	deadline := time.Now().Add(bound)
	for {
		data, err := readProcLocks()
		if err != nil {
			t.Logf("cannot see lock waiters (%v); going on", err)
			return
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "->") && strings.Contains(line, inode) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody waited for a lock on %s within %v", path, bound)
		}
		time.Sleep(2 * time.Millisecond) // polling the kernel's lock table
	}
}

// readProcLocks returns /proc/locks (see internal/proclocks).
func readProcLocks() ([]byte, error) { return proclocks.Read() }
