//go:build unix

package main

// Semaphore mode, the parent's side: starting, killing and stopping the
// semaphore workers, checking the witness, and the summary.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-flock/flock"
	"github.com/go-flock/flock/internal/witness"
)

// A semProc is one semaphore-mode worker process.
type semProc struct {
	slot   int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  chan struct{}
	done   chan struct{} // it said "done"
	exited chan struct{} // its stdout ended
	reaped bool
}

type semParent struct {
	cfg   config
	exe   string
	dir   string
	shm   string
	w     *witness.Shared
	l     semLayout
	tally witness.Tally
	log   io.Writer
	procs []*semProc

	msgMu    sync.Mutex
	messages []string

	kills, killsHolding int64
	stalled             bool
}

func (p *semParent) note(format string, args ...any) {
	p.msgMu.Lock()
	defer p.msgMu.Unlock()
	if len(p.messages) < maxMessages {
		p.messages = append(p.messages, fmt.Sprintf(format, args...))
	}
}

// runSemaphore runs semaphore mode and prints its summary; it returns the
// exit status.
func runSemaphore(c config, stdout, stderr io.Writer) int {
	if c.pathMode() || c.Path != "" || c.Prio || c.Semaphore < 0 {
		fmt.Fprintln(stderr, "stress: -semaphore takes a positive capacity, and does not go with -files, -churn, -remove, -path or -prio")
		return 2
	}
	pass, err := semRun(c, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "stress:", err)
		return 2
	}
	if !pass {
		return 1
	}
	return 0
}

func semRun(cfg config, stdout, stderr io.Writer) (bool, error) {
	exe, err := os.Executable()
	if err != nil {
		return false, err
	}
	tmp, err := os.MkdirTemp("", "flock-stress-sem-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	dir := tmp // the slot files and the gate
	log := stderr
	if _, ok := log.(*os.File); !ok {
		log = &syncWriter{w: log}
	}
	p := &semParent{cfg: cfg, exe: exe, dir: dir, shm: filepath.Join(tmp, "witness"), l: semLayout{procs: cfg.Procs}, log: log}
	if p.w, err = witness.Create(p.shm, p.l.cells()); err != nil {
		return false, err
	}
	defer p.w.Close()
	p.tally = p.w.Tally(0, cfg.Procs)
	progress := stderr
	if cfg.Quiet {
		progress = nil
	}
	if progress != nil {
		fmt.Fprintf(progress, "stress: %d processes x %d goroutines for %v on a semaphore of capacity %d in %s\n",
			cfg.Procs, cfg.Goroutines, cfg.Duration, cfg.Semaphore, dir)
	}
	rnd := rand.New(rand.NewSource(cfg.Seed))
	p.procs = make([]*semProc, cfg.Procs)
	for i := range p.procs {
		if err := p.spawn(i, cfg.Seed+int64(i)*1000003); err != nil {
			p.stopAll()
			return false, err
		}
	}
	for _, w := range p.procs {
		select {
		case <-w.ready:
		case <-w.exited:
			p.stopAll()
			return false, fmt.Errorf("worker %d exited while starting", w.slot)
		case <-time.After(startTimeout):
			p.stopAll()
			return false, fmt.Errorf("worker %d did not start within %v", w.slot, startTimeout)
		}
	}
	for _, w := range p.procs {
		io.WriteString(w.stdin, "go\n")
	}
	start := time.Now()
	p.loop(rnd, progress)
	elapsed := time.Since(start)
	p.stopAll()
	p.finalCheck()
	return p.report(stdout, elapsed), nil
}

func (p *semParent) spawn(i int, seed int64) error {
	wc := semWorkerConfig{Slot: i, Procs: p.cfg.Procs, Shm: p.shm, Dir: p.dir, Capacity: p.cfg.Semaphore,
		Goroutines: p.cfg.Goroutines, CancelRatio: p.cfg.CancelRatio, TryRatio: p.cfg.TryRatio,
		Hold: p.cfg.Hold, MaxDeadline: p.cfg.MaxDeadline, Seed: seed, Unsafe: p.cfg.Unsafe}
	cmd, stdin, stdout, err := startWorker(p.exe, semWorkerEnv, wc, p.log)
	if err != nil {
		return err
	}
	w := &semProc{slot: i, cmd: cmd, stdin: stdin, ready: make(chan struct{}), done: make(chan struct{}), exited: make(chan struct{})}
	p.procs[i] = w
	go func() {
		defer close(w.exited)
		in := bufio.NewScanner(stdout)
		for in.Scan() {
			switch line := in.Text(); line {
			case "ready":
				close(w.ready)
			case "done":
				close(w.done)
			default:
				p.note("worker %d (pid %d): %s", i, cmd.Process.Pid, line)
			}
		}
	}()
	return nil
}

func (p *semParent) reap(w *semProc) {
	if !w.reaped {
		<-w.exited
		w.cmd.Wait()
		w.reaped = true
	}
}

// loop samples the witness, prints progress and kills workers until the
// duration is over.
func (p *semParent) loop(rnd *rand.Rand, progress io.Writer) {
	end := time.NewTimer(p.cfg.Duration)
	defer end.Stop()
	sample := time.NewTicker(time.Millisecond)
	defer sample.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var kill <-chan time.Time
	nextKill := func() <-chan time.Time {
		return time.After(time.Duration(rnd.ExpFloat64() / p.cfg.KillRate * float64(time.Second)))
	}
	if p.cfg.KillRate > 0 {
		kill = nextKill()
	}
	maxSum := p.l.parent(p.w, pMaxSum)
	for {
		select {
		case <-end.C:
			return
		case <-sample.C:
			if sum, ok := p.tally.Sum(10); ok {
				storeMax(maxSum, sum)
				if sum > p.cfg.Semaphore {
					p.l.parent(p.w, pParentViolations).Add(1)
					p.note("violation: the parent saw %d units held at once, capacity %d", sum, p.cfg.Semaphore)
				}
			}
		case <-tick.C:
			if progress != nil {
				var acquired int64
				for i := range p.procs {
					for k := 0; k < sKinds; k++ {
						acquired += p.l.worker(p.w, i, cAcquired+k).Load()
					}
				}
				fmt.Fprintf(progress, "stress: %d acquired, %d kills, most units at once %d\n", acquired, p.kills, maxSum.Load())
			}
		case <-kill:
			p.killOne(rnd)
			kill = nextKill()
		}
	}
}

// killOne SIGKILLs a random worker and starts its replacement. The
// victim is left out of the witness's sums from before the kill until its
// cell is cleared, after it was reaped: the kernel frees its slots as it
// dies, while its cell still counts them.
func (p *semParent) killOne(rnd *rand.Rand) {
	i := rnd.Intn(len(p.procs))
	w := p.procs[i]
	p.tally.Exclude(i)
	if p.tally.Held(i) > 0 {
		p.killsHolding++
	}
	w.cmd.Process.Signal(syscall.SIGKILL)
	p.reap(w)
	p.tally.Reset(i)
	p.kills++
	if err := p.spawn(i, p.cfg.Seed+int64(i)*1000003+p.kills*7919); err != nil {
		p.note("error: replacing worker %d: %v", i, err)
		return
	}
	go func(w *semProc) {
		select {
		case <-w.ready:
			io.WriteString(w.stdin, "go\n")
		case <-w.exited:
		}
	}(p.procs[i])
}

// stopAll ends every worker's stdin and waits for it to stop; a worker
// that does not within -stop-timeout is stalled (a deadlock) and killed.
func (p *semParent) stopAll() {
	for _, w := range p.procs {
		if w != nil {
			w.stdin.Close()
		}
	}
	deadline := time.After(p.cfg.StopTimeout)
	for _, w := range p.procs {
		if w == nil {
			continue
		}
		select {
		case <-w.exited:
		case <-deadline:
			p.stalled = true
			p.note("violation: worker %d did not stop within %v: deadlocked?", w.slot, p.cfg.StopTimeout)
			w.cmd.Process.Signal(syscall.SIGKILL)
		}
		p.reap(w)
	}
}

// finalCheck: every unit must be free once every worker is gone.
func (p *semParent) finalCheck() {
	s, err := flock.OpenSemaphore(p.dir, semName, p.cfg.Semaphore)
	if err != nil {
		p.note("error: final check: %v", err)
		return
	}
	defer s.Close()
	if ok, err := s.TryAcquire(p.cfg.Semaphore); err != nil {
		p.note("error: final check: %v", err)
	} else if !ok {
		p.l.parent(p.w, pParentViolations).Add(1)
		p.note("violation: units are still held after every worker stopped")
	} else {
		s.Release(p.cfg.Semaphore)
	}
}

// semSummary is the result of a semaphore-mode run (-json prints it).
type semSummary struct {
	Config   config       `json:"config"`
	Dir      string       `json:"dir"`
	Calls    []semKindSum `json:"calls"`
	ElapsedN int64        `json:"elapsed_ns"`
	// MaxHeld is the most units the witness saw held at once, by all
	// workers together; Unchecked counts sums it could not read
	// consistently.
	MaxHeld      int64    `json:"max_units_held"`
	Unchecked    int64    `json:"unchecked_sums"`
	LateP50      int64    `json:"cancel_late_p50_ns"`
	LateP99      int64    `json:"cancel_late_p99_ns"`
	LateMax      int64    `json:"cancel_late_max_ns"`
	Kills        int64    `json:"kills"`
	KillsHolding int64    `json:"kills_holding"`
	Cut          int64    `json:"calls_cut_by_kills"`
	Errors       int64    `json:"errors"`
	Violations   int64    `json:"violations"`
	Stalled      bool     `json:"stalled"`
	Messages     []string `json:"messages"`
	Pass         bool     `json:"pass"`
}

// semKindSum is one row of the table: Ops = Acquired + Busy + Cancelled +
// Errors, plus the calls a kill cut short.
type semKindSum struct {
	Kind      string `json:"kind"`
	Ops       int64  `json:"ops"`
	Acquired  int64  `json:"acquired"`
	Busy      int64  `json:"busy"`
	Cancelled int64  `json:"cancelled"`
	Errors    int64  `json:"errors"`
	P50       int64  `json:"wait_p50_ns"`
	P99       int64  `json:"wait_p99_ns"`
	Max       int64  `json:"wait_max_ns"`
}

func (p *semParent) summarize(elapsed time.Duration) *semSummary {
	sum := func(c int) int64 {
		var n int64
		for i := range p.procs {
			n += p.l.worker(p.w, i, c).Load()
		}
		return n
	}
	maxOf := func(c int) int64 {
		var m int64
		for i := range p.procs {
			if v := p.l.worker(p.w, i, c).Load(); v > m {
				m = v
			}
		}
		return m
	}
	r := &semSummary{Config: p.cfg, Dir: p.dir, ElapsedN: elapsed.Nanoseconds(),
		MaxHeld: p.l.parent(p.w, pMaxSum).Load(), Unchecked: sum(cUnchecked), LateMax: maxOf(cLateMax),
		Kills: p.kills, KillsHolding: p.killsHolding, Stalled: p.stalled, Messages: p.messages,
		Violations: sum(cViolations) + p.l.parent(p.w, pParentViolations).Load()}
	for k := 0; k < sKinds; k++ {
		h := make([]int64, nBuckets)
		for b := range h {
			h[b] = sum(cHist + k*nBuckets + b)
		}
		max := maxOf(cWaitMax + k)
		ks := semKindSum{Kind: semKindNames[k], Ops: sum(cOps + k), Acquired: sum(cAcquired + k), Busy: sum(cBusy + k),
			Cancelled: sum(cCancelled + k), Errors: sum(cErrors + k),
			P50: quantile(h, 0.5, max), P99: quantile(h, 0.99, max), Max: max}
		r.Calls = append(r.Calls, ks)
		r.Errors += ks.Errors
		r.Cut += ks.Ops - ks.Acquired - ks.Busy - ks.Cancelled - ks.Errors
	}
	late := make([]int64, nBuckets)
	for b := range late {
		late[b] = sum(cLateHist + b)
	}
	r.LateP50, r.LateP99 = quantile(late, 0.5, r.LateMax), quantile(late, 0.99, r.LateMax)
	r.Pass = r.Errors == 0 && r.Violations == 0 && !r.Stalled
	return r
}

// report prints the summary, as a table or with -json as JSON, and
// returns whether the run passed.
func (p *semParent) report(out io.Writer, elapsed time.Duration) bool {
	r := p.summarize(elapsed)
	if p.cfg.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.Encode(r)
		return r.Pass
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "call\tcalls\tacquired\tbusy\tcancelled\terrors\twait p50 ≤\tp99 ≤\tmax\t")
	var calls int64
	for k, ks := range r.Calls {
		busy, cancelled := fmt.Sprint(ks.Busy), fmt.Sprint(ks.Cancelled)
		if k != sTryAcquire {
			busy = "-"
		}
		if k != sAcquireCtx {
			cancelled = "-"
		}
		calls += ks.Ops
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t\n", ks.Kind, ks.Ops, ks.Acquired, busy, cancelled,
			ks.Errors, fmtDur(ks.P50), fmtDur(ks.P99), fmtDur(ks.Max))
	}
	tw.Flush()
	fmt.Fprintf(out, "\n%d calls in %v, by %d processes x %d goroutines, weights 1..%d, capacity %d\n",
		calls, elapsed.Round(time.Millisecond), p.cfg.Procs, p.cfg.Goroutines, maxWeight(p.cfg.Semaphore), p.cfg.Semaphore)
	fmt.Fprintf(out, "most units held at once (witness): %d of %d; sums not read consistently: %d\n", r.MaxHeld, p.cfg.Semaphore, r.Unchecked)
	fmt.Fprintf(out, "cancelled calls returned after their context ended by p50 ≤ %s, p99 ≤ %s, max %s\n",
		fmtDur(r.LateP50), fmtDur(r.LateP99), fmtDur(r.LateMax))
	fmt.Fprintf(out, "kills: %d (%d while the victim held units; %d calls cut short)\n", r.Kills, r.KillsHolding, r.Cut)
	fmt.Fprintf(out, "errors: %d, violations: %d\n", r.Errors, r.Violations)
	for _, m := range r.Messages {
		fmt.Fprintln(out, "  "+m)
	}
	if r.Pass {
		fmt.Fprintln(out, "PASS")
	} else {
		fmt.Fprintln(out, "FAIL")
	}
	return r.Pass
}
