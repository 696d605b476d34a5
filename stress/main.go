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
// # Output and exit status
//
// Progress goes to stderr (-quiet: none): on a terminal one line redrawn in
// place, anywhere else (a pipe, a CI log) a new line every second. The
// summary goes to stdout, as JSON with -json, else as a table with one row
// per call: calls (= acquired + busy + cancelled + errors); acquired;
// busy, TryLock/TryRLock calls that returned false because the lock was
// held; cancelled, LockContext/RLockContext calls that returned their
// context's error because it was cancelled or its deadline passed first
// ("-" where a call cannot end that way); errors; and the time spent in
// the call, whatever it returned: "wait p50 ≤" and "p99 ≤" are the upper
// bounds of the histogram buckets holding those quantiles (at most 12.5%
// above), "max" is exact. With the default mix a waiter takes the lock as
// soon as it is released, so TryLock (almost) never acquires: that is
// contention, not a failure, and the table says so (-goroutines 1 or
// -files 4 let Try calls win). Totals follow, then PASS or FAIL.
//
// The exit status is 0 (PASS) if no violation and no unexpected error was
// seen, 1 (FAIL) otherwise, 2 on a usage or setup error (or an unsupported
// platform).
//
// -unsafe-skip-lock exists only to test the checker: workers skip the lock
// calls altogether, and the run must then report violations.
//
// # Path mode: many lock files, removed and re-created
//
// -files N (N > 1), -churn or -remove select path mode: N lock files
// (lock00, lock01, ...) in one directory (a new one under -dir, or in the
// temporary directory; use a file system that reuses inode numbers, such as
// ext4: tmpfs does not). Every operation picks a random lock file and opens
// a fresh handle on it (half the time; else it uses the goroutine's
// long-lived handle on that file), runs one of the lock calls above, and
// closes a fresh handle after; -openers goroutines per worker only open,
// check and close handles. With -churn, half the (verified, see below)
// write sections remove their file while they still hold its exclusive
// lock, and the parent re-creates missing files; with -remove every handle uses RemoveOnUnlock,
// so every write unlock removes the file. -prio opens every handle (in
// either mode) with WriterPriority.
//
// A goroutine holds path P only if, once granted the lock, it finds its
// file (File().Stat()) to be the file at P (os.Stat); since files are
// removed only by such a holder of the exclusive lock, after it left its
// section and before it unlocks, a correct lock keeps verified holders of
// one path to one file. The witness keeps a section count per lock file
// in every slot: a verified writer of a path together with any other
// verified holder of the same path, in any process, is a violation, and so
// is a lost update of the path's counter (kept in the shared memory, since
// the files do not last). A lock granted on a file no longer at its path is
// counted as stale (not a violation, except through RemoveOnUnlock, which
// must not grant one).
//
// Every lock file is created with permissions that name it (0600 | its
// index, umask 0): a handle opened on one path whose File() is another lock
// file's (its permissions or its name say so) is a "wrong entry", a
// violation: the process's registry gave it another file's entry, so its
// locks exclude nobody on its path. So is a handle whose file is not the
// one at the path right after Open although nobody removed the path since
// before Open. -unsafe-wrong-entry (testing the checker only) makes workers
// now and then open the wrong lock file on purpose.
//
// # Semaphore mode
//
// -semaphore N stress-tests flock.Semaphore instead: the goroutines
// acquire random weights 1..3 of a semaphore of capacity N (Acquire,
// Acquire with a random deadline or cancellation, TryAcquire), with
// -kill, a shared-memory witness of the units held by all workers, and a
// table with one row per call (see stress/semaphore_unix.go).
//
// For example:
//
//	go run ./stress -semaphore 5 -kill 2 -duration 5s
//	go run ./stress -files 4 -churn -duration 5s
//	go run -race ./stress -files 4 -churn -duration 5s
//	go run -tags flock_fcntl ./stress -files 4 -churn -prio -remove -duration 5s
//	go run ./stress -files 8 -procs 1 -goroutines 8 -churn -duration 30s -dir /var/tmp
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
	// Path mode: several lock files, optionally removed and re-created.
	Files       int           `json:"files"`
	Churn       bool          `json:"churn,omitempty"`
	Prio        bool          `json:"writer_priority,omitempty"`
	Remove      bool          `json:"remove_on_unlock,omitempty"`
	Dir         string        `json:"dir,omitempty"`
	UnsafeWrong bool          `json:"unsafe_wrong_entry,omitempty"`
	Openers     int           `json:"openers,omitempty"`
	Hold        time.Duration `json:"hold_ns"`
	MaxDeadline time.Duration `json:"max_deadline_ns"`
	Stuck       time.Duration `json:"stuck_ns"`
	Seed        int64         `json:"seed"`
	Quiet       bool          `json:"-"`
	// Semaphore mode (semaphore_unix.go): the capacity, or 0.
	Semaphore int64 `json:"semaphore,omitempty"`
	// StopTimeout bounds the workers' shutdown (every blocked call must
	// then get the lock); longer means deadlocked.
	StopTimeout time.Duration `json:"stop_timeout_ns"`
}

const (
	maxProcs      = 64
	maxGoroutines = 256
	maxFiles      = 64
)

// pathMode reports whether the run uses several lock files opened afresh
// (path mode) rather than one lock file and its aliases.
func (c *config) pathMode() bool { return c.Files > 1 || c.Churn || c.Remove }

func defaultConfig() config {
	return config{
		Procs:       4,
		Goroutines:  8,
		Files:       1,
		Openers:     2,
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
	case c.Openers < 0 || c.Openers > maxGoroutines:
		return fmt.Errorf("-openers must be between 0 and %d", maxGoroutines)
	case c.Files < 1 || c.Files > maxFiles:
		return fmt.Errorf("-files must be between 1 and %d", maxFiles)
	case c.pathMode() && c.Path != "":
		return errors.New("-path is for the one-file mode; use -dir with -files, -churn or -remove")
	case !c.pathMode() && (c.Dir != "" || c.UnsafeWrong):
		return errors.New("-dir and -unsafe-wrong-entry need -files greater than 1, -churn or -remove")
	}
	return nil
}

// usageText heads the -h output, before the flags. Keep it, the package
// comment and tableNotes in agreement.
const usageText = `usage: stress [flags]

Stress-tests the flock package: -procs worker processes x -goroutines
goroutines lock one lock file (or, with -files N, -churn or -remove, N lock
files) in every way the package offers, for -duration, while a witness in
shared memory, which does not trust the lock, checks: one writer or many
readers at any instant, no lost update, prompt return of cancelled calls.
More in the package documentation: go doc ./stress

Progress goes to stderr: one line redrawn in place on a terminal, a new
line every second anywhere else (pipes, CI logs); -quiet turns it off.

The summary goes to stdout (as JSON with -json). Its table has one row per
call (Lock, RLock, TryLock, TryRLock, LockContext, RLockContext):
  calls       calls made: acquired + busy + cancelled + errors
  acquired    calls that got the lock (a write or read section followed)
  busy        TryLock/TryRLock returned false: the lock was held
              ("-" for the other calls)
  cancelled   LockContext/RLockContext returned their context's error: it
              was cancelled, or its deadline passed, before the lock was
              granted ("-" for the other calls)
  errors      calls that failed otherwise (also counted as errors below)
  wait p50 ≤  time spent in the call, whatever it returned: p50 and p99
  p99 ≤       are the upper bounds of the histogram buckets holding them
  max         (at most 12.5% above the true quantile); max is exact
With the default mix TryLock (almost) never acquires: that is contention,
not a failure (as soon as the lock is released, a waiter takes it), and
the run says so under the table; with -goroutines 1 or -files 4 Try calls
win often. Below the table: the sections run and the counter they advanced,
readers seen at once, how soon cancelled calls returned, kills, stuck
calls, errors, violations, messages about them, then PASS or FAIL.

With -semaphore N the goroutines use a flock.Semaphore of capacity N
instead of a lock: they acquire random weights 1..3 (Acquire, Acquire with
a random deadline or cancellation, TryAcquire) and release them, while the
witness counts the units held by all workers together, which must never
pass N; the table has one row per call (Acquire, Acquire(ctx) with a
deadline or cancellation, TryAcquire) with the same columns.

Exit status:
  0  PASS: no violation and no error
  1  FAIL: a violation (two holders at once where the lock forbids it, a
     lost update, a call stuck after its context ended, a lock left held,
     ...) or an unexpected error; the messages above FAIL say which
  2  usage or setup error, or a platform without Unix shared memory

Flags:
`

func parseFlags(args []string, stderr io.Writer) (config, error) {
	c := defaultConfig()
	fs := flag.NewFlagSet("stress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
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
	fs.BoolVar(&c.JSON, "json", false, "print the summary on stdout as JSON instead of the table")
	fs.BoolVar(&c.Unsafe, "unsafe-skip-lock", false, "FOR TESTING THE CHECKER ONLY: workers skip the lock calls, so violations must be reported")
	fs.IntVar(&c.Files, "files", c.Files, "number of lock files; more than 1 selects path mode: every operation opens a random one (mostly a fresh handle) and the witness is kept per file")
	fs.BoolVar(&c.Churn, "churn", false, "path mode, with the lock files removed (by a holder of the exclusive lock) and re-created all the time")
	fs.BoolVar(&c.Prio, "prio", false, "open every handle with WriterPriority")
	fs.BoolVar(&c.Remove, "remove", false, "path mode, with every handle opened with RemoveOnUnlock (every write unlock removes the file)")
	fs.IntVar(&c.Openers, "openers", c.Openers, "path mode: goroutines per worker process, besides -goroutines, that only open a random lock file, check the handle and close it")
	fs.StringVar(&c.Dir, "dir", "", "path mode: make the lock files in a new directory under this one (default: the temporary directory; tmpfs does not reuse inode numbers, ext4 does)")
	fs.BoolVar(&c.UnsafeWrong, "unsafe-wrong-entry", false, "FOR TESTING THE CHECKER ONLY: path mode workers now and then open another lock file than the one they use, so wrong entries must be reported")
	fs.DurationVar(&c.Hold, "hold", c.Hold, "longest time a goroutine holds the lock (random up to this)")
	fs.DurationVar(&c.MaxDeadline, "max-deadline", c.MaxDeadline, "longest random deadline or cancellation delay of context operations")
	fs.DurationVar(&c.Stuck, "stuck", c.Stuck, "an operation still running this long after its deadline or cancellation is reported as stuck")
	fs.DurationVar(&c.StopTimeout, "stop-timeout", c.StopTimeout, "longest time the workers may take to stop at the end; longer is reported as a deadlock")
	fs.Int64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress output on stderr")
	fs.Int64Var(&c.Semaphore, "semaphore", 0, "semaphore mode: the goroutines acquire random weights 1..3 of a flock.Semaphore of this capacity instead of locking (see go doc ./stress)")
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
	if w := os.Getenv(semWorkerEnv); w != "" {
		os.Exit(semWorkerMain(w))
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
	if c.Semaphore != 0 {
		return runSemaphore(c, stdout, stderr)
	}
	// Progress goes to stderr, so that stdout holds the summary alone.
	progress := stderr
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
