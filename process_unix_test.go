//go:build unix

package flock

// The lock between processes: exclusion both ways, handoff, a holder
// killed, cancelled and abandoned waits, and util-linux flock(1) as a peer.

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-flock/flock/internal/testproc"
)

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
