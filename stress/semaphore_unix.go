//go:build unix

package main

// Semaphore mode (-semaphore N): -procs workers x -goroutines goroutines
// acquire random weights of one flock.Semaphore of capacity N, with
// Acquire without a deadline, Acquire with a random deadline or a random
// cancellation (-cancel-ratio) and TryAcquire (-try-ratio), and hold the
// units up to -hold. The witness is a witness.Tally in shared memory: every
// worker counts its units in once they are granted and out before it
// releases them, and after counting in checks that the units held by all
// workers together (a consistent sum) do not exceed N; the parent samples
// the sum as well. -kill kills random workers (excluded from the sums from
// just before the SIGKILL until their cell is cleared after reaping) and
// starts replacements. At the end every worker must stop within
// -stop-timeout, and the parent must find all N units free.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-flock/flock"
	"github.com/go-flock/flock/internal/witness"
)

const semName = "stress"

// Semaphore-mode operation kinds.
const (
	sAcquire = iota
	sAcquireCtx
	sTryAcquire
	sKinds
)

var semKindNames = [sKinds]string{"Acquire", "Acquire(ctx)", "TryAcquire"}

// Per-worker counters, after the tally and the parent's cells.
const (
	cOps = iota * sKinds
	cAcquired
	cBusy
	cCancelled
	cErrors
	cWaitMax
	cPerKind
)

const (
	cViolations  = cPerKind + iota         // sums above the capacity seen by the worker
	cUnchecked                             // sums that never read consistently
	cLateMax                               // longest time a cancelled call took after its context ended
	cHist                                  // sKinds wait histograms of nBuckets
	cLateHist    = cHist + sKinds*nBuckets // histogram of cLateMax's times
	semSlotCells = cLateHist + nBuckets
)

// Parent cells, after the tally.
const (
	pMaxSum = iota
	pParentViolations
	pCells
)

type semWorkerConfig struct {
	Slot        int           `json:"slot"`
	Procs       int           `json:"procs"`
	Shm         string        `json:"shm"`
	Dir         string        `json:"dir"`
	Capacity    int64         `json:"capacity"`
	Goroutines  int           `json:"goroutines"`
	CancelRatio float64       `json:"cancel_ratio"`
	TryRatio    float64       `json:"try_ratio"`
	Hold        time.Duration `json:"hold"`
	MaxDeadline time.Duration `json:"max_deadline"`
	Seed        int64         `json:"seed"`
	// Unsafe skips the semaphore's calls (-unsafe-skip-lock), to test the
	// witness: the run must then report violations.
	Unsafe bool `json:"unsafe,omitempty"`
}

// semLayout places the cells of a run of procs workers.
type semLayout struct {
	procs int
}

func (l semLayout) cells() int { return witness.TallyCells(l.procs) + pCells + l.procs*semSlotCells }

func (l semLayout) parent(s *witness.Shared, c int) *atomic.Int64 {
	return s.Cell(witness.TallyCells(l.procs) + c)
}

func (l semLayout) worker(s *witness.Shared, slot, c int) *atomic.Int64 {
	return s.Cell(witness.TallyCells(l.procs) + pCells + slot*semSlotCells + c)
}

// maxWeight is the largest weight a worker asks for: 3, or the capacity.
func maxWeight(capacity int64) int64 {
	if capacity < 3 {
		return capacity
	}
	return 3
}

// semWorkerMain is a worker: it opens the semaphore, says "ready", starts
// on "go" and stops at the end of its stdin, then says "done".
func semWorkerMain(env string) int {
	var c semWorkerConfig
	if err := json.Unmarshal([]byte(env), &c); err != nil {
		fmt.Fprintln(os.Stderr, "stress worker:", err)
		return 2
	}
	w, err := witness.Open(c.Shm)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stress worker:", err)
		return 2
	}
	s, err := flock.OpenSemaphore(c.Dir, semName, c.Capacity)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stress worker:", err)
		return 2
	}
	l := semLayout{procs: c.Procs}
	tally := w.Tally(0, c.Procs)
	cell := func(k int) *atomic.Int64 { return l.worker(w, c.Slot, k) }
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Printf(format+"\n", args...)
		outMu.Unlock()
	}
	say("ready")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "go" {
		return 0
	}
	var stopping atomic.Bool
	var wg sync.WaitGroup
	for g := 0; g < c.Goroutines; g++ {
		wg.Add(1)
		go func(r *rand.Rand) {
			defer wg.Done()
			for !stopping.Load() {
				semOperation(r, &c, s, tally, cell, say)
			}
		}(rand.New(rand.NewSource(c.Seed + int64(g))))
	}
	for in.Scan() {
	}
	stopping.Store(true)
	wg.Wait()
	if err := s.Close(); err != nil {
		cell(cErrors + sAcquire).Add(1)
		say("error: Close: %v", err)
	}
	say("done")
	return 0
}

// semOperation makes one random call and, if it acquired, checks the
// witness, holds and releases.
func semOperation(r *rand.Rand, c *semWorkerConfig, s *flock.Semaphore, tally witness.Tally, cell func(int) *atomic.Int64, say func(string, ...any)) {
	n := 1 + r.Int63n(maxWeight(c.Capacity))
	kind := sAcquire
	switch x := r.Float64(); {
	case x < c.TryRatio:
		kind = sTryAcquire
	case x < c.TryRatio+c.CancelRatio:
		kind = sAcquireCtx
	}
	cell(cOps + kind).Add(1)
	start := time.Now()
	var err error
	var ended atomic.Int64 // when the context ended (unix ns)
	ok := true
	switch {
	case c.Unsafe:
	case kind == sAcquire:
		err = s.Acquire(context.Background(), n)
	case kind == sTryAcquire:
		ok, err = s.TryAcquire(n)
	default:
		d := time.Duration(r.Int63n(int64(c.MaxDeadline) + 1))
		if r.Intn(2) == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			ended.Store(start.Add(d).UnixNano())
			err = s.Acquire(ctx, n)
			cancel()
		} else {
			ctx, cancel := context.WithCancel(context.Background())
			t := time.AfterFunc(d, func() { ended.Store(time.Now().UnixNano()); cancel() })
			err = s.Acquire(ctx, n)
			t.Stop()
			cancel()
		}
	}
	took := time.Since(start).Nanoseconds()
	cell(cHist + kind*nBuckets + bucketOf(took)).Add(1)
	storeMax(cell(cWaitMax+kind), took)
	switch {
	case err != nil && kind == sAcquireCtx && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		cell(cCancelled + kind).Add(1)
		if e := ended.Load(); e != 0 {
			late := time.Now().UnixNano() - e
			storeMax(cell(cLateMax), late)
			cell(cLateHist + bucketOf(late)).Add(1)
		}
		return
	case err != nil:
		cell(cErrors + kind).Add(1)
		say("error: %s(%d): %v", semKindNames[kind], n, err)
		return
	case !ok:
		cell(cBusy + kind).Add(1)
		return
	}
	cell(cAcquired + kind).Add(1)
	tally.Add(c.Slot, n)
	if sum, ok := tally.Sum(100); !ok {
		cell(cUnchecked).Add(1)
	} else if sum > c.Capacity {
		cell(cViolations).Add(1)
		say("violation: %d units held at once, capacity %d", sum, c.Capacity)
	}
	if c.Hold > 0 {
		time.Sleep(time.Duration(r.Int63n(int64(c.Hold) + 1)))
	}
	tally.Add(c.Slot, -n)
	if !c.Unsafe {
		s.Release(n)
	}
}
