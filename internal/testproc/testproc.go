// Package testproc is the test plumbing for tests that run other
// processes: the test binary itself, re-executed in a role (as Go's own
// tests re-execute themselves), or any command, which the test talks to
// over the child's standard input and output, one line per message.
//
// A test binary whose tests start children calls RunRole first in its
// TestMain: in a child it runs the role and exits, in the test it returns.
// Every wait for a child is bounded by Timeout, so that a child that hangs
// fails the test instead of hanging it.
package testproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// RoleEnv names the role a re-executed test binary plays.
const RoleEnv = "FLOCK_TEST_CHILD"

// Timeout bounds every wait for a child's line or its end.
const Timeout = 20 * time.Second

// RunRole runs the role named by RoleEnv, if the process is a child, and
// exits: with status 0 when the role's function returns, 2 for an unknown
// role. In the test process itself it returns at once.
func RunRole(roles map[string]func()) {
	role := os.Getenv(RoleEnv)
	if role == "" {
		return
	}
	run, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
		os.Exit(2)
	}
	run()
	os.Exit(0)
}

// Command returns a command that re-executes the test binary in role, with
// env added to the environment. It runs no test (the role runs from
// TestMain), and under the race detector it does not sleep at exit.
func Command(role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), RoleEnv+"="+role,
		"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// ErrExited and ErrTimeout are Line's errors: the child's output ended, or
// no line came within Timeout.
var (
	ErrExited  = errors.New("child exited")
	ErrTimeout = errors.New("child did not answer in time")
)

// A Proc is a running child with pipes to its standard input and output.
type Proc struct {
	Cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // standard output, line by line; closed at its end
	once  sync.Once
	err   error // of Wait, once ended
}

// Start starts cmd as StartCommand does, failing t if it cannot, and ends
// it (see Stop) when the test ends.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p, err := StartCommand(cmd)
	if err != nil {
		t.Fatalf("starting %q: %v", cmd.Args, err)
	}
	t.Cleanup(p.Stop)
	return p
}

// StartCommand starts cmd with pipes to its standard input and output; its
// standard error goes to the test's unless cmd has one. The caller ends it
// (Stop, End or Kill).
func StartCommand(cmd *exec.Cmd) (*Proc, error) {
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(p.lines)
		s := bufio.NewScanner(stdout)
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			p.lines <- s.Text()
		}
	}()
	return p, nil
}

// Send writes line to the child's standard input.
func (p *Proc) Send(line string) error {
	_, err := io.WriteString(p.stdin, line+"\n")
	return err
}

// Line returns the child's next line of output, or ErrExited or
// ErrTimeout.
func (p *Proc) Line() (string, error) {
	select {
	case l, ok := <-p.lines:
		if !ok {
			return "", ErrExited
		}
		return l, nil
	case <-time.After(Timeout):
		return "", ErrTimeout
	}
}

// Lines returns the channel of the child's output lines, closed at its
// end, for a test that selects on it beside other events.
func (p *Proc) Lines() <-chan string { return p.lines }

// Recv is Line with the error's text for an answer, for protocols whose
// answers a test compares with what it expects.
func (p *Proc) Recv() string {
	l, err := p.Line()
	if err != nil {
		return err.Error()
	}
	return l
}

// Do sends a command and returns the answer (see Recv).
func (p *Proc) Do(cmd string) string {
	if err := p.Send(cmd); err != nil {
		return "send: " + err.Error()
	}
	return p.Recv()
}

// Expect fails t unless the child's next line is want.
func (p *Proc) Expect(t testing.TB, want string) {
	t.Helper()
	if got := p.Recv(); got != want {
		t.Fatalf("%q: got %q, want %q", p.Cmd.Args, got, want)
	}
}

// Must sends cmd, which must be answered "ok".
func (p *Proc) Must(t testing.TB, cmd string) {
	t.Helper()
	if got := p.Do(cmd); got != "ok" {
		t.Fatalf("child %s: %s", cmd, got)
	}
}

// TryAnswer is a child's answer to a try command (TryLock and the like):
// "ok" if it got the lock, "held" if another holds it, "err MESSAGE".
func TryAnswer(ok bool, err error) string {
	switch {
	case err != nil:
		return "err " + err.Error()
	case ok:
		return "ok"
	}
	return "held"
}

// CloseStdin closes the child's standard input: children that serve
// commands exit on its end.
func (p *Proc) CloseStdin() error { return p.stdin.Close() }

// End closes the child's standard input, returns the rest of its output
// and waits for it to exit, killing it if either takes longer than
// Timeout; the error is Wait's, or ErrTimeout. Only the first call of End,
// Stop or Kill waits; the others return what it got (and no more output).
func (p *Proc) End() ([]string, error) {
	var rest []string
	p.once.Do(func() {
		p.stdin.Close()
		timeout := time.After(Timeout)
		killed := false
	drain:
		for {
			select {
			case l, ok := <-p.lines:
				if !ok {
					break drain
				}
				rest = append(rest, l)
			case <-timeout:
				p.Cmd.Process.Kill()
				killed = true
				for range p.lines {
				}
				break drain
			}
		}
		p.err = p.Cmd.Wait()
		if killed {
			p.err = ErrTimeout
		}
	})
	return rest, p.err
}

// Stop ends the child as End does, discarding its output.
func (p *Proc) Stop() { p.End() }

// Kill kills the child (SIGKILL; TerminateProcess on Windows) and reaps it.
func (p *Proc) Kill() {
	p.Cmd.Process.Kill()
	p.End()
}
