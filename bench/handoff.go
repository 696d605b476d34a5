//go:build linux

package main

// Scenario 3: cross-process handoff latency, and the waiter's CPU use
// while it waits (scenario 4, cancellation.go, uses its holder and wait
// variants).
//
// A holder child process takes the lock with flock(2) and, told to, reads
// the clock right before it unlocks and reports that time. The waiter runs
// in the driver; its clock is read right after it acquires. The holder is
// told to unlock only once the waiter waits: for a waiter that blocks in
// flock(2) (ours, gofrs Lock, raw), once a thread of the driver is in the
// flock system call (read from /proc/self/task/*/syscall). A polling waiter
// (gofrs TryLockContext) never blocks in the kernel; the holder releases
// it at a random moment between one and two retry periods after it started
// waiting, so the release falls at a random phase of its polling, as it
// would in real use.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-flock/flock"
	gofrs "github.com/gofrs/flock"
	"golang.org/x/sys/unix"
)

func init() {
	roles["holder"] = holderMain
	roles["cpuwait"] = cpuWaitMain
}

// holderMain: "l" takes LOCK_EX (blocking) and answers "ok"; "u" reads the
// wall clock and then releases the lock, answering nothing, so that the
// driver has nothing to read while the waiter takes over; "t" answers
// "t NANOS", the time read at the last "u".
func holderMain(args []string) {
	f, err := os.OpenFile(args[0], os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		fail(err)
	}
	fd := int(f.Fd())
	say("ready")
	var t int64
	for {
		switch next() {
		case "l":
			if err := flockRetry(fd, unix.LOCK_EX); err != nil {
				fail(err)
			}
			say("ok")
		case "u":
			t = time.Now().UnixNano()
			if err := flockRetry(fd, unix.LOCK_UN); err != nil {
				fail(err)
			}
		case "t":
			say("t %d", t)
		}
	}
}

// A waitVariant is one way of waiting for an exclusive lock.
type waitVariant struct {
	name        string
	cancellable bool
	poll        time.Duration // > 0: polls with this retry delay instead of blocking in the kernel
	// leavesThread is whether a cancelled wait leaves its thread in the
	// kernel until the lock is granted (scenario 4 does not cancel it:
	// each cancellation would add a thread blocked in flock(2)).
	leavesThread bool
	lock         func(ctx context.Context) error
	unlock       func()
}

// waitVariants opens, in the calling process, a handle of each library on
// path and returns the ways to wait on them.
func waitVariants(path string) ([]waitVariant, func(), error) {
	m, err := flock.Open(path)
	if err != nil {
		return nil, nil, err
	}
	g := gofrs.New(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	fd := int(f.Fd())
	hf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		m.Close()
		f.Close()
		return nil, nil, err
	}
	wf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		m.Close()
		f.Close()
		hf.Close()
		return nil, nil, err
	}
	try := func(retry time.Duration) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			ok, err := g.TryLockContext(ctx, retry)
			if err == nil && !ok {
				err = errors.New("TryLockContext: not locked, no error")
			}
			return err
		}
	}
	gUnlock := func() { check(g.Unlock()) }
	vs := []waitVariant{
		{"ours LockContext", true, 0, false, m.LockContext, m.Unlock},
		{"ours Lock", false, 0, false, func(context.Context) error { m.Lock(); return nil }, m.Unlock},
		{"gofrs Lock", false, 0, false, func(context.Context) error { return g.Lock() }, gUnlock},
		{"gofrs TryLockContext, 1 ms retry", true, time.Millisecond, false, try(time.Millisecond), gUnlock},
		{"gofrs TryLockContext, 10 ms retry", true, 10 * time.Millisecond, false, try(10 * time.Millisecond), gUnlock},
		{"raw flock(2) in a goroutine, result over a channel (the hop)", true, 0, true, hopLock(int(hf.Fd())),
			func() { check(flockRetry(int(hf.Fd()), unix.LOCK_UN)) }},
		{rawAsOurs, false, 0, false, tryThenBlock(fd, int(wf.Fd())),
			func() { check(flockRetry(int(wf.Fd()), unix.LOCK_UN)) }},
		{"raw flock(2) LOCK_EX (floor)", false, 0, false,
			func(context.Context) error { return flockRetry(fd, unix.LOCK_EX) },
			func() { check(flockRetry(fd, unix.LOCK_UN)) }},
	}
	return vs, func() { m.Close(); g.Close(); f.Close(); hf.Close(); wf.Close() }, nil
}

// rawAsOurs is the variant that makes, from Go with no gate, the system
// calls of a contended Lock: it differs from the floor only in those calls,
// so the difference between the two rows is the calls' cost plus the
// run's noise, and the rest of the difference between ours Lock and the
// floor is the package's Go code.
const rawAsOurs = "raw flock(2), Lock's calls: LOCK_NB on one descriptor, then blocking on another"

// tryThenBlock returns rawAsOurs's lock: a non-blocking try on fd, which
// fails (another process holds the lock), then the blocking wait on the
// wait descriptor w, as the package's flock(2) backend makes it.
func tryThenBlock(fd, w int) func(context.Context) error {
	return func(context.Context) error {
		if err := flockRetry(fd, unix.LOCK_EX|unix.LOCK_NB); err != unix.EWOULDBLOCK {
			if err == nil {
				check(flockRetry(fd, unix.LOCK_UN))
			}
			return fmt.Errorf("LOCK_NB try while another process holds the lock: %v, want EWOULDBLOCK", err)
		}
		return flockRetry(w, unix.LOCK_EX)
	}
}

// hopLock returns the least a Go program pays to make a wait in flock(2)
// cancellable without signals (which the runtime restarts): another
// goroutine blocks in the system call, and the caller waits for its result
// or the end of ctx, whichever comes first; a lock granted after the caller
// gave up is released. The grant then reaches the caller through the
// scheduler, a goroutine hop that a wait on the caller's own thread does
// not make. The difference between this row and the floor is that hop.
func hopLock(fd int) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		res := make(chan error, 1)
		go func() { res <- flockRetry(fd, unix.LOCK_EX) }()
		select {
		case err := <-res:
			return err
		case <-ctx.Done():
			go func() {
				if <-res == nil {
					check(flockRetry(fd, unix.LOCK_UN))
				}
			}()
			return ctx.Err()
		}
	}
}

// untilWaiting returns once the waiter that started (closed started) is
// waiting; see the file comment.
func untilWaiting(v waitVariant, started <-chan struct{}) error {
	<-started
	if v.poll > 0 {
		time.Sleep(v.poll + rand.N(v.poll))
		return nil
	}
	return waitFor("the waiter blocks in flock(2)", func() bool { return threadsInFlock() > 0 })
}

type acquired struct {
	at  int64
	err error
}

func scenario3(cfg *config, res *results) ([]*table, error) {
	path := filepath.Join(cfg.dir, "s3.lock")
	vs, closeAll, err := waitVariants(path)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	lat := map[string]sample{}
	h, err := spawn("holder", path)
	if err != nil {
		return nil, err
	}
	defer h.close()
	// Rounds over the variants in a new random order each time, so that
	// the machine's other load, and how long it idled before (a polling
	// waiter leaves it idle for milliseconds, and waking an idle virtual
	// CPU is slower), fall on all of them alike.
	for i := 0; i < cfg.handoffs; i++ {
		for _, k := range rand.Perm(len(vs)) {
			v := vs[k]
			d, err := handoff(h, v, ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			lat[v.name] = append(lat[v.name], d)
		}
	}

	cpu, err := waiterCPU(cfg, path, vs)
	if err != nil {
		return nil, err
	}

	floor := lat[vs[len(vs)-1].name].median()
	oursMed := lat["ours LockContext"].median()
	t := &table{
		title: fmt.Sprintf("3. Cross-process handoff: another process releases, a waiter here acquires (%d handoffs each)", cfg.handoffs),
		header: []string{"waiter", "cancellable", "p10", "median", "p99", "median ÷ floor",
			"ours LockContext ÷ this (median)", "waiter CPU while waiting", "wake-ups/s while waiting"},
	}
	for _, v := range vs {
		s := lat[v.name]
		c := cpu[v.name]
		yes := "no"
		if v.cancellable {
			yes = "yes"
		}
		if v.poll > 0 {
			yes += " (polls)"
		}
		t.row(v.name, yes, fmtDur(s.pct(10)), fmtDur(s.median()), fmtDur(s.pct(99)),
			fmtRatio(float64(s.median())/float64(floor)), fmtRatio(float64(oursMed)/float64(s.median())),
			fmt.Sprintf("%.0f µs/s (%.3f%% of a core)", c.cpuPerSec, c.cpuPerSec/1e4), fmt.Sprintf("%.0f", c.wakePerSec))
	}
	t.note("Latency: holder's wall clock right before LOCK_UN to the waiter's right after it holds the lock. ours ÷ this below 1 means ours hands off faster.")
	t.note("The latencies spread from a few µs to tens (how long the kernel takes to run the woken waiter varies), and the median falls where they spread most: two rows that make the same system calls differ there by 10%% and more in one run, while the low percentiles (p10) move least. %q tells this run's resolution.", rawAsOurs)
	t.note("CPU: getrusage(RUSAGE_SELF) of a child process that does nothing but wait, over %v while the lock is held elsewhere (includes the Go runtime's own idle activity, which the floor row shows). Wake-ups: voluntary context switches per second.", cfg.cpuWindow)
	res.handoffOurs = oursMed
	res.handoffOursP99 = lat["ours LockContext"].pct(99)
	res.handoffLock = lat["ours Lock"].median()
	res.handoffRaw = floor
	res.handoffLockP10 = lat["ours Lock"].pct(10)
	res.handoffRawP10 = lat[vs[len(vs)-1].name].pct(10)
	res.handoffRawAsOurs = lat[rawAsOurs].median()
	res.handoffRawP99 = lat[vs[len(vs)-1].name].pct(99)
	res.handoffTry10 = lat["gofrs TryLockContext, 10 ms retry"].median()
	hop := lat["raw flock(2) in a goroutine, result over a channel (the hop)"]
	res.handoffHop, res.handoffHopP99 = hop.median(), hop.pct(99)
	res.has3 = true
	return []*table{t}, nil
}

// handoff times one handoff from the holder h to waiter v.
func handoff(h *proc, v waitVariant, ctx context.Context) (time.Duration, error) {
	if _, err := h.expectAfter("l", "ok"); err != nil {
		return 0, err
	}
	got := make(chan acquired, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		err := v.lock(ctx)
		got <- acquired{time.Now().UnixNano(), err}
	}()
	if err := untilWaiting(v, started); err != nil {
		return 0, err
	}
	if err := h.send("u"); err != nil {
		return 0, err
	}
	a := <-got
	if a.err != nil {
		return 0, a.err
	}
	v.unlock()
	rest, err := h.expectAfter("t", "t")
	if err != nil {
		return 0, err
	}
	t0, err := strconv.ParseInt(rest, 10, 64)
	return time.Duration(a.at - t0), err
}

// expectAfter sends cmd and expects an answer starting with want.
func (p *proc) expectAfter(cmd, want string) (string, error) {
	if err := p.send(cmd); err != nil {
		return "", err
	}
	return p.expect(want)
}

type cpuUse struct{ cpuPerSec, wakePerSec float64 } // µs of CPU and wake-ups per second of waiting

// waiterCPU runs each variant's waiter in a child process of its own while
// the driver holds the lock, and reads the child's CPU time over the window.
func waiterCPU(cfg *config, path string, vs []waitVariant) (map[string]cpuUse, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := flockRetry(int(f.Fd()), unix.LOCK_EX); err != nil {
		return nil, err
	}
	defer flockRetry(int(f.Fd()), unix.LOCK_UN)
	out := map[string]cpuUse{}
	for _, v := range vs {
		p, err := spawn("cpuwait", path, v.name, cfg.cpuWindow.String())
		if err != nil {
			return nil, err
		}
		rest, err := p.expect("cpu")
		p.close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.name, err)
		}
		var cpuNs, wallNs, wakes float64
		fmt.Sscan(rest, &cpuNs, &wallNs, &wakes)
		out[v.name] = cpuUse{cpuNs / 1e3 / (wallNs / 1e9), wakes / (wallNs / 1e9)}
	}
	return out, nil
}

// cpuWaitMain waits with one variant (args: path, variant, window) and
// reports "cpu CPU_NS WALL_NS WAKEUPS" over the window once it waits.
func cpuWaitMain(args []string) {
	window, err := time.ParseDuration(args[2])
	if err != nil {
		fail(err)
	}
	vs, _, err := waitVariants(args[0])
	if err != nil {
		fail(err)
	}
	var v *waitVariant
	for i := range vs {
		if vs[i].name == args[1] {
			v = &vs[i]
		}
	}
	if v == nil {
		fail(fmt.Errorf("unknown variant %q", args[1]))
	}
	say("ready")
	exitOnEOF()
	started := make(chan struct{})
	go func() {
		close(started)
		if err := v.lock(context.Background()); err != nil {
			fail(err)
		}
		fail(errors.New("acquired a lock the parent holds"))
	}()
	if err := untilWaiting(*v, started); err != nil {
		fail(err)
	}
	c0, w0 := cpuTime()
	t0 := time.Now()
	time.Sleep(window) // the measurement window, not synchronisation
	c1, w1 := cpuTime()
	say("cpu %d %d %d", (c1 - c0).Nanoseconds(), time.Since(t0).Nanoseconds(), w1-w0)
	select {} // until the parent closes stdin
}

// Scenario 4: cancellation.

// cancelWaiter is the goroutine whose wait is cancelled; its name is how
// parkedGoroutines finds it.
