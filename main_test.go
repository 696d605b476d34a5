package flock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-flock/flock/internal/testproc"
	"go.uber.org/goleak"
)

// Multi-process tests re-execute this test binary in a role (see
// internal/testproc); the child talks to the test over its stdin and
// stdout.
const childEnv = testproc.RoleEnv

// childTimeout bounds every wait for a child.
const childTimeout = testproc.Timeout

// childRoles maps a role name to the function a child runs; it must exit.
var childRoles = map[string]func(){
	"locker": lockerMain,
}

func TestMain(m *testing.M) {
	testproc.RunRole(childRoles)
	code := m.Run()
	if code == 0 {
		// Every handle the tests opened is closed, so every entry is gone
		// and no wait goroutine is left, once the holder lookups of lock
		// errors (which keep their entry open) are done.
		lookupsRunning.Wait()
		registry.mu.Lock()
		n := len(registry.entries)
		registry.mu.Unlock()
		if n != 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d registry entries left after the tests\n", n)
			code = 1
		}
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: goroutines left after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// lockerMain serves lock commands on the file named by FLOCK_TEST_PATH, one
// per line on stdin, answering one line each on stdout:
//
//	lock, rlock          block until acquired, then "ok"
//	trylock, tryrlock    "ok" or "held"
//	unlock, runlock      "ok"
//	lockctx MS           LockContext with an MS-millisecond timeout: "ok" or "timeout"
//	write TEXT           write TEXT at offset 0 through File(): "ok"
//	read                 the file's content
//	exit                 exit 0
//
// Errors are answered "err MESSAGE".
func lockerMain() {
	m, err := Open(os.Getenv("FLOCK_TEST_PATH"), childOptions()...)
	if err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		fmt.Println(lockerDo(m, cmd, arg))
	}
}

// childOptions returns the options named in FLOCK_TEST_OPTS.
func childOptions() []Option {
	var opts []Option
	for _, o := range strings.Fields(os.Getenv("FLOCK_TEST_OPTS")) {
		switch o {
		case "prio":
			opts = append(opts, WriterPriority())
		}
	}
	return opts
}

func lockerDo(m *RWMutex, cmd, arg string) string {
	tried := testproc.TryAnswer
	switch cmd {
	case "lock":
		m.Lock()
	case "rlock":
		m.RLock()
	case "unlock":
		m.Unlock()
	case "runlock":
		m.RUnlock()
	case "trylock":
		return tried(m.TryLock())
	case "tryrlock":
		return tried(m.TryRLock())
	case "lockctx":
		var ms int
		fmt.Sscan(arg, &ms)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ms)*time.Millisecond)
		defer cancel()
		if err := m.LockContext(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return "timeout"
			}
			return "err " + err.Error()
		}
	case "write":
		if _, err := m.File().WriteAt([]byte(arg), 0); err != nil {
			return "err " + err.Error()
		}
	case "read":
		b, err := io.ReadAll(io.NewSectionReader(m.File(), 0, 1<<20))
		if err != nil {
			return "err " + err.Error()
		}
		return string(b)
	case "exit":
		os.Exit(0)
	default:
		return "err unknown command " + cmd
	}
	return "ok"
}

// A child is a process the test talks to, one line per message (see
// internal/testproc).
type child = testproc.Proc

func startChild(t testing.TB, path string) *child {
	t.Helper()
	return startChildRole(t, "locker", path)
}

// startChildRole starts a child in role on path; env adds variables such
// as FLOCK_TEST_OPTS.
func startChildRole(t testing.TB, role, path string, env ...string) *child {
	t.Helper()
	return startCommand(t, testproc.Command(role, append([]string{"FLOCK_TEST_PATH=" + path}, env...)...))
}

// startCommand starts cmd as a child that speaks the locker's protocol: a
// line per command on stdin, a line per answer on stdout, "ready" first.
func startCommand(t testing.TB, cmd *exec.Cmd) *child {
	t.Helper()
	c := testproc.Start(t, cmd)
	if got := c.Recv(); got != "ready" {
		t.Fatalf("child: %s", got)
	}
	return c
}
