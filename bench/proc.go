//go:build linux

package main

// Child processes: the driver re-executes its own binary with roleEnv naming
// the child's role and talks to it over its stdin and stdout, one line per
// message. Every child says "ready" once set up, and exits when its stdin
// closes, even if a goroutine of it is blocked in a lock.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/go-flock/flock/internal/testproc"
)

const roleEnv = "FLOCK_BENCH_ROLE"

// roles maps a role to the function a child runs (with the child's
// command-line arguments); filled in by the scenario files.
var roles = map[string]func(args []string){}

// A proc is a running child (see internal/testproc, whose lines it reads
// with the same bound on every wait).
type proc struct{ *testproc.Proc }

// spawn starts a child in role with args and waits for its "ready".
func spawn(role string, args ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	return startProc("child "+role, cmd)
}

// startProc starts cmd, a child that speaks the driver's protocol, and
// waits for its "ready"; what names it in errors.
func startProc(what string, cmd *exec.Cmd) (*proc, error) {
	tp, err := testproc.StartCommand(cmd)
	if err != nil {
		return nil, err
	}
	p := &proc{tp}
	if _, err := p.expect("ready"); err != nil {
		p.close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return p, nil
}

// spawnAll starts n children at once (they start up in parallel), child i
// with args(i), and waits for every one to be ready.
func spawnAll(n int, role string, args func(i int) []string) ([]*proc, error) {
	ps := make([]*proc, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range ps {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ps[i], errs[i] = spawn(role, args(i)...)
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(ps)
		return nil, err
	}
	return ps, nil
}

func closeAll(ps []*proc) {
	for _, p := range ps {
		if p != nil {
			p.close()
		}
	}
}

func (p *proc) send(line string) error { return p.Send(line) }

// recv reads one line; a child reports failure as "err MESSAGE".
func (p *proc) recv() (string, error) {
	line, err := p.Line()
	if err != nil {
		return "", err
	}
	if msg, ok := strings.CutPrefix(line, "err "); ok {
		return "", errors.New(msg)
	}
	return line, nil
}

// expect reads one line and checks that its first word is want; it
// returns the rest.
func (p *proc) expect(want string) (string, error) {
	line, err := p.recv()
	if err != nil {
		return "", err
	}
	word, rest, _ := strings.Cut(line, " ")
	if word != want {
		return "", fmt.Errorf("child said %q, want %q", line, want)
	}
	return rest, nil
}

// call sends a command and returns the answer.
func (p *proc) call(line string) (string, error) {
	if err := p.send(line); err != nil {
		return "", err
	}
	return p.recv()
}

// close closes the child's stdin, which makes it exit, and reaps it.
func (p *proc) close() { p.Stop() }

// The child's side.

var (
	childIn  = bufio.NewScanner(os.Stdin)
	childOut = bufio.NewWriter(os.Stdout)
	outMu    sync.Mutex
)

func runChild(role string) {
	run, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
		os.Exit(2)
	}
	run(os.Args[1:])
	os.Exit(0)
}

// say writes one line to the parent.
func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(childOut, format+"\n", args...)
	childOut.Flush()
}

// fail reports err to the parent and exits.
func fail(err error) {
	say("err %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	os.Exit(1)
}

// next reads the parent's next line; at end of input the child exits.
func next() string {
	if !childIn.Scan() {
		os.Exit(0)
	}
	return childIn.Text()
}

// exitOnEOF makes the child exit when its stdin closes, whatever its other
// goroutines are doing; it consumes all further input.
func exitOnEOF() {
	go func() {
		for {
			next()
		}
	}()
}
