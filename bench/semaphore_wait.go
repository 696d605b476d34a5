//go:build linux

package main

// Scenarios 7c and 7d: the CPU of a process whose goroutines wait on the
// Semaphore, and how soon a cancelled Acquire returns.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-flock/flock"
)

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
