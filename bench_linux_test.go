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

// BenchmarkRawFlock is the floor for one lock/unlock pair: flock(2)
// LOCK_EX then LOCK_UN on a descriptor kept open.
func BenchmarkRawFlock(b *testing.B) {
	f, err := os.Create(lockPath(b))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	for _, how := range []struct {
		name string
		how  int
	}{{"LOCK_EX", unix.LOCK_EX}, {"LOCK_SH", unix.LOCK_SH}} {
		b.Run(how.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				unix.Flock(fd, how.how|unix.LOCK_NB)
				unix.Flock(fd, unix.LOCK_UN)
			}
		})
	}
}

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
