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
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Multi-process tests re-execute this test binary with FLOCK_TEST_CHILD set
// to a role; the child talks to the test over its stdin and stdout.
const childEnv = "FLOCK_TEST_CHILD"

// childRoles maps a role name to the function a child runs; it must exit.
var childRoles = map[string]func(){
	"locker": lockerMain,
}

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		run, ok := childRoles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(2)
		}
		run()
		os.Exit(0)
	}
	code := m.Run()
	if code == 0 {
		// Every handle the tests opened is closed, so every entry is gone
		// and no wait goroutine is left.
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
	tried := func(ok bool, err error) string {
		switch {
		case err != nil:
			return "err " + err.Error()
		case ok:
			return "ok"
		}
		return "held"
	}
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

// A child is a locker process holding its own handle on a lock file.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	once  sync.Once
}

// childTimeout bounds every wait for a child's answer, so that a broken
// lock fails the test instead of hanging it.
const childTimeout = 20 * time.Second

func startChild(t testing.TB, path string) *child {
	t.Helper()
	return startChildRole(t, "locker", path)
}

// startChildRole starts a child in role on path; env adds variables such
// as FLOCK_TEST_OPTS.
func startChildRole(t testing.TB, role, path string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "FLOCK_TEST_PATH="+path)
	// Under -race a process sleeps a second at exit, unless told not to.
	cmd.Env = append(cmd.Env, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	return startCommand(t, cmd)
}

// startCommand starts cmd as a child that speaks the locker's protocol: a
// line per command on stdin, a line per answer on stdout, "ready" first.
func startCommand(t testing.TB, cmd *exec.Cmd) *child {
	t.Helper()
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(c.stop)
	if got := c.recv(); got != "ready" {
		t.Fatalf("child: %s", got)
	}
	return c
}

// send writes a command without waiting for its answer.
func (c *child) send(cmd string) error {
	_, err := io.WriteString(c.stdin, cmd+"\n")
	return err
}

// recv returns the child's next answer, or what went wrong instead.
func (c *child) recv() string {
	select {
	case l, ok := <-c.lines:
		if !ok {
			return "child exited"
		}
		return l
	case <-time.After(childTimeout):
		return "child did not answer in time"
	}
}

// do sends a command and returns its answer.
func (c *child) do(cmd string) string {
	if err := c.send(cmd); err != nil {
		return "send: " + err.Error()
	}
	return c.recv()
}

// must sends a command that must answer "ok", failing t otherwise.
func (c *child) must(t testing.TB, cmd string) {
	t.Helper()
	if got := c.do(cmd); got != "ok" {
		t.Fatalf("child %s: %s", cmd, got)
	}
}

// kill kills the child with SIGKILL (TerminateProcess on Windows) and reaps it.
func (c *child) kill() {
	c.once.Do(func() {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		for range c.lines {
		}
	})
}

func (c *child) stop() {
	c.once.Do(func() {
		c.stdin.Close() // EOF ends the command loop and the process
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(childTimeout):
			c.cmd.Process.Kill()
			<-done
		}
		for range c.lines {
		}
	})
}
