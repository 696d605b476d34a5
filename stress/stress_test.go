//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The workers of a run started by a test are this test binary re-executed
// with workerEnv set.
func TestMain(m *testing.M) {
	if w := os.Getenv(workerEnv); w != "" {
		os.Exit(workerMain(w))
	}
	goleak.VerifyTestMain(m)
}

// logWriter passes worker stderr (goroutine stacks of hung workers, for
// one) to the test log, a few lines at a time.
type logWriter struct {
	mu  sync.Mutex
	t   *testing.T
	buf []byte
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if i := bytes.LastIndexByte(w.buf, '\n'); i >= 0 {
		w.t.Log("worker stderr:\n" + string(w.buf[:i]))
		w.buf = append(w.buf[:0], w.buf[i+1:]...)
	}
	return len(b), nil
}

func testConfig(d time.Duration) config {
	c := defaultConfig() // 4 processes x 8 goroutines
	c.Duration = d
	c.Stuck = 5 * time.Second // -race, a loaded 2-core machine
	c.StopTimeout = 10 * time.Second
	c.Seed = 20240601
	return c
}

func runStress(t *testing.T, c config) *summary {
	t.Helper()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	s, err := run(c, nil, &logWriter{t: t})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	s.writeTable(&b)
	t.Log(b.String())
	return s
}

func checkClean(t *testing.T, s *summary) {
	t.Helper()
	if !s.Pass || s.Violations != 0 || s.Errors != 0 || s.Stuck != 0 {
		t.Fatalf("violations %d, errors %d, stuck %d:\n%s", s.Violations, s.Errors, s.Stuck, strings.Join(s.Messages, "\n"))
	}
	if s.Writes == 0 || s.Reads == 0 {
		t.Errorf("no progress: %d write and %d read sections", s.Writes, s.Reads)
	}
	if s.Cancelled == 0 {
		t.Error("no context call was cancelled")
	}
	if s.CounterDelta < s.Writes || s.CounterDelta > s.Writes+s.CutWrites {
		t.Errorf("counter advanced by %d for %d write sections (%d cut)", s.CounterDelta, s.Writes, s.CutWrites)
	}
	for i, k := range s.Kinds {
		if k.Ops == 0 {
			t.Errorf("no %s call", k.Kind)
		}
		// Calls with no counted end (Cut) are bounded by the run itself,
		// which errs otherwise (see TestSummaryCountsCallsCutByKills).
		if k.BusyOrCancelled != k.Busy+k.Cancelled ||
			(!isTry(i) && k.Busy != 0) || (!isCtx(i) && k.Cancelled != 0) {
			t.Errorf("%s: %d calls, %d acquired, %d busy, %d cancelled (%d together), %d errors, %d cut by %d kills",
				k.Kind, k.Ops, k.Acquired, k.Busy, k.Cancelled, k.BusyOrCancelled, k.Errors, k.Cut, s.Kills)
		}
	}
}

func TestStress(t *testing.T) {
	s := runStress(t, testConfig(3*time.Second))
	checkClean(t, s)
	if s.CutWrites != 0 || s.CounterDelta != s.Writes {
		t.Errorf("without kills: counter advanced by %d for %d write sections (%d cut)", s.CounterDelta, s.Writes, s.CutWrites)
	}
	if s.MaxReaders < 1 {
		t.Errorf("max simultaneous readers %d", s.MaxReaders)
	}
	var b bytes.Buffer
	s.writeTable(&b)
	if !strings.HasPrefix(s.LockFile, "/") || !strings.Contains(b.String(), "lock file: "+s.LockFile) {
		t.Errorf("the table does not name the lock file %q:\n%s", s.LockFile, b.String())
	}
}

// -h explains the table and the exit status, besides the flags.
func TestUsage(t *testing.T) {
	var b bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &b); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	want := []string{"Exit status:", "0  PASS", "1  FAIL", "2  usage", "stderr", "-duration"}
	for _, c := range tableColumns[1:] {
		want = append(want, "  "+c+" ")
	}
	for _, w := range want {
		if !strings.Contains(b.String(), w) {
			t.Errorf("-h does not say %q:\n%s", w, b.String())
		}
	}
}

func TestStressKill(t *testing.T) {
	c := testConfig(3 * time.Second)
	c.KillRate = 4
	s := runStress(t, c)
	checkClean(t, s)
	if s.Kills == 0 || s.Replacements != s.Kills {
		t.Errorf("%d kills, %d replacements", s.Kills, s.Replacements)
	}
}

// The checker must see what a lock that does not lock lets happen. This
// goes through the command line, -json and the exit status.
func TestStressCheckerCatchesUnsafeMode(t *testing.T) {
	s := runFailing(t, []string{"-unsafe-skip-lock", "-json", "-procs=3", "-goroutines=4", "-duration=1500ms", "-seed=7"})
	if s.Pass || s.Violations == 0 {
		t.Fatalf("unsafe mode: pass %v with %d violations; the checker saw nothing", s.Pass, s.Violations)
	}
	var exclusion, lost bool
	for _, m := range s.Messages {
		exclusion = exclusion || strings.Contains(m, "entered while") || strings.Contains(m, "checker saw")
		lost = lost || strings.Contains(m, "lost updates")
	}
	if !exclusion {
		t.Errorf("no exclusion violation reported:\n%s", strings.Join(s.Messages, "\n"))
	}
	t.Logf("unsafe mode: %d violations, counter advanced by %d for %d write sections (lost updates reported: %v)",
		s.Violations, s.CounterDelta, s.Writes, lost)
}

// churnConfig is a path-mode run: 4 lock files removed and re-created
// while every operation opens its handle afresh.
func churnConfig(d time.Duration) config {
	c := testConfig(d)
	c.Files = 4
	c.Churn = true
	return c
}

func checkChurn(t *testing.T, s *summary) {
	t.Helper()
	checkClean(t, s)
	if s.WrongEntries != 0 {
		t.Errorf("%d wrong entries", s.WrongEntries)
	}
	if s.Opens == 0 || s.Removals == 0 {
		t.Errorf("no churn: %d opens, %d removals", s.Opens, s.Removals)
	}
}

// Lock files removed (by the holder of their exclusive lock) and re-created
// while other goroutines open, lock and close them: a handle must never
// get another file's entry (inode numbers are reused at once on ext4), and
// holders of one path must exclude each other.
func TestStressChurn(t *testing.T) {
	c := churnConfig(3 * time.Second)
	c.KillRate = 2
	s := runStress(t, c)
	checkChurn(t, s)
	if s.Recreations == 0 {
		t.Error("the parent re-created no lock file")
	}
}

func TestStressChurnRemoveOnUnlock(t *testing.T) {
	c := churnConfig(3 * time.Second)
	c.Remove = true
	c.Prio = true
	s := runStress(t, c)
	checkChurn(t, s)
	if s.StaleLocks != 0 {
		t.Errorf("%d locks granted on a file no longer at its path through RemoveOnUnlock", s.StaleLocks)
	}
}

// The per-path witness must see what a lock that does not lock lets happen.
func TestStressChurnCheckerCatchesUnsafeMode(t *testing.T) {
	s := runFailing(t, []string{"-unsafe-skip-lock", "-files=4", "-churn", "-json", "-procs=3", "-goroutines=4", "-duration=1500ms", "-seed=7"})
	if s.Pass || s.Violations == 0 {
		t.Fatalf("unsafe churn: pass %v with %d violations; the checker saw nothing", s.Pass, s.Violations)
	}
	exclusion := false
	for _, m := range s.Messages {
		exclusion = exclusion || strings.Contains(m, "entered while") || strings.Contains(m, "checker saw")
	}
	if !exclusion {
		t.Errorf("no exclusion violation reported:\n%s", strings.Join(s.Messages, "\n"))
	}
	t.Logf("unsafe churn: %d violations", s.Violations)
}

// The wrong-entry check must see a handle on another lock file than its
// path's, which is what a registry that trusts a stale stat hands out.
func TestStressChurnCheckerCatchesWrongEntries(t *testing.T) {
	s := runFailing(t, []string{"-unsafe-wrong-entry", "-files=4", "-churn", "-json", "-procs=2", "-goroutines=4", "-duration=1s", "-seed=7"})
	if s.Pass || s.WrongEntries == 0 || s.Violations < s.WrongEntries {
		t.Fatalf("wrong entries on purpose: pass %v, %d wrong entries, %d violations", s.Pass, s.WrongEntries, s.Violations)
	}
	reported := false
	for _, m := range s.Messages {
		reported = reported || strings.Contains(m, "wrong entry")
	}
	if !reported {
		t.Errorf("no wrong entry reported:\n%s", strings.Join(s.Messages, "\n"))
	}
	t.Logf("wrong entries on purpose: %d in %d opens", s.WrongEntries, s.Opens)
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-procs=0"},
		{"-goroutines=100000"},
		{"-read-ratio=1.5"},
		{"-cancel-ratio=0.9", "-try-ratio=0.9"},
		{"-duration=0s"},
		{"-kill=-1"},
		{"extra"},
		{"-files=0"},
		{"-files=1000"},
		{"-files=2", "-path=x"},
		{"-dir=x"},
		{"-unsafe-wrong-entry"},
		{"-openers=-1"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	c, err := parseFlags([]string{"-procs=2", "-kill=0.5", "-path=x"}, &bytes.Buffer{})
	if err != nil || c.Procs != 2 || c.KillRate != 0.5 || c.Path != "x" || c.Seed == 0 {
		t.Errorf("parseFlags: %+v, %v", c, err)
	}
	c, err = parseFlags([]string{"-files=3", "-churn", "-remove", "-prio", "-dir=d"}, &bytes.Buffer{})
	if err != nil || !c.pathMode() || c.Files != 3 || !c.Churn || !c.Remove || !c.Prio || c.Dir != "d" {
		t.Errorf("parseFlags: %+v, %v", c, err)
	}
	if c, err := parseFlags([]string{"-remove"}, &bytes.Buffer{}); err != nil || !c.pathMode() {
		t.Errorf("-remove alone: path mode %v, %v", c.pathMode(), err)
	}
}

func TestHistogram(t *testing.T) {
	last := -1
	for v := int64(0); v < 1<<40; v = v*5/4 + 1 {
		b := bucketOf(v)
		if b < last || b >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d", v, b, last)
		}
		if hi := bucketHigh(b); v > hi || (b > 0 && v <= bucketHigh(b-1)) {
			t.Fatalf("%d in bucket %d with range (%d, %d]", v, b, bucketHigh(b-1), hi)
		}
		last = b
	}
	if b := bucketOf(1<<63 - 1); b >= nBuckets {
		t.Fatalf("max int64 in bucket %d", b)
	}
	h := make([]int64, nBuckets)
	for v := int64(1); v <= 1000; v++ {
		h[bucketOf(v*1000)]++
	}
	if p := quantile(h, 0.5, 1000000); p < 500000 || p > 500000*9/8 {
		t.Errorf("p50 = %d, want about 500000", p)
	}
	if p := quantile(h, 0.99, 1000000); p < 990000 || p > 1000000 {
		t.Errorf("p99 = %d, want about 990000", p)
	}
}

// runFailing runs the program with args (which must include -json), as
// from the command line, expecting it to report violations: exit status 1
// and a summary.
func runFailing(t *testing.T, args []string) summary {
	t.Helper()
	c, err := parseFlags(args, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := runMain(c, &out, &errOut); code != 1 {
		t.Errorf("exit status %d, want 1; stderr:\n%s", code, errOut.String())
	}
	var s summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out.String())
	}
	return s
}

// A worker counts a call before it counts the call's end, so a kill between
// the two leaves a call with no end (CI saw one in 9 kills). The summary
// counts such calls as cut, and bounds them by the kills: without a kill,
// or more than one per goroutine of each victim, they are an error, as is
// an end counted for a call that was not.
func TestSummaryCountsCallsCutByKills(t *testing.T) {
	for _, tc := range []struct {
		name      string
		kills     int64
		ops       int64 // RLock calls counted; 2 of them with an end
		wantCut   int64
		wantError bool
	}{
		{"every call ended", 0, 2, 0, false},
		{"one cut by a kill", 1, 3, 1, false},
		{"cut without a kill", 0, 3, 1, true},
		{"more cut than the victims ran goroutines", 1, 2 + 9, 9, true},
		{"more ends than calls", 0, 1, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := createShm(t.TempDir()+"/witness", 1)
			if err != nil {
				t.Fatal(err)
			}
			defer m.close()
			s := m.slot(0)
			s.ops[kRLock].Store(tc.ops)
			s.acquired[kRLock].Store(2)
			p := &parent{cfg: testConfig(time.Second), m: m, kills: tc.kills}
			sm := p.summarize(time.Second, 0)
			if got := sm.Kinds[kRLock].Cut; got != tc.wantCut || sm.CutCalls != tc.wantCut {
				t.Errorf("RLock cut %d, calls cut %d; want %d", got, sm.CutCalls, tc.wantCut)
			}
			if got := sm.Errors == 1 && strings.Contains(strings.Join(sm.Messages, "\n"), "counted"); got != tc.wantError || sm.Errors > 1 {
				t.Errorf("errors %d (%q); want an error: %v", sm.Errors, sm.Messages, tc.wantError)
			}
		})
	}
}
