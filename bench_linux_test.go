//go:build linux

package flock

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	childRoles["holder"] = holderMain
}

// BenchmarkRawFlockDepth is BenchmarkRawFlock/LOCK_EX with each call made
// from 0, 4 or 8 frames deeper (distinct functions, as a lock method's
// frames are): what a frame between a lock method and the system call
// costs. On CPUs whose kernel clears or refills the return-address
// predictor on a system call's way back (see
// /sys/devices/system/cpu/vulnerabilities: spectre_v2's "RSB filling",
// spec_rstack_overflow's "Safe RET"), the returns after the call are
// mispredicted, so a frame costs several ns per call rather than one: that
// is much of what the gate adds to an uncontended Lock+Unlock, whose
// calls return through five frames of the package after LOCK_EX and five
// after LOCK_UN.
func BenchmarkRawFlockDepth(b *testing.B) {
	fd := rawLockFD(b)
	for _, c := range []struct {
		depth int
		flock func(fd, how int) error
	}{{0, unix.Flock}, {4, flockBelow4}, {8, flockBelow8}} {
		b.Run(strconv.Itoa(c.depth), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c.flock(fd, unix.LOCK_EX|unix.LOCK_NB)
				c.flock(fd, unix.LOCK_UN)
			}
		})
	}
}

// rawLockFD returns a descriptor of a new lock file, closed when b ends.
func rawLockFD(b *testing.B) int {
	f, err := os.Create(lockPath(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// flockBelowN calls flock(2) N frames below its caller.

//go:noinline
func flockBelow1(fd, how int) error { return unix.Flock(fd, how) }

//go:noinline
func flockBelow2(fd, how int) error { return flockBelow1(fd, how) }

//go:noinline
func flockBelow3(fd, how int) error { return flockBelow2(fd, how) }

//go:noinline
func flockBelow4(fd, how int) error { return flockBelow3(fd, how) }

//go:noinline
func flockBelow5(fd, how int) error { return flockBelow4(fd, how) }

//go:noinline
func flockBelow6(fd, how int) error { return flockBelow5(fd, how) }

//go:noinline
func flockBelow7(fd, how int) error { return flockBelow6(fd, how) }

//go:noinline
func flockBelow8(fd, how int) error { return flockBelow7(fd, how) }

// holderMain takes and releases an exclusive flock(2) lock on command: "l"
// locks and answers "ok"; "s" downgrades it to shared and answers "ok"; "u"
// answers the wall-clock time in nanoseconds
// just before it unlocks.
func holderMain() {
	f, err := os.OpenFile(os.Getenv("FLOCK_TEST_PATH"), os.O_RDWR, 0)
	if err != nil {
		os.Stdout.WriteString("err " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("ready\n")
	fd := int(f.Fd())
	buf := make([]byte, 2)
	for {
		if _, err := os.Stdin.Read(buf); err != nil {
			return
		}
		switch buf[0] {
		case 'l':
			unix.Flock(fd, unix.LOCK_EX)
			os.Stdout.WriteString("ok\n")
		case 's':
			// Downgrade to shared: Linux swaps the lock under one
			// spinlock, so no waiter for an exclusive lock gets in.
			unix.Flock(fd, unix.LOCK_SH)
			os.Stdout.WriteString("ok\n")
		case 'u':
			now := time.Now().UnixNano()
			unix.Flock(fd, unix.LOCK_UN)
			os.Stdout.WriteString(strconv.FormatInt(now, 10) + "\n")
		}
	}
}

// BenchmarkHandoff measures how long after another process releases the
// lock a waiter here holds it: for LockContext (cancellable), Lock, and a
// raw blocking flock(2) on a descriptor of its own (the floor). The time
// is from the holder's clock reading just before its unlock to the
// waiter's just after acquiring; reported as handoff-ns (median) and
// p99-ns.
func BenchmarkHandoff(b *testing.B) {
	if backendName != "flock" {
		b.Skipf("the holder child uses flock(2); the %s backend does not see its locks", backendName)
	}
	p := lockPath(b)
	m := mustOpen(b, p)
	raw, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, w := range []struct {
		name          string
		lock, release func()
	}{
		{"LockContext", func() { m.LockContext(ctx) }, m.Unlock},
		{"Lock", m.Lock, m.Unlock},
		{"RawFlock", func() { unix.Flock(int(raw.Fd()), unix.LOCK_EX) }, func() { unix.Flock(int(raw.Fd()), unix.LOCK_UN) }},
	} {
		b.Run(w.name, func(b *testing.B) {
			c := startChildRole(b, "holder", p)
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				c.Must(b, "l")
				got := make(chan int64)
				go func() { w.lock(); got <- time.Now().UnixNano() }()
				waitBlocked(b, m, w.name == "RawFlock")
				if err := c.Send("u"); err != nil {
					b.Fatal(err)
				}
				t1 := <-got
				t0, err := strconv.ParseInt(c.Recv(), 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Duration(t1-t0))
				w.release()
			}
			reportLatency(b, "handoff", lat)
		})
	}
}

// waitBlocked waits until the waiter is in the kernel: for our lock the
// entry's OS wait is in flight; for the raw lock, some thread is in flock.
func waitBlocked(b *testing.B, m *RWMutex, raw bool) {
	eventually(b, "the waiter blocks in the kernel", func() bool {
		if raw {
			return threadInSyscall(unix.SYS_FLOCK)
		}
		m.e.mu.Lock()
		defer m.e.mu.Unlock()
		return m.e.waiting() && threadInSyscall(unix.SYS_FLOCK)
	})
}

func threadInSyscall(nr uintptr) bool {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return true // cannot tell: assume it is there
	}
	want := strconv.FormatUint(uint64(nr), 10) + " "
	for _, task := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if strings.HasPrefix(string(b), want) {
			return true
		}
	}
	return false
}
