//go:build linux

package main

// Scenario 7b: the Semaphore's handoff from a holder in another process,
// beside RWMutex.LockContext, raw flock(2) and portalocker's
// BoundedSemaphore (run with /usr/bin/python3).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/go-flock/flock"
	"golang.org/x/sys/unix"
)

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
	return startProc("portalocker waiter", exec.Command(pythonPath, "-c", pythonWaiter, dir, semBenchName, strconv.Itoa(semBenchCapacity)))
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
