// Command stress hammers one lock file from several processes and checks,
// with a witness that does not trust the lock, that the flock package keeps
// its promises: one writer or many readers at any instant across processes,
// no lost update, prompt cancellation that leaves nothing held.
//
// Usage:
//
//	go run ./stress [flags]
//
// The parent starts -procs worker processes (this program re-executed, with
// FLOCK_STRESS_WORKER set), each running -goroutines goroutines that mix
// Lock/Unlock, RLock/RUnlock (directly and through RLocker), TryLock,
// TryRLock, LockContext and RLockContext with random deadlines and random
// cancellation, through several handles on the one lock file: its path, a
// symbolic link, a hard link, and a private handle per goroutine.
//
// The witness is a shared memory-mapped file with one slot per worker: a
// goroutine that has acquired the lock adds itself to its slot's writer or
// reader count with an atomic operation and checks every other slot; the
// parent samples all slots as well. A writer together with anyone else is a
// violation. Writers also increment a counter stored in the lock file (read,
// yield, write back); at the end the counter must equal the number of
// completed write sections, allowing for sections cut short by -kill.
// Readers read it twice and must see it unchanged.
//
// With -kill RATE the parent SIGKILLs random workers (RATE per second on
// average, often while they hold the lock) and starts replacements; a killed
// worker's slot is cleared only after the parent has reaped it.
//
// The exit status is 0 if no violation and no unexpected error was seen, 1
// otherwise, 2 on a usage or setup error (or an unsupported platform).
//
// -unsafe-skip-lock exists only to test the checker: workers skip the lock
// calls altogether, and the run must then report violations.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// workerEnv, when set, makes the program a worker; its value is the
// worker's JSON-encoded workerConfig.
const workerEnv = "FLOCK_STRESS_WORKER"

// config is the run's configuration, set by flags.
type config struct {
	Procs       int           `json:"procs"`
	Goroutines  int           `json:"goroutines"`
	Duration    time.Duration `json:"duration_ns"`
	ReadRatio   float64       `json:"read_ratio"`
	CancelRatio float64       `json:"cancel_ratio"`
	TryRatio    float64       `json:"try_ratio"`
	KillRate    float64       `json:"kill_rate"`
	Path        string        `json:"path,omitempty"`
	JSON        bool          `json:"-"`
	Unsafe      bool          `json:"unsafe_skip_lock,omitempty"`
	Hold        time.Duration `json:"hold_ns"`
	MaxDeadline time.Duration `json:"max_deadline_ns"`
	Stuck       time.Duration `json:"stuck_ns"`
	Seed        int64         `json:"seed"`
	Quiet       bool          `json:"-"`
	// StopTimeout bounds the workers' shutdown (every blocked call must
	// then get the lock); longer means deadlocked.
	StopTimeout time.Duration `json:"stop_timeout_ns"`
}

const (
	maxProcs      = 64
	maxGoroutines = 256
)

func defaultConfig() config {
	return config{
		Procs:       4,
		Goroutines:  8,
		Duration:    10 * time.Second,
		ReadRatio:   0.5,
		CancelRatio: 0.2,
		TryRatio:    0.15,
		Hold:        50 * time.Microsecond,
		MaxDeadline: 5 * time.Millisecond,
		Stuck:       2 * time.Second,
		StopTimeout: 30 * time.Second,
	}
}

func (c *config) validate() error {
	switch {
	case c.Procs < 1 || c.Procs > maxProcs:
		return fmt.Errorf("-procs must be between 1 and %d", maxProcs)
	case c.Goroutines < 1 || c.Goroutines > maxGoroutines:
		return fmt.Errorf("-goroutines must be between 1 and %d", maxGoroutines)
	case c.Duration <= 0:
		return errors.New("-duration must be positive")
	case c.ReadRatio < 0 || c.ReadRatio > 1:
		return errors.New("-read-ratio must be between 0 and 1")
	case c.CancelRatio < 0 || c.TryRatio < 0 || c.CancelRatio+c.TryRatio > 1:
		return errors.New("-cancel-ratio and -try-ratio must be between 0 and 1, and their sum at most 1")
	case c.KillRate < 0:
		return errors.New("-kill must not be negative")
	case c.Hold < 0 || c.MaxDeadline < 0 || c.Stuck <= 0 || c.StopTimeout <= 0:
		return errors.New("-hold and -max-deadline must not be negative, -stuck and -stop-timeout must be positive")
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	c := defaultConfig()
	fs := flag.NewFlagSet("stress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: stress [flags]\n\n"+
			"Runs -procs processes x -goroutines goroutines against one lock file and\n"+
			"checks mutual exclusion, lost updates and prompt cancellation.\n\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&c.Procs, "procs", c.Procs, "number of worker processes")
	fs.IntVar(&c.Goroutines, "goroutines", c.Goroutines, "goroutines per worker process")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to run")
	fs.Float64Var(&c.ReadRatio, "read-ratio", c.ReadRatio, "fraction of operations that take the lock for reading")
	fs.Float64Var(&c.CancelRatio, "cancel-ratio", c.CancelRatio, "fraction of operations that are LockContext/RLockContext with a random deadline or cancellation")
	fs.Float64Var(&c.TryRatio, "try-ratio", c.TryRatio, "fraction of operations that are TryLock/TryRLock")
	fs.Float64Var(&c.KillRate, "kill", c.KillRate, "SIGKILL a random worker this many times per second on average (0: never), then start a replacement")
	fs.StringVar(&c.Path, "path", "", "lock file to use (default: a file in a new temporary directory); its first 8 bytes are overwritten with the writers' counter")
	fs.BoolVar(&c.JSON, "json", false, "print the summary as JSON on stdout (progress goes to stderr)")
	fs.BoolVar(&c.Unsafe, "unsafe-skip-lock", false, "FOR TESTING THE CHECKER ONLY: workers skip the lock calls, so violations must be reported")
	fs.DurationVar(&c.Hold, "hold", c.Hold, "longest time a goroutine holds the lock (random up to this)")
	fs.DurationVar(&c.MaxDeadline, "max-deadline", c.MaxDeadline, "longest random deadline or cancellation delay of context operations")
	fs.DurationVar(&c.Stuck, "stuck", c.Stuck, "an operation still running this long after its deadline or cancellation is reported as stuck")
	fs.DurationVar(&c.StopTimeout, "stop-timeout", c.StopTimeout, "longest time the workers may take to stop at the end; longer is reported as a deadlock")
	fs.Int64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress output")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	return c, c.validate()
}

func main() {
	if w := os.Getenv(workerEnv); w != "" {
		os.Exit(workerMain(w))
	}
	c, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stress:", err)
		os.Exit(2)
	}
	os.Exit(runMain(c, os.Stdout, os.Stderr))
}

// runMain runs the parent side and prints the summary; it returns the exit
// status.
func runMain(c config, stdout, stderr io.Writer) int {
	progress := stdout
	if c.JSON {
		progress = stderr
	}
	if c.Quiet {
		progress = nil
	}
	s, err := run(c, progress, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "stress:", err)
		return 2
	}
	if c.JSON {
		if err := s.writeJSON(stdout); err != nil {
			fmt.Fprintln(stderr, "stress:", err)
			return 2
		}
	} else {
		s.writeTable(stdout)
	}
	if !s.Pass {
		return 1
	}
	return 0
}
