package flock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-flock/flock/internal/testproc"
	"golang.org/x/sys/unix"
)

// mustHolders returns m's holders sorted by pid, failing t on an error.
func mustHolders(t *testing.T, m *RWMutex) []Holder {
	t.Helper()
	hs, err := m.Holders()
	if err != nil {
		t.Fatalf("Holders: %v", err)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].PID < hs[j].PID })
	return hs
}

// testComm is the command name /proc/PID/comm shows for this test binary
// and its children.
func testComm() string {
	name := filepath.Base(os.Args[0])
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

// A child holding the lock exclusively is reported with its pid, command
// and mode; after it releases, nobody is.
func TestHoldersChildExclusive(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	c.Must(t, "lock")
	want := []Holder{{PID: c.Cmd.Process.Pid, Exclusive: true, Command: testComm(), Kind: procLocksType}}
	if got := mustHolders(t, m); !reflect.DeepEqual(got, want) {
		t.Fatalf("Holders with a child writer = %+v; want %+v", got, want)
	}
	c.Must(t, "unlock")
	if got := mustHolders(t, m); len(got) != 0 {
		t.Fatalf("Holders after the child's Unlock = %+v; want none", got)
	}
}

// Three readers, two child processes and this one, are all reported.
func TestHoldersThreeReaders(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p)
	c1, c2 := startChild(t, p), startChild(t, p)
	c1.Must(t, "rlock")
	c2.Must(t, "rlock")
	m.RLock()
	var want []Holder
	for _, pid := range []int{os.Getpid(), c1.Cmd.Process.Pid, c2.Cmd.Process.Pid} {
		want = append(want, Holder{PID: pid, Command: testComm(), Kind: procLocksType})
	}
	sort.Slice(want, func(i, j int) bool { return want[i].PID < want[j].PID })
	if got := mustHolders(t, m); !reflect.DeepEqual(got, want) {
		t.Fatalf("Holders with three readers = %+v; want %+v", got, want)
	}
	m.RUnlock()
	c1.Must(t, "runlock")
	if got := mustHolders(t, m); len(got) != 1 || got[0].PID != c2.Cmd.Process.Pid {
		t.Fatalf("Holders with one reader left = %+v; want child %d", got, c2.Cmd.Process.Pid)
	}
	c2.Must(t, "runlock")
	if got := mustHolders(t, m); len(got) != 0 {
		t.Fatalf("Holders after every RUnlock = %+v; want none", got)
	}
}

// util-linux flock(1) holding the file is reported with flock's own pid
// (the process that took the lock, not the command it runs).
func TestHoldersFlockCommand(t *testing.T) {
	path, err := exec.LookPath("flock")
	if err != nil {
		t.Skipf("no flock(1) to hold the lock: %v", err)
	}
	p := lockPath(t)
	m := mustOpen(t, p)
	for _, shared := range []bool{true, false} {
		args := []string{p, "cat"}
		if shared {
			args = []string{"-s", p, "cat"}
		}
		c := testproc.Start(t, exec.Command(path, args...))
		// flock(1) runs cat only once it holds the lock: an echo says so.
		if got := c.Do("held"); got != "held" {
			t.Fatalf("flock %v cat: %s", args, got)
		}
		want := []Holder{{PID: c.Cmd.Process.Pid, Exclusive: !shared, Command: "flock", Kind: "FLOCK"}}
		got := mustHolders(t, m)
		if _, err := c.End(); err != nil { // cat exits at the end of its input, and flock(1) with it
			t.Errorf("flock %v cat: %v", args, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Holders with flock %v cat = %+v; want %+v", args, got, want)
		}
		if got := mustHolders(t, m); len(got) != 0 {
			t.Fatalf("Holders after flock(1) exited = %+v; want none", got)
		}
	}
}

// While another handle of the process locks and unlocks as fast as it can,
// Holders never fails and reports nobody but this process; once it stops,
// nobody. It runs until this process has been seen holding the lock, and
// not holding it, a number of times each, so that both sides of a release
// are raced.
func TestHoldersRacingRelease(t *testing.T) {
	p := lockPath(t)
	m, b := mustOpen(t, p), mustOpen(t, p)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b.Lock()
			b.Unlock()
		}
	}()
	held, free := 0, 0
	deadline := time.After(childTimeout)
	for held < 50 || free < 50 {
		select {
		case <-deadline:
			close(stop)
			<-done
			t.Fatalf("in %v, the lock was seen held %d times and free %d times; want 50 each", childTimeout, held, free)
		default:
		}
		hs := mustHolders(t, m)
		for _, h := range hs {
			if h.PID != os.Getpid() || !h.Exclusive || h.Kind != procLocksType {
				close(stop)
				<-done
				t.Fatalf("phantom holder %+v", h)
			}
		}
		if len(hs) > 0 {
			held++
		} else {
			free++
		}
	}
	close(stop)
	<-done
	if got := mustHolders(t, m); len(got) != 0 {
		t.Fatalf("Holders after the last Unlock = %+v; want none", got)
	}
}

// A RemoveOnUnlock handle reports the holders of the file now at its path,
// and, closed, fails with os.ErrClosed.
func TestHoldersRemoveOnUnlock(t *testing.T) {
	p := lockPath(t)
	m := mustOpen(t, p, RemoveOnUnlock())
	c := startChild(t, p)
	c.Must(t, "rlock")
	if got := mustHolders(t, m); len(got) != 1 || got[0].PID != c.Cmd.Process.Pid || got[0].Exclusive {
		t.Fatalf("Holders with a child reader = %+v; want child %d, shared", got, c.Cmd.Process.Pid)
	}
	c.Must(t, "runlock")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Holders(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Holders after Close: %v; want os.ErrClosed", err)
	}
}

// With more locks in the system than /proc/locks returns in one read(2)
// (about a page), a holder listed after the first page is still found.
func TestHoldersLongProcLocks(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 200; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
			t.Fatal(err)
		}
	}
	if data, err := readProcLocks(); err != nil || len(data) < 8<<10 {
		t.Fatalf("/proc/locks: %d bytes, %v; want more than two pages", len(data), err)
	}
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChild(t, p)
	c.Must(t, "lock")
	if got := mustHolders(t, m); len(got) != 1 || got[0].PID != c.Cmd.Process.Pid || !got[0].Exclusive {
		t.Fatalf("Holders = %+v; want child %d, exclusive", got, c.Cmd.Process.Pid)
	}
}

func init() {
	childRoles["holders"] = holdersMain
}

// holdersMain prints the holders of the lock on FLOCK_TEST_PATH, one
// "PID exclusive|shared KIND" line each, then "end", and exits; a failure
// is printed "err MESSAGE".
func holdersMain() {
	m, err := Open(os.Getenv("FLOCK_TEST_PATH"), NoCreate())
	if err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	defer m.Close()
	hs, err := m.Holders()
	if err != nil {
		fmt.Println("err", err)
		return
	}
	for _, h := range hs {
		mode := "shared"
		if h.Exclusive {
			mode = "exclusive"
		}
		fmt.Println(h.PID, mode, h.Kind)
	}
	fmt.Println("end")
}

// namespaces returns the unshare(1) to run, skipping t (with the reason)
// unless this process may create the namespaces args ask for.
func namespaces(t *testing.T, args ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("creating namespaces with unshare(1) needs root; euid is %d", os.Geteuid())
	}
	path, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("no unshare(1): %v", err)
	}
	if out, err := exec.Command(path, append(args, "true")...).CombinedOutput(); err != nil {
		t.Skipf("unshare %v is not allowed here: %v: %s", args, err, out)
	}
	return path
}

// childCommand is the test binary in role on path, run through unshare
// with args.
func childCommand(unshare, role, path string, args ...string) *exec.Cmd {
	cmd := exec.Command(unshare, append(args, os.Args[0], "-test.run=^$")...)
	cmd.Env = append(os.Environ(), childEnv+"="+role, "FLOCK_TEST_PATH="+path,
		"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	return cmd
}

// onlyChild returns the pid of the one child of process pid.
func onlyChild(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Skipf("cannot tell unshare's child: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		t.Fatalf("unshare (pid %d) has children %q; want one", pid, f)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A holder in a child pid namespace (with a /proc of its own) is reported
// with its pid in ours, as the kernel translates it for our /proc.
func TestHoldersPidNamespaceHolder(t *testing.T) {
	args := []string{"--pid", "--fork", "--mount-proc"}
	unshare := namespaces(t, args...)
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startCommand(t, childCommand(unshare, "locker", p, args...))
	c.Must(t, "lock")
	pid := onlyChild(t, c.Cmd.Process.Pid)
	want := []Holder{{PID: pid, Exclusive: true, Command: testComm(), Kind: procLocksType}}
	if got := mustHolders(t, m); !reflect.DeepEqual(got, want) {
		t.Fatalf("Holders with a writer in a child pid namespace = %+v; want %+v (its pid here)", got, want)
	}
	c.Must(t, "unlock")
	if got := mustHolders(t, m); len(got) != 0 {
		t.Fatalf("Holders after its Unlock = %+v; want none", got)
	}
}

// Seen from inside a child pid namespace: with its own /proc, a holder
// outside it is not listed at all (the kernel leaves it out of
// /proc/locks); sharing our /proc, the holder is listed with its pid here.
func TestHoldersPidNamespaceReader(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		owner bool // whether the holder is listed
	}{
		{[]string{"--pid", "--fork", "--mount-proc"}, false},
		{[]string{"--pid", "--fork"}, true},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			unshare := namespaces(t, tt.args...)
			p := lockPath(t)
			m := mustOpen(t, p)
			m.Lock()
			defer m.Unlock()
			out, err := childCommand(unshare, "holders", p, tt.args...).Output()
			if err != nil {
				t.Fatalf("holders child: %v: %s", err, out)
			}
			want := "end\n"
			if tt.owner {
				want = fmt.Sprintf("%d exclusive %s\n", os.Getpid(), procLocksType) + want
			}
			if string(out) != want {
				t.Errorf("Holders in unshare %v while this process (pid %d) writes: %q; want %q", tt.args, os.Getpid(), out, want)
			}
		})
	}
}

// A holder in another mount namespace is reported as any other: the file
// is matched by device and inode.
func TestHoldersMountNamespace(t *testing.T) {
	unshare := namespaces(t, "--mount")
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startCommand(t, childCommand(unshare, "locker", p, "--mount"))
	c.Must(t, "rlock")
	want := []Holder{{PID: c.Cmd.Process.Pid, Command: testComm(), Kind: procLocksType}}
	if got := mustHolders(t, m); !reflect.DeepEqual(got, want) {
		t.Fatalf("Holders with a reader in another mount namespace = %+v; want %+v", got, want)
	}
	c.Must(t, "runlock")
}

func init() {
	childRoles["churn"] = churnMain
}

// churnMain locks and unlocks the file on FLOCK_TEST_PATH as fast as it
// can from "go" to "stop", then says "done"; it exits at the end of its
// input.
func churnMain() {
	m, err := Open(os.Getenv("FLOCK_TEST_PATH"))
	if err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() && in.Text() == "go" {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				m.Lock()
				m.Unlock()
			}
		}()
		in.Scan() // "stop", or the end of the input
		close(stop)
		<-done
		fmt.Println("done")
	}
}

// While another process locks and unlocks as fast as it can, with more
// locks in the system than one read of /proc/locks returns (so that its
// lines shift between reads), Holders never fails and reports nobody but
// that process, exclusive; once it has stopped, nobody.
func TestHoldersRacingReleaseChild(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 200; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
			t.Fatal(err)
		}
	}
	p := lockPath(t)
	m := mustOpen(t, p)
	c := startChildRole(t, "churn", p)
	if err := c.Send("go"); err != nil {
		t.Fatal(err)
	}
	// Until the child has been seen holding the lock a number of times,
	// and not holding it as many: both sides of its every release raced.
	pid, held, free := c.Cmd.Process.Pid, 0, 0
	deadline := time.After(childTimeout)
	for held < 50 || free < 50 {
		select {
		case line := <-c.Lines():
			t.Fatalf("churning child: %q", line)
		case <-deadline:
			t.Fatalf("in %v, the churning child was seen holding the lock %d times and not holding it %d times; want 50 each", childTimeout, held, free)
		default:
		}
		hs := mustHolders(t, m)
		for _, h := range hs {
			if h.PID != pid || !h.Exclusive || h.Kind != procLocksType {
				t.Fatalf("phantom holder %+v; only the child %d, exclusive, holds the lock", h, pid)
			}
		}
		if len(hs) > 0 {
			held++
		} else {
			free++
		}
	}
	if got := c.Do("stop"); got != "done" {
		t.Fatalf("churning child, stopped: %q", got)
	}
	if got := mustHolders(t, m); len(got) != 0 {
		t.Fatalf("Holders after the child's last Unlock = %+v; want none", got)
	}
}
