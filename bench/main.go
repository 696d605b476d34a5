//go:build linux

// Command bench compares github.com/go-flock/flock with
// github.com/gofrs/flock, raw flock(2) on a descriptor kept open, and the
// sync package, all measured in the same run, and prints one markdown
// table per scenario:
//
//  1. uncontended Lock+Unlock, RLock+RUnlock, TryLock+Unlock
//  2. 8 goroutines of one process on one file, and mutual exclusion with
//     one handle shared by goroutines
//  3. cross-process handoff latency and the waiter's CPU use
//  4. cancellation latency
//  5. a writer's wait under a reader flood from other processes
//  6. scale: processes, waiting goroutines, many lock files
//  7. the Semaphore: uncontended cost, handoff from another process
//     (against portalocker's BoundedSemaphore), CPU while waiting,
//     cancellation
//
// Usage, from this directory:
//
//	go run . -quick   # about a minute
//	go run .          # the full run, several minutes
//
// Child processes are this binary re-executed with FLOCK_BENCH_ROLE set.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

type config struct {
	quick        bool
	dir          string
	benchtime    time.Duration
	reps         int
	handoffs     int
	cancels      int
	cpuWindow    time.Duration
	floodWindow  time.Duration
	floodWriters int
	scaleWindow  time.Duration
	procCounts   []int
	waiterCounts []int
	files        int
}

func quickConfig() config {
	return config{
		quick:        true,
		benchtime:    100 * time.Millisecond,
		reps:         3,
		handoffs:     50,
		cancels:      50,
		cpuWindow:    500 * time.Millisecond,
		floodWindow:  1500 * time.Millisecond,
		floodWriters: 2,
		scaleWindow:  300 * time.Millisecond,
		procCounts:   []int{1, 2, 4, 8, 16},
		waiterCounts: []int{1, 10, 100, 1000},
		files:        10000,
	}
}

func fullConfig() config {
	return config{
		benchtime:    500 * time.Millisecond,
		reps:         5,
		handoffs:     200,
		cancels:      200,
		cpuWindow:    2 * time.Second,
		floodWindow:  5 * time.Second,
		floodWriters: 2,
		scaleWindow:  time.Second,
		procCounts:   []int{1, 2, 4, 8, 16},
		waiterCounts: []int{1, 10, 100, 1000},
		files:        10000,
	}
}

type scenario struct {
	n   int
	run func(*config, *results) ([]*table, error)
}

var scenarios = []scenario{
	{1, scenario1}, {2, scenario2}, {3, scenario3}, {4, scenario4}, {5, scenario5}, {6, scenario6},
	{7, scenario7},
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		runChild(role)
		return
	}
	testing.Init() // testing.Benchmark reads -test.benchtime
	quick := flag.Bool("quick", false, "short windows and fewer repetitions (about a minute)")
	only := flag.String("only", "", "comma-separated scenario numbers to run (default: all)")
	handoffs := flag.Int("handoffs", 0, "handoffs per waiter in scenario 3 (default: 50 quick, 200 full)")
	cancels := flag.Int("cancels", 0, "cancellations per waiter in scenario 4 (default: 50 quick, 200 full)")
	flag.Parse()

	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	if *handoffs > 0 {
		cfg.handoffs = *handoffs
	}
	if *cancels > 0 {
		cfg.cancels = *cancels
	}
	if err := flag.Set("test.benchtime", cfg.benchtime.String()); err != nil {
		fatal(err)
	}
	selected := map[int]bool{}
	for _, f := range strings.Split(*only, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			selected[n] = true
		}
	}
	dir, err := os.MkdirTemp("", "flock-bench-")
	if err != nil {
		fatal(err)
	}
	tmpDir = dir
	defer os.RemoveAll(dir)
	cfg.dir = dir

	start := time.Now()
	m := describeMachine(dir)
	mode := "full"
	if cfg.quick {
		mode = "quick (-quick)"
	}
	fmt.Printf("## flock benchmarks: ours vs gofrs/flock %s vs raw flock(2) vs sync\n\n", m.gofrs)
	fmt.Printf("- date: %s\n", start.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("- machine: %s, %d cores (GOMAXPROCS %d), %s\n", m.cpu, m.cores, m.procs, m.kernel)
	fmt.Printf("- Go: %s; lock files on %s (%s)\n", m.goVersion, m.fs, dir)
	fmt.Printf("- mode: %s; load average at start: %s\n", mode, loadAvg())

	res := results{other: map[int]float64{}}
	for _, s := range scenarios {
		if len(selected) > 0 && !selected[s.n] {
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "scenario %d ...\n", s.n)
		load := startLoad()
		tables, err := s.run(&cfg, &res)
		if err != nil {
			fatal(fmt.Errorf("scenario %d: %w", s.n, err))
		}
		other := load.otherCores()
		res.other[s.n] = other
		if len(tables) > 0 {
			tables[0].note("Load while this scenario ran: %s.", regime(other))
		}
		for _, t := range tables {
			t.write(os.Stdout)
		}
		fmt.Fprintf(os.Stderr, "scenario %d took %v, %s\n", s.n, time.Since(t0).Round(time.Millisecond), regime(other))
	}
	res.targets(&cfg).write(os.Stdout)
	fmt.Printf("\nTotal run time %v; load average at end: %s (other work on the machine makes every figure noisy; ratios are within this run).\n",
		time.Since(start).Round(time.Second), loadAvg())
}

var tmpDir string

func fatal(err error) {
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
