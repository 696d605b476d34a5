package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Operation kinds, as counted and timed by the workers.
const (
	kLock = iota
	kRLock
	kTryLock
	kTryRLock
	kLockCtx
	kRLockCtx
	nKinds

	// hLate is the histogram of how long after its context ended a
	// cancelled or timed-out call returned.
	hLate = nKinds
	nHist = nKinds + 1
)

var kindNames = [nKinds]string{"Lock", "RLock", "TryLock", "TryRLock", "LockContext", "RLockContext"}

// Latency histograms are log-linear: exact below 16 ns, then 8 buckets per
// power of two (at most 12.5% relative error).
const nBuckets = 512

func bucketOf(v int64) int {
	if v < 16 {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1 // >= 4
	sub := int(v>>(e-3)) & 7
	return 16 + (e-4)*8 + sub
}

// bucketHigh returns the largest value that falls in bucket i.
func bucketHigh(i int) int64 {
	if i < 16 {
		return int64(i)
	}
	e := (i-16)/8 + 4
	sub := int64((i - 16) % 8)
	low := (8 + sub) << (e - 3)
	return low + 1<<(e-3) - 1
}

// quantile returns an upper estimate of quantile q of histogram h, capped
// at the exact maximum max.
func quantile(h []int64, q float64, max int64) int64 {
	var total int64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, n := range h {
		seen += n
		if seen >= rank {
			if v := bucketHigh(i); v < max {
				return v
			}
			return max
		}
	}
	return max
}

// kindSummary is one line of the summary table. For every kind, Ops =
// Acquired + Busy + Cancelled + Errors + Cut.
type kindSummary struct {
	Kind     string `json:"kind"`
	Ops      int64  `json:"ops"`
	Acquired int64  `json:"acquired"`
	// Busy counts TryLock/TryRLock calls that returned false: the lock
	// was held (always 0 for the other kinds).
	Busy int64 `json:"busy"`
	// Cancelled counts LockContext/RLockContext calls that returned their
	// context's error: it was cancelled or its deadline passed before the
	// lock was granted (always 0 for the other kinds).
	Cancelled int64 `json:"cancelled"`
	// BusyOrCancelled is Busy + Cancelled, the field's name before they
	// were split; kept for readers of older summaries.
	BusyOrCancelled int64 `json:"busy_or_cancelled"`
	Errors          int64 `json:"errors"`
	// Cut counts calls a kill cut short: the worker had counted the call
	// but was killed before it counted how the call ended (0 without
	// -kill).
	Cut int64 `json:"cut_by_kills"`
	// P50 and P99 are the upper bounds of the histogram buckets holding
	// these quantiles of the time spent in the call (at most 12.5% above
	// the true value); Max is exact.
	P50 int64 `json:"wait_p50_ns"`
	P99 int64 `json:"wait_p99_ns"`
	Max int64 `json:"wait_max_ns"`
}

// isTry and isCtx tell the kinds that can return busy and cancelled.
func isTry(kind int) bool { return kind == kTryLock || kind == kTryRLock }
func isCtx(kind int) bool { return kind == kLockCtx || kind == kRLockCtx }

// summary is the result of a run.
type summary struct {
	Config config `json:"config"`
	// LockFile is the lock file's absolute path in the one-file mode
	// (empty in path mode). LockPaths are the paths the workers open: the
	// lock file then its aliases (symbolic and hard link), or in path mode
	// the lock files, all in LockDir. RemovedAtExit reports that they were
	// made for the run and removed at its end (all but a -path file).
	LockFile      string   `json:"lock_file"`
	LockDir       string   `json:"lock_dir"`
	LockPaths     []string `json:"lock_paths"`
	RemovedAtExit bool     `json:"removed_at_exit"`

	Elapsed  time.Duration `json:"elapsed_ns"`
	Kinds    []kindSummary `json:"kinds"`
	TotalOps int64         `json:"total_ops"`

	Writes       int64 `json:"write_sections"`
	Reads        int64 `json:"read_sections"`
	CounterDelta int64 `json:"counter_delta"`
	CutWrites    int64 `json:"write_sections_cut_by_kills"`
	// CutCalls is the sum of the kinds' Cut.
	CutCalls int64 `json:"calls_cut_by_kills"`

	MaxReaders     int64 `json:"max_simultaneous_readers"`
	MaxReaderProcs int64 `json:"max_simultaneous_reader_processes"`
	WriterMaxWait  int64 `json:"writer_max_wait_ns"`

	// Cancelled is the sum of the context kinds' Cancelled; LateP50 and
	// LateP99 (bucket upper bounds, as above) and LateMax tell how long
	// after its context ended such a call returned.
	Cancelled int64 `json:"cancelled"`
	LateP50   int64 `json:"cancel_return_p50_ns"`
	LateP99   int64 `json:"cancel_return_p99_ns"`
	LateMax   int64 `json:"cancel_return_max_ns"`

	Kills        int64 `json:"kills"`
	KillsHolding int64 `json:"kills_while_holding"`
	Replacements int64 `json:"replacements"`

	// Path mode: Opens; handles found on another file's entry (also
	// counted in Violations); locks granted on a file no longer at its
	// path; removals of a path by a holder (by hand or by RemoveOnUnlock);
	// re-creations of missing lock files by the parent.
	Opens        int64 `json:"opens,omitempty"`
	WrongEntries int64 `json:"wrong_entries"`
	StaleLocks   int64 `json:"stale_locks,omitempty"`
	Removals     int64 `json:"removals,omitempty"`
	Recreations  int64 `json:"recreations,omitempty"`

	Stuck      int64    `json:"stuck"`
	LongWaits  int64    `json:"long_waits"`
	Violations int64    `json:"violations"`
	Errors     int64    `json:"errors"`
	Messages   []string `json:"messages,omitempty"`
	Pass       bool     `json:"pass"`
}

func (s *summary) writeJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(s)
}

func fmtDur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d == 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", ns)
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// tableColumns heads the summary table; tableNotes, printed under it,
// explains the columns (and so does the usage text).
var tableColumns = []string{"operation", "calls", "acquired", "busy", "cancelled", "errors", "wait p50 ≤", "p99 ≤", "max"}

const tableNotes = `
calls = acquired + busy + cancelled + errors ("-": that call cannot end so),
  plus any call a kill cut short before its end was counted.
busy: TryLock/TryRLock returned false, the lock was held at that instant.
cancelled: LockContext/RLockContext returned its context's error: the context
  ended (it was cancelled or its deadline passed) before the lock was granted.
wait: time spent in the call, whatever it returned. p50 and p99 are the upper
  bounds of the histogram buckets that hold them (at most 12.5% above the true
  quantile); max is exact.
`

// tryNote explains, if the Try calls (almost) never acquired the lock, that
// this is contention and how to see them win.
func (s *summary) tryNote() string {
	if s.Config.Unsafe {
		return ""
	}
	var rare []string
	for k, ks := range s.Kinds {
		if isTry(k) && ks.Ops > 0 && ks.Acquired*100 < ks.Ops {
			rare = append(rare, fmt.Sprintf("%s acquired %d of %d", ks.Kind, ks.Acquired, ks.Ops))
		}
	}
	if len(rare) == 0 {
		return ""
	}
	return strings.Join(rare, ", ") + `:
  contention, not a failure. A Try call wins only at an instant nobody holds
  the lock, and here every goroutine goes straight from one call to the
  next: as soon as the lock is released, a waiter takes it. With
  -goroutines 1, or -files 4, Try calls win often.
`
}

// writeLockFiles says where the lock file or files are.
func (s *summary) writeLockFiles(w io.Writer) {
	kept := "-path, kept"
	if s.RemovedAtExit {
		kept = "made for the run, removed at exit"
	}
	if s.Config.pathMode() {
		n := len(s.LockPaths)
		if n == 0 {
			return
		}
		files := filepath.Base(s.LockPaths[0])
		if n > 1 {
			files += " .. " + filepath.Base(s.LockPaths[n-1])
		}
		fmt.Fprintf(w, "lock files: %d (%s) in %s (%s)\n", n, files, s.LockDir, kept)
		return
	}
	fmt.Fprintf(w, "lock file: %s (%s)\n", s.LockFile, kept)
	if len(s.LockPaths) > 1 {
		// The aliases: a symbolic link, then a hard link.
		aliases := s.LockPaths[1:]
		where := ""
		if filepath.Dir(aliases[0]) == s.LockDir {
			aliases = append([]string(nil), aliases...)
			for i := range aliases {
				aliases[i] = filepath.Base(aliases[i])
			}
			where = " next to it"
		}
		fmt.Fprintf(w, "  also opened through its links %s%s\n", strings.Join(aliases, " and "), where)
	}
}

// maxTableMessages bounds the messages printed under the table.
const maxTableMessages = 12

func (s *summary) writeTable(w io.Writer) {
	c := s.Config
	fmt.Fprintf(w, "\nflock stress: %d processes x %d goroutines for %v (read-ratio %.2f, cancel-ratio %.2f, try-ratio %.2f, kill %.2f/s, seed %d)\n",
		c.Procs, c.Goroutines, s.Elapsed.Round(time.Millisecond), c.ReadRatio, c.CancelRatio, c.TryRatio, c.KillRate, c.Seed)
	if c.Unsafe {
		fmt.Fprintln(w, "UNSAFE MODE: workers skipped the lock (-unsafe-skip-lock); violations are expected")
	}
	if c.UnsafeWrong {
		fmt.Fprintln(w, "UNSAFE MODE: workers now and then opened the wrong lock file (-unsafe-wrong-entry); wrong entries are expected")
	}
	if c.pathMode() || c.Prio {
		var opts []string
		if c.pathMode() {
			opts = append(opts, fmt.Sprintf("path mode, %d lock files", c.Files))
		}
		if c.Churn {
			opts = append(opts, "churn (removed and re-created)")
		}
		if c.Prio {
			opts = append(opts, "WriterPriority")
		}
		if c.Remove {
			opts = append(opts, "RemoveOnUnlock")
		}
		fmt.Fprintf(w, "mode: %s\n", strings.Join(opts, ", "))
	}
	s.writeLockFiles(w)
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(tableColumns, "\t")+"\t")
	for k, ks := range s.Kinds {
		busy, cancelled := "-", "-"
		if isTry(k) {
			busy = fmt.Sprint(ks.Busy)
		}
		if isCtx(k) {
			cancelled = fmt.Sprint(ks.Cancelled)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t\n", ks.Kind, ks.Ops, ks.Acquired, busy, cancelled, ks.Errors, fmtDur(ks.P50), fmtDur(ks.P99), fmtDur(ks.Max))
	}
	tw.Flush()
	fmt.Fprint(w, tableNotes)
	if c := s.tryNote(); c != "" {
		fmt.Fprint(w, c)
	}

	rate := float64(s.TotalOps) / s.Elapsed.Seconds()
	fmt.Fprintf(w, "\ntotal operations      %d (%.0f/s)\n", s.TotalOps, rate)
	if c.pathMode() {
		fmt.Fprintf(w, "opens                 %d\n", s.Opens)
		fmt.Fprintf(w, "wrong entries         %d (handles on another file than their path's)\n", s.WrongEntries)
		fmt.Fprintf(w, "stale locks           %d (granted on a file no longer at its path; not sections)\n", s.StaleLocks)
		fmt.Fprintf(w, "removals              %d by holders, %d re-creations by the parent\n", s.Removals, s.Recreations)
		fmt.Fprintf(w, "write sections        %d (the files' counters in shared memory advanced by %d; %d sections cut by kills)\n", s.Writes, s.CounterDelta, s.CutWrites)
	} else {
		fmt.Fprintf(w, "write sections        %d (counter in the lock file advanced by %d; %d sections cut by kills)\n", s.Writes, s.CounterDelta, s.CutWrites)
	}
	fmt.Fprintf(w, "read sections         %d\n", s.Reads)
	fmt.Fprintf(w, "max simultaneous      %d readers in %d processes\n", s.MaxReaders, s.MaxReaderProcs)
	fmt.Fprintf(w, "writer max wait       %s\n", fmtDur(s.WriterMaxWait))
	fmt.Fprintf(w, "cancelled calls       %d; returned after their context ended by p50 ≤ %s, p99 ≤ %s, max %s\n", s.Cancelled, fmtDur(s.LateP50), fmtDur(s.LateP99), fmtDur(s.LateMax))
	fmt.Fprintf(w, "kills                 %d (%d while holding the lock), %d replacements, %d calls cut short\n", s.Kills, s.KillsHolding, s.Replacements, s.CutCalls)
	fmt.Fprintf(w, "stuck operations      %d (plus %d blocking waits longer than %v)\n", s.Stuck, s.LongWaits, longWait(c))
	fmt.Fprintf(w, "errors                %d\n", s.Errors)
	fmt.Fprintf(w, "violations            %d\n", s.Violations)
	if len(s.Messages) > 0 {
		fmt.Fprintln(w)
		for i, m := range s.Messages {
			if i == maxTableMessages {
				fmt.Fprintf(w, "  ... %d more (see -json)\n", len(s.Messages)-i)
				break
			}
			fmt.Fprintln(w, "  "+strings.TrimSpace(m))
		}
	}
	if s.Pass {
		fmt.Fprintln(w, "\nPASS")
	} else {
		fmt.Fprintln(w, "\nFAIL")
	}
}

// longWait is how long a wait without deadline may last before it is
// reported (not counted as a violation: across processes flock(2) is not
// fair).
func longWait(c config) time.Duration { return 5 * c.Stuck }
