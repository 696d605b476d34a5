//go:build linux

package main

// Scenario 7: flock.Semaphore (issue 13).
//
//   - Uncontended Acquire(1)+Release(1) and TryAcquire(1)+Release(1) on a
//     semaphore of capacity 4, against one RWMutex Lock+Unlock and one raw
//     flock(2) LOCK_EX+LOCK_UN pair on a descriptor kept open.
//   - Handoff: a holder child process holds every slot file of a semaphore
//     of capacity 2 (raw flock(2)), and, told to, reads the wall clock and
//     releases the last slot; a waiter child process reports the wall clock
//     right after it acquired. Waiters: ours (Acquire(ctx, 1)), raw flock(2)
//     blocking on the slot that frees (the floor), and portalocker's
//     BoundedSemaphore with its default check_interval (0.25 s) run with
//     /usr/bin/python3. A blocking waiter is released once it reports that
//     it waits in the kernel (all its slot waits in flock(2)); portalocker,
//     which polls, at a random moment 0.25 to 0.5 s after it started, so
//     the release falls at a random phase of its polling.
//   - Cancellation: from cancel() to the return of an Acquire(ctx, 1)
//     waiting in the driver while another process holds every slot.
//   - CPU: a child process whose 50 goroutines Acquire(1) while the slots
//     are held elsewhere, over a window (getrusage); and one portalocker
//     waiter, polling, over the same window.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-flock/flock"
	"golang.org/x/sys/unix"
)

func init() {
	roles["semholder"] = semHolderMain
	roles["semwaiter"] = semWaiterMain
	roles["semcpu"] = semCPUMain
}

const (
	semBenchName     = "s7"
	semBenchCapacity = 2
	pythonPath       = "/usr/bin/python3"
)

func semSlotPath(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("%s.%02d.lock", semBenchName, i))
}

func scenario7(cfg *config, res *results) ([]*table, error) {
	res.has7 = true
	t1, err := semUncontended(cfg, res)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.dir, "s7")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Every slot file exists before anyone locks it.
	s, err := flock.OpenSemaphore(dir, semBenchName, semBenchCapacity)
	if err != nil {
		return nil, err
	}
	s.Close()
	t2, err := semHandoff(cfg, dir, res)
	if err != nil {
		return nil, err
	}
	t3, err := semCPU(cfg, dir)
	if err != nil {
		return nil, err
	}
	t4, err := semCancel(cfg, dir)
	if err != nil {
		return nil, err
	}
	return []*table{t1, t2, t3, t4}, nil
}

// semaphoreGroups is scenario 7's uncontended cases, also run as
// BenchmarkSemaphore/acquire, /try, /rwmutex, /raw (semaphore_test.go).
func semaphoreGroups(dir string) []benchGroup {
	ctx := context.Background()
	semCase := func(try bool) func(b *testing.B) {
		return func(b *testing.B) {
			s, err := flock.OpenSemaphore(dir, "u", 4)
			if err != nil {
				b.Fatal(err)
			}
			defer stopThen(b, func() { s.Close() })
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if try {
					checkOK(s.TryAcquire(1))
				} else {
					check(s.Acquire(ctx, 1))
				}
				s.Release(1)
			}
		}
	}
	return []benchGroup{{name: "Semaphore", cases: []benchCase{
		{"acquire", semCase(false)},
		{"try", semCase(true)},
		{"rwmutex", lockUnlockOurs(filepath.Join(dir, "m.lock"))},
		{"raw", func(b *testing.B) {
			f, fd := openRaw(b, filepath.Join(dir, "raw.lock"))
			defer stopThen(b, func() { f.Close() })
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				check(flockRetry(fd, unix.LOCK_EX))
				check(flockRetry(fd, unix.LOCK_UN))
			}
		}},
	}}}
}

func semUncontended(cfg *config, res *results) (*table, error) {
	dir := filepath.Join(cfg.dir, "s7u")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	med, err := runGroups(semaphoreGroups(dir), cfg.reps)
	if err != nil {
		return nil, err
	}
	raw := med["Semaphore/raw"].ns
	mutex := med["Semaphore/rwmutex"].ns
	res.semAcquireNs, res.semMutexNs = med["Semaphore/acquire"].ns, mutex
	t := &table{
		title:  "7a. Semaphore, uncontended (capacity 4, one goroutine, nobody else on the files)",
		header: []string{"operation", "ns/op", "B/op", "allocs/op", "÷ RWMutex Lock+Unlock", "÷ raw flock(2) pair"},
	}
	for _, c := range []struct{ key, name string }{
		{"acquire", "Semaphore Acquire(ctx, 1)+Release(1)"},
		{"try", "Semaphore TryAcquire(1)+Release(1)"},
		{"rwmutex", "RWMutex Lock+Unlock"},
		{"raw", "raw flock(2) LOCK_EX+LOCK_UN (floor)"},
	} {
		m := med["Semaphore/"+c.key]
		t.row(c.name, fmtNs(m.ns), fmtBytesOp(m.bytes), fmtAllocs(m.allocs), fmtRatio(m.ns/mutex), fmtRatio(m.ns/raw))
	}
	t.note("Median of %d rounds of testing.Benchmark (%v each). An acquisition is one flock(2) LOCK_EX|LOCK_NB on a slot file kept open plus an fstat(2) of it (the check that the file was not removed: its link count); a release is one LOCK_UN.", cfg.reps, cfg.benchtime)
	return t, nil
}

// semHolderMain holds every slot (args: dir): "l" relocks the last slot
// and answers "ok"; "u" reads the wall clock and releases the last slot,
// answering nothing; "t" answers "t NANOS", the time read at the last "u".
func semHolderMain(args []string) {
	var fds []int
	for i := 0; i < semBenchCapacity; i++ {
		f, err := os.OpenFile(semSlotPath(args[0], i), os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			fail(err)
		}
		if err := flockRetry(int(f.Fd()), unix.LOCK_EX); err != nil {
			fail(err)
		}
		fds = append(fds, int(f.Fd()))
	}
	last := fds[len(fds)-1]
	say("ready")
	var t int64
	for {
		switch next() {
		case "l":
			if err := flockRetry(last, unix.LOCK_EX); err != nil {
				fail(err)
			}
			say("ok")
		case "u":
			t = time.Now().UnixNano()
			if err := flockRetry(last, unix.LOCK_UN); err != nil {
				fail(err)
			}
		case "t":
			say("t %d", t)
		}
	}
}

// semWaiterMain waits one way (args: dir, "ours", "rwmutex" or "raw"): "w" starts a
// wait and answers "waiting" once it is in the kernel, then "got NANOS"
// (the wall clock right after it acquired); "r" releases and answers "ok".
func semWaiterMain(args []string) {
	dir, how := args[0], args[1]
	var lock func() error
	var unlock func()
	var inKernel int
	switch how {
	case "ours":
		s, err := flock.OpenSemaphore(dir, semBenchName, semBenchCapacity)
		if err != nil {
			fail(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		lock = func() error { return s.Acquire(ctx, 1) }
		unlock = func() { s.Release(1) }
		inKernel = semBenchCapacity // a wait on every slot
	case "rwmutex":
		m, err := flock.Open(semSlotPath(dir, semBenchCapacity-1))
		if err != nil {
			fail(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		lock = func() error { return m.LockContext(ctx) }
		unlock = m.Unlock
		inKernel = 1
	case "raw":
		f, err := os.OpenFile(semSlotPath(dir, semBenchCapacity-1), os.O_RDWR, 0)
		if err != nil {
			fail(err)
		}
		lock = func() error { return flockRetry(int(f.Fd()), unix.LOCK_EX) }
		unlock = func() { check(flockRetry(int(f.Fd()), unix.LOCK_UN)) }
		inKernel = 1
	default:
		fail(fmt.Errorf("unknown waiter %q", how))
	}
	say("ready")
	for {
		switch next() {
		case "w":
			got := make(chan error, 1)
			var at int64
			go func() {
				err := lock()
				at = time.Now().UnixNano()
				got <- err
			}()
			if err := waitFor("the waiter blocks in flock(2)", func() bool { return threadsInFlock() >= inKernel }); err != nil {
				fail(err)
			}
			say("waiting")
			if err := <-got; err != nil {
				fail(err)
			}
			say("got %d", at)
		case "r":
			unlock()
			say("ok")
		}
	}
}

// pythonWaiter speaks semWaiterMain's protocol with portalocker 2.2.1's
// BoundedSemaphore (argv: directory, name, capacity), default
// check_interval. portalocker prints debugging lines on stdout: the
// protocol goes to a duplicate of the original stdout, and stdout to
// /dev/null. "c SECONDS" measures the CPU (getrusage, all threads) of one
// waiting acquire over SECONDS and answers "cpu CPU_NS WALL_NS WAKEUPS".
const pythonWaiter = `
import os, resource, sys, threading, time
import portalocker
proto = os.fdopen(os.dup(1), "w", buffering=1)
sys.stdout = open(os.devnull, "w")
d, name, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
sem = portalocker.BoundedSemaphore(cap, name=name, directory=d, timeout=3600)
def acquire():
    sem.acquire()
    proto.write("got %d\n" % time.time_ns())
proto.write("ready\n")
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "w":
        threading.Thread(target=acquire, daemon=True).start()
        proto.write("waiting\n")
    elif cmd[0] == "r":
        sem.release()
        proto.write("ok\n")
    elif cmd[0] == "c":
        threading.Thread(target=acquire, daemon=True).start()
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic_ns()
        time.sleep(float(cmd[1]))
        r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic_ns()
        cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1e9
        proto.write("cpu %d %d %d\n" % (cpu, t1 - t0, r1.ru_nvcsw - r0.ru_nvcsw))
`

// havePortalocker reports whether /usr/bin/python3 has portalocker, and
// why not.
func havePortalocker() (bool, string) {
	out, err := exec.Command(pythonPath, "-c", "import portalocker").CombinedOutput()
	if err != nil {
		return false, fmt.Sprintf("%s with portalocker not available (%v: %s)", pythonPath, err, strings.TrimSpace(string(out)))
	}
	return true, ""
}

// spawnPython starts the portalocker waiter on dir.
func spawnPython(dir string) (*proc, error) {
	cmd := exec.Command(pythonPath, "-c", pythonWaiter, dir, semBenchName, strconv.Itoa(semBenchCapacity))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, in: in, out: bufio.NewReader(out)}
	if _, err := p.expect("ready"); err != nil {
		p.close()
		return nil, fmt.Errorf("portalocker waiter: %w", err)
	}
	return p, nil
}

func semHandoff(cfg *config, dir string, res *results) (*table, error) {
	h, err := spawn("semholder", dir)
	if err != nil {
		return nil, err
	}
	defer h.close()
	type waiter struct {
		name  string
		p     *proc
		polls bool
		n     int
	}
	var ws []*waiter
	for _, how := range []string{"ours", "rwmutex", "raw"} {
		p, err := spawn("semwaiter", dir, how)
		if err != nil {
			return nil, err
		}
		defer p.close()
		name := map[string]string{
			"ours":    "ours Semaphore.Acquire(ctx, 1)",
			"rwmutex": "ours RWMutex.LockContext on the slot that frees",
			"raw":     "raw flock(2) LOCK_EX on the slot that frees (floor)",
		}[how]
		ws = append(ws, &waiter{name: name, p: p, n: cfg.handoffs})
	}
	pyOK, why := havePortalocker()
	pySamples := 10
	if !cfg.quick {
		pySamples = 30
	}
	if pyOK {
		p, err := spawnPython(dir)
		if err != nil {
			return nil, err
		}
		defer p.close()
		ws = append(ws, &waiter{name: "portalocker BoundedSemaphore, check_interval 0.25 s (default)", p: p, polls: true, n: pySamples})
	}
	lat := map[string]sample{}
	for round := 0; ; round++ {
		any := false
		for _, k := range rand.Perm(len(ws)) {
			w := ws[k]
			if round >= w.n {
				continue
			}
			any = true
			started := time.Now()
			if _, err := w.p.expectAfter("w", "waiting"); err != nil {
				return nil, fmt.Errorf("%s: %w", w.name, err)
			}
			if w.polls {
				time.Sleep(250*time.Millisecond + rand.N(250*time.Millisecond) - time.Since(started))
			}
			if err := h.send("u"); err != nil {
				return nil, err
			}
			rest, err := w.p.expect("got")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", w.name, err)
			}
			at, _ := strconv.ParseInt(rest, 10, 64)
			if _, err := w.p.expectAfter("r", "ok"); err != nil {
				return nil, fmt.Errorf("%s: %w", w.name, err)
			}
			rest, err = h.expectAfter("t", "t")
			if err != nil {
				return nil, err
			}
			t0, _ := strconv.ParseInt(rest, 10, 64)
			lat[w.name] = append(lat[w.name], time.Duration(at-t0))
			if _, err := h.expectAfter("l", "ok"); err != nil {
				return nil, err
			}
		}
		if !any {
			break
		}
	}
	t := &table{
		title:  fmt.Sprintf("7b. Semaphore handoff: another process frees a slot, a waiting process takes it (capacity %d, all slots held)", semBenchCapacity),
		header: []string{"waiter", "handoffs", "median", "p99", "max", "median ÷ floor"},
	}
	floor := lat[ws[2].name].median()
	res.semHandoff = lat[ws[0].name].median()
	for _, w := range ws {
		s := lat[w.name]
		t.row(w.name, strconv.Itoa(len(s)), fmtDur(s.median()), fmtDur(s.pct(99)), fmtDur(s.max()), fmtRatio(float64(s.median())/float64(floor)))
	}
	t.note("Latency: the holder's wall clock right before LOCK_UN of the last slot to the waiter's right after its acquisition returned; each waiter is a process of its own. portalocker is released at a random moment 0.25-0.5 s after its acquire started.")
	if !pyOK {
		t.note("portalocker row missing: %s.", why)
	}
	return t, nil
}

// semCPUMain (args: dir, window, goroutines): once every goroutine's
// Acquire(1) waits (a wait in flock(2) on every slot), reports "cpu
// CPU_NS WALL_NS WAKEUPS IN_FLOCK THREADS" over the window.
func semCPUMain(args []string) {
	window, err := time.ParseDuration(args[1])
	if err != nil {
		fail(err)
	}
	n, _ := strconv.Atoi(args[2])
	s, err := flock.OpenSemaphore(args[0], semBenchName, semBenchCapacity)
	if err != nil {
		fail(err)
	}
	say("ready")
	exitOnEOF()
	for i := 0; i < n; i++ {
		go func() {
			if err := s.Acquire(context.Background(), 1); err != nil {
				fail(err)
			}
			fail(errors.New("acquired a slot the parent holds"))
		}()
	}
	if err := waitFor("every slot is waited for in flock(2)", func() bool { return threadsInFlock() >= semBenchCapacity }); err != nil {
		fail(err)
	}
	c0, w0 := cpuTime()
	t0 := time.Now()
	time.Sleep(window) // the measurement window, not synchronisation
	c1, w1 := cpuTime()
	say("cpu %d %d %d %d %d", (c1 - c0).Nanoseconds(), time.Since(t0).Nanoseconds(), w1-w0, threadsInFlock(), threads())
	select {} // until the parent closes stdin
}

func semCPU(cfg *config, dir string) (*table, error) {
	h, err := spawn("semholder", dir)
	if err != nil {
		return nil, err
	}
	defer h.close()
	t := &table{
		title:  fmt.Sprintf("7c. Semaphore: CPU of a waiting process while every slot is held elsewhere (%v window)", cfg.cpuWindow),
		header: []string{"waiter", "CPU", "wake-ups/s", "threads in flock(2)", "threads"},
	}
	const goroutines = 50
	p, err := spawn("semcpu", dir, cfg.cpuWindow.String(), strconv.Itoa(goroutines))
	if err != nil {
		return nil, err
	}
	rest, err := p.expect("cpu")
	p.close()
	if err != nil {
		return nil, err
	}
	var cpuNs, wallNs, wakes, inFlock, nThreads float64
	fmt.Sscan(rest, &cpuNs, &wallNs, &wakes, &inFlock, &nThreads)
	perSec := cpuNs / 1e3 / (wallNs / 1e9)
	t.row(fmt.Sprintf("ours, %d goroutines in Acquire(ctx, 1)", goroutines), fmt.Sprintf("%.0f µs/s (%.3f%% of a core)", perSec, perSec/1e4),
		fmt.Sprintf("%.0f", wakes/(wallNs/1e9)), fmt.Sprintf("%.0f", inFlock), fmt.Sprintf("%.0f", nThreads))
	if ok, why := havePortalocker(); ok {
		py, err := spawnPython(dir)
		if err != nil {
			return nil, err
		}
		rest, err := py.expectAfter(fmt.Sprintf("c %g", cfg.cpuWindow.Seconds()), "cpu")
		py.close()
		if err != nil {
			return nil, err
		}
		fmt.Sscan(rest, &cpuNs, &wallNs, &wakes)
		perSec := cpuNs / 1e3 / (wallNs / 1e9)
		t.row("portalocker, 1 waiting acquire (polls every 0.25 s)", fmt.Sprintf("%.0f µs/s (%.3f%% of a core)", perSec, perSec/1e4),
			fmt.Sprintf("%.0f", wakes/(wallNs/1e9)), "0", "—")
	} else {
		t.note("portalocker row missing: %s.", why)
	}
	t.note("getrusage(RUSAGE_SELF) of the waiting process over the window, once it waits; includes the Go runtime's (or the Python interpreter's) own idle activity.")
	return t, nil
}

// semCancelWaiter is the goroutine whose Acquire is cancelled; its name is
// how parkedGoroutines finds it.
func semCancelWaiter(s *flock.Semaphore, ctx context.Context, done chan<- acquired) {
	err := s.Acquire(ctx, 1)
	done <- acquired{time.Now().UnixNano(), err}
}

func semCancel(cfg *config, dir string) (*table, error) {
	h, err := spawn("semholder", dir)
	if err != nil {
		return nil, err
	}
	defer h.close()
	s, err := flock.OpenSemaphore(dir, semBenchName, semBenchCapacity)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var lat sample
	for i := 0; i < cfg.cancels; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan acquired, 1)
		go semCancelWaiter(s, ctx, done)
		err := waitFor("Acquire waits on every slot in the kernel", func() bool {
			return threadsInFlock() >= semBenchCapacity && parkedGoroutines("main.semCancelWaiter") > 0
		})
		if err != nil {
			cancel()
			return nil, err
		}
		t0 := time.Now().UnixNano()
		cancel()
		a := <-done
		if !errors.Is(a.err, context.Canceled) {
			return nil, fmt.Errorf("cancelled Acquire returned %v", a.err)
		}
		lat = append(lat, time.Duration(a.at-t0))
	}
	t := &table{
		title:  fmt.Sprintf("7d. Semaphore cancellation: from cancel() to Acquire's return, every slot held by another process (%d cancellations)", cfg.cancels),
		header: []string{"waiter", "p50", "p90", "p99", "max"},
	}
	t.row("ours Semaphore.Acquire(ctx, 1)", fmtDur(lat.median()), fmtDur(lat.pct(90)), fmtDur(lat.pct(99)), fmtDur(lat.max()))
	t.note("portalocker's acquire takes no context: it gives up only at its timeout, checked once per check_interval.")
	return t, nil
}
