//go:build unix

package flock

// Multi-process tests of the Semaphore: children are this test binary
// re-executed in the roles below, talking over pipes (see main_test.go):
// a stress test against a shared-memory witness, killed holders, a
// cancelled partial acquisition, weighted requests without deadlock,
// removed slot files. One file (just over the usual length) for the roles
// they share.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-flock/flock/internal/witness"
)

func init() {
	childRoles["semaphore"] = semaphoreMain
	childRoles["semstress"] = semStressMain
	childRoles["seminterop"] = semInteropMain
}

// semEnv is the environment of a semaphore child: the semaphore's
// directory (FLOCK_TEST_PATH, set by startChildRole), name and capacity.
func semEnv(name string, capacity int) string {
	return "FLOCK_TEST_SEM=" + name + " " + strconv.Itoa(capacity)
}

func openChildSemaphore() (*Semaphore, error) {
	var name string
	var capacity int64
	if _, err := fmt.Sscan(os.Getenv("FLOCK_TEST_SEM"), &name, &capacity); err != nil {
		return nil, fmt.Errorf("FLOCK_TEST_SEM: %v", err)
	}
	return OpenSemaphore(os.Getenv("FLOCK_TEST_PATH"), name, capacity)
}

// semaphoreMain serves semaphore commands, one per line, answering one
// line each:
//
//	acquire N         Acquire without a deadline: "ok"
//	acquirectx N MS   Acquire with an MS-millisecond timeout: "ok" or "timeout"
//	try N             TryAcquire: "ok" or "held"
//	release N         "ok"
//	cycle N           Acquire without a deadline, then Release: "ok"
func semaphoreMain() {
	s, err := openChildSemaphore()
	if err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) < 2 {
			fmt.Println("err bad command")
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "acquire":
			err = s.Acquire(context.Background(), n)
		case "acquirectx":
			ms, _ := strconv.Atoi(f[2])
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ms)*time.Millisecond)
			err = s.Acquire(ctx, n)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				fmt.Println("timeout")
				continue
			}
		case "try":
			var ok bool
			if ok, err = s.TryAcquire(n); err == nil && !ok {
				fmt.Println("held")
				continue
			}
		case "release":
			s.Release(n)
		case "cycle":
			if err = s.Acquire(context.Background(), n); err == nil {
				s.Release(n)
			}
		default:
			err = errors.New("unknown command " + f[0])
		}
		if err != nil {
			fmt.Println("err", err)
		} else {
			fmt.Println("ok")
		}
	}
}

// The stress witness: the shared gauge of units held (cells 0 and 1) and
// the count of acquisitions that saw more than the capacity (cell 2).
const (
	semWitnessGauge      = 0
	semWitnessViolations = 2
	semWitnessCells      = 3
)

// semStressMain runs FLOCK_TEST_STRESS="GOROUTINES ITERATIONS WITNESS
// SEED": every goroutine acquires random weights 1..3, a third of the
// time without a deadline, a third with a random timeout, a third
// cancelled by another goroutine at a random moment, and sometimes
// TryAcquire; it counts the units into the witness while it holds them.
// It answers "done ACQUIRED CANCELLED BUSY" once all goroutines are done,
// or "err ..." for anything else than acquiring or being cancelled. Then,
// on "finish" (sent once every child is done, so that no other process
// holds a slot any more), it closes the semaphore and checks that it left
// no descriptor and no goroutine behind.
func semStressMain() {
	var goroutines, iterations int
	var wpath string
	var seed int64
	if _, err := fmt.Sscan(os.Getenv("FLOCK_TEST_STRESS"), &goroutines, &iterations, &wpath, &seed); err != nil {
		fmt.Println("err FLOCK_TEST_STRESS:", err)
		os.Exit(1)
	}
	w, err := witness.Open(wpath)
	if err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	// Counted once the runtime has its poller's descriptors, which the
	// witness's file made it open.
	fdsBefore := countFDs()
	s, err := openChildSemaphore()
	if err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	g := w.Gauge(semWitnessGauge)
	capacity := s.capacity
	var acquired, cancelled, busy atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func(r *rand.Rand) {
			defer wg.Done()
			for j := 0; j < iterations; j++ {
				n := int64(1 + r.Intn(3))
				var err error
				switch k := r.Intn(10); {
				case k < 1:
					var ok bool
					if ok, err = s.TryAcquire(n); err == nil && !ok {
						busy.Add(1)
						continue
					}
				case k < 4:
					err = s.Acquire(context.Background(), n)
				case k < 7:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.Intn(3000))*time.Microsecond)
					err = s.Acquire(ctx, n)
					cancel()
				default:
					ctx, cancel := context.WithCancel(context.Background())
					timer := time.AfterFunc(time.Duration(r.Intn(3000))*time.Microsecond, cancel)
					err = s.Acquire(ctx, n)
					timer.Stop()
					cancel()
				}
				if err != nil {
					if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
						cancelled.Add(1)
						continue
					}
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if g.Enter(n) > capacity {
					w.Cell(semWitnessViolations).Add(1)
				}
				acquired.Add(1)
				for k := r.Intn(4); k > 0; k-- {
					runtime.Gosched()
				}
				g.Leave(n)
				s.Release(n)
			}
		}(rand.New(rand.NewSource(seed + int64(i))))
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		fmt.Println("err", err)
	} else {
		fmt.Println("done", acquired.Load(), cancelled.Load(), busy.Load())
	}
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "finish" {
		os.Exit(1)
	}
	if err := s.Close(); err != nil {
		fmt.Println("err close:", err)
		os.Exit(1)
	}
	w.Close()
	// Abandoned kernel waits end once the other processes let go (they
	// all have now): then every entry is dropped and its descriptors
	// closed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		registry.mu.Lock()
		n := len(registry.entries)
		registry.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Println("err", n, "registry entries left")
			os.Exit(1)
		}
		time.Sleep(time.Millisecond)
	}
	if err := goleak.Find(); err != nil {
		fmt.Println("err goroutines left:", strings.ReplaceAll(err.Error(), "\n", " | "))
		os.Exit(1)
	}
	if after := countFDs(); after != fdsBefore {
		fmt.Println("err descriptors:", fdsBefore, "before,", after, "after")
		os.Exit(1)
	}
	fmt.Println("clean")
}

// countFDs counts the process's open descriptors, or returns -1 where
// /proc/self/fd does not list them.
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// 4 processes x 8 goroutines, random weights 1..3 and random
// cancellations, capacity 5: the shared-memory witness never sees more
// than 5 units held, every Acquire ends acquired or cancelled, and nothing
// leaks.
func TestSemaphoreStressProcesses(t *testing.T) {
	const procs, goroutines, capacity = 4, 8, 5
	iterations := 300
	if testing.Short() {
		iterations = 60
	}
	dir := t.TempDir()
	wpath := filepath.Join(t.TempDir(), "witness")
	w, err := witness.Create(wpath, semWitnessCells)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	var children []*child
	for p := 0; p < procs; p++ {
		children = append(children, startChildRole(t, "semstress", dir, semEnv("stress", capacity),
			fmt.Sprintf("FLOCK_TEST_STRESS=%d %d %s %d", goroutines, iterations, wpath, seed+int64(p)*1000)))
	}
	var acquired, cancelled, busy int64
	for p, c := range children {
		got := c.Recv()
		var a, cl, b int64
		if _, err := fmt.Sscanf(got, "done %d %d %d", &a, &cl, &b); err != nil {
			t.Fatalf("child %d: %s", p, got)
		}
		if a+cl+b != goroutines*int64(iterations) {
			t.Errorf("child %d: %d acquired + %d cancelled + %d busy, want %d calls", p, a, cl, b, goroutines*iterations)
		}
		acquired, cancelled, busy = acquired+a, cancelled+cl, busy+b
	}
	for p, c := range children {
		if got := c.Do("finish"); got != "clean" {
			t.Errorf("child %d after Close: %s", p, got)
		}
	}
	g := w.Gauge(semWitnessGauge)
	t.Logf("acquired %d, cancelled %d, TryAcquire busy %d; most units held at once %d", acquired, cancelled, busy, g.Max())
	if v := w.Cell(semWitnessViolations).Load(); v != 0 || g.Max() > capacity {
		t.Fatalf("witness: %d acquisitions saw more than %d units held; most held at once %d", v, capacity, g.Max())
	}
	if g.Now() != 0 {
		t.Fatalf("witness: %d units still counted in", g.Now())
	}
	if acquired == 0 || cancelled == 0 || g.Max() < 3 {
		t.Fatalf("the run did not exercise the semaphore: %d acquired, %d cancelled, at most %d units at once", acquired, cancelled, g.Max())
	}
}

// A SIGKILLed holder's slots are free at once, for a process that tries
// them and for one that waits in the kernel.
func TestSemaphoreKilledHolder(t *testing.T) {
	dir := t.TempDir()
	holder := startChildRole(t, "semaphore", dir, semEnv("k", 3))
	prober := startChildRole(t, "semaphore", dir, semEnv("k", 3))
	holder.Must(t, "acquire 3")
	if got := prober.Do("try 1"); got != "held" {
		t.Fatalf("TryAcquire(1) while another process holds all = %s", got)
	}
	holder.Kill()
	if got := prober.Do("try 3"); got != "ok" {
		t.Fatalf("TryAcquire(3) at once after the holder was killed = %s", got)
	}

	// The prober holds all three now; a waiter wakes when it is killed.
	s := mustOpenSemaphore(t, dir, "k", 3)
	queued := make(chan *Semaphore, 1)
	testHookSemQueued = func(s *Semaphore) { queued <- s }
	defer func() { testHookSemQueued = nil }()
	waiting := make(chan error)
	go func() { waiting <- s.Acquire(context.Background(), 3) }()
	<-queued
	prober.Kill()
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	s.Release(3)
}

// A cancelled Acquire(3) that had collected 2 of its slots lets them go.
func TestSemaphoreCancelledPartial(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenSemaphore(t, dir, "p", 3)
	c := startChildRole(t, "semaphore", dir, semEnv("p", 3))
	c.Must(t, "acquire 1")
	queued := make(chan *Semaphore, 1)
	testHookSemQueued = func(s *Semaphore) { queued <- s }
	defer func() { testHookSemQueued = nil }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Acquire(ctx, 3) }()
	<-queued
	// The parent holds the 2 slots the child does not: the child finds
	// none free.
	if got := c.Do("try 1"); got != "held" {
		t.Fatalf("child TryAcquire(1) while the parent waits holding 2 = %s", got)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Acquire(3) = %v", err)
	}
	if got := c.Do("try 2"); got != "ok" {
		t.Fatalf("child TryAcquire(2) after the parent's cancelled Acquire = %s: its partial slots are still held", got)
	}
	c.Must(t, "release 3")
	// The wait the cancelled Acquire left in the kernel for the child's
	// slot is adopted (TryAcquire would not wait for it to be released).
	ctx, cancel = context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	if err := s.Acquire(ctx, 3); err != nil {
		t.Fatalf("Acquire(3) at the end = %v", err)
	}
	s.Release(3)
}

// Two processes that each want more than half never deadlock: the gate
// lets one collect at a time.
func TestSemaphoreWeightedNoDeadlock(t *testing.T) {
	dir := t.TempDir()
	const capacity = 5
	s := mustOpenSemaphore(t, dir, "w", capacity)
	var children []*child
	for i := 0; i < 3; i++ {
		children = append(children, startChildRole(t, "semaphore", dir, semEnv("w", capacity)))
	}
	for round := 0; round < 30; round++ {
		for _, c := range children {
			if err := c.Send("cycle 3"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Acquire(context.Background(), 4); err != nil {
			t.Fatal(err)
		}
		s.Release(4)
		for _, c := range children {
			if got := c.Recv(); got != "ok" {
				t.Fatalf("round %d: child Acquire(3) = %s", round, got)
			}
		}
	}
}

// A slot file removed by a cleaner does not let two holders share the
// slot: a grant on the removed file is let go and the new file locked.
func TestSemaphoreSlotFileRemoved(t *testing.T) {
	dir := t.TempDir()
	s := mustOpenSemaphore(t, dir, "r", 1)
	c := startChildRole(t, "semaphore", dir, semEnv("r", 1))
	c.Must(t, "acquire 1")
	queued := make(chan *Semaphore, 1)
	testHookSemQueued = func(s *Semaphore) { queued <- s }
	defer func() { testHookSemQueued = nil }()
	done := make(chan error)
	go func() { done <- s.Acquire(context.Background(), 1) }()
	<-queued
	if err := os.Remove(filepath.Join(dir, "r.00.lock")); err != nil {
		t.Fatal(err)
	}
	// The parent's wait is granted on the removed file, which it must
	// not take for the slot.
	c.Must(t, "release 1")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "r.00.lock")); err != nil {
		t.Fatalf("slot file not created again: %v", err)
	}
	// The child's handle is on the removed file too: it must find the
	// slot held by the parent, on the new file.
	if got := c.Do("try 1"); got != "held" {
		t.Fatalf("child TryAcquire(1) while the parent holds the re-created slot = %s", got)
	}
	s.Release(1)
	if got := c.Do("try 1"); got != "ok" {
		t.Fatalf("child TryAcquire(1) after the parent released = %s", got)
	}
	c.Must(t, "release 1")
}

// pythonHolder is a portalocker participant: argv is directory, name,
// capacity, iterations, the output file and the clock function (the one
// witness.Now reads, witness.PythonClock); it writes "enter leave 1" per
// hold, reading the clock after acquiring and before releasing. portalocker 2.2.1 prints debugging
// lines on stdout: they go nowhere.
const pythonHolder = `
import os, random, sys, time
import portalocker
d, name, cap, iters, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
clock = getattr(time, sys.argv[6].split(".")[1])
sys.stdout = open(os.devnull, "w")
sem = portalocker.BoundedSemaphore(cap, name=name, directory=d, timeout=60, check_interval=0.005)
sys.__stdout__.write("ready\n")
sys.__stdout__.flush()
sys.stdin.readline()
lines = []
for i in range(iters):
    sem.acquire()
    enter = clock()
    time.sleep(random.uniform(0.001, 0.005))
    leave = clock()
    sem.release()
    lines.append("%d %d 1\n" % (enter, leave))
    time.sleep(random.uniform(0, 0.003))
with open(out, "w") as f:
    f.writelines(lines)
`
