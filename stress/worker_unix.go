//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-flock/flock"
)

// workerConfig is what the parent tells a worker, through workerEnv.
type workerConfig struct {
	Slot        int           `json:"slot"`
	Gen         uint64        `json:"gen"`
	Shm         string        `json:"shm"`
	Paths       []string      `json:"paths"` // the lock file, then aliases of it; or the lock files
	Goroutines  int           `json:"goroutines"`
	ReadRatio   float64       `json:"read_ratio"`
	CancelRatio float64       `json:"cancel_ratio"`
	TryRatio    float64       `json:"try_ratio"`
	Unsafe      bool          `json:"unsafe"`
	PathMode    bool          `json:"path_mode"` // Paths are distinct lock files
	Churn       bool          `json:"churn"`
	Prio        bool          `json:"prio"`
	Remove      bool          `json:"remove"`
	UnsafeWrong bool          `json:"unsafe_wrong"`
	Openers     int           `json:"openers"`
	Hold        time.Duration `json:"hold"`
	MaxDeadline time.Duration `json:"max_deadline"`
	Seed        int64         `json:"seed"`
}

type worker struct {
	cfg    workerConfig
	m      *shm
	s      *slot
	shared []*flock.RWMutex
	opts   []flock.Option // for every handle (one-file mode)

	pathOpts  [][]flock.Option // path mode: by lock file
	pathIndex map[string]int   // path mode: lock file by path

	stopping atomic.Bool

	outMu  sync.Mutex
	out    *bufio.Writer
	nLines int
}

// maxWorkerMessages bounds the violation and error lines one worker prints;
// the counts in its slot are complete.
const maxWorkerMessages = 5

// say prints one line for the parent.
func (w *worker) say(format string, args ...any) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	if !strings.HasPrefix(format, "ready") && !strings.HasPrefix(format, "done") {
		w.nLines++
		if w.nLines > maxWorkerMessages {
			return
		}
	}
	fmt.Fprintf(w.out, format+"\n", args...)
	w.out.Flush()
}

func (w *worker) violation(format string, args ...any) {
	w.s.violations.Add(1)
	w.say("violation: "+format, args...)
}

func (w *worker) error(format string, args ...any) {
	w.s.errors.Add(1)
	w.say("error: "+format, args...)
}

func workerMain(arg string) int {
	// A ^C at the terminal reaches the whole process group; the parent
	// handles it and stops the workers through their stdin.
	signal.Ignore(os.Interrupt)

	var cfg workerConfig
	if err := json.Unmarshal([]byte(arg), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "stress worker: bad configuration:", err)
		return 2
	}
	m, err := openShm(cfg.Shm)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stress worker:", err)
		return 2
	}
	defer m.close()
	if cfg.Slot < 0 || cfg.Slot >= m.n || cfg.Goroutines > maxGoroutines {
		fmt.Fprintln(os.Stderr, "stress worker: bad slot or goroutine count")
		return 2
	}
	w := &worker{cfg: cfg, m: m, s: m.slot(cfg.Slot), out: bufio.NewWriter(os.Stdout)}
	if st := w.s.state.Load(); st != cfg.Gen<<1 {
		fmt.Fprintf(os.Stderr, "stress worker: slot %d is in state %#x, want generation %d\n", cfg.Slot, st, cfg.Gen)
		return 2
	}
	w.s.pid.Store(int64(os.Getpid()))

	if cfg.PathMode {
		// Lock files are created with the permissions that name them
		// (see pathPerm).
		syscall.Umask(0)
		w.initPaths()
	} else {
		if cfg.Prio {
			w.opts = append(w.opts, flock.WriterPriority())
		}
		for _, p := range cfg.Paths {
			h, err := flock.Open(p, w.opts...)
			if err != nil {
				fmt.Fprintln(os.Stderr, "stress worker:", err)
				return 2
			}
			w.shared = append(w.shared, h)
		}
	}
	gs := make([]*gor, cfg.Goroutines)
	for i := range gs {
		g := &gor{
			w:     w,
			id:    i,
			rnd:   rand.New(rand.NewSource(cfg.Seed + int64(i)*104729)),
			watch: &w.s.watch[i],
		}
		if cfg.PathMode {
			g.long = make([]*pathHandle, len(cfg.Paths))
		} else if err := g.reopen(); err != nil {
			fmt.Fprintln(os.Stderr, "stress worker:", err)
			return 2
		}
		gs[i] = g
	}

	// stdin: "go" starts the goroutines; the next line or EOF stops them.
	in := bufio.NewScanner(os.Stdin)
	w.say("ready")
	if !in.Scan() || in.Text() != "go" {
		w.closeAll(gs)
		return 0
	}
	var wg sync.WaitGroup
	for _, g := range gs {
		wg.Add(1)
		go func(g *gor) {
			defer wg.Done()
			for !w.stopping.Load() {
				g.op()
			}
		}(g)
	}
	for i := 0; cfg.PathMode && i < cfg.Openers; i++ {
		wg.Add(1)
		go func(g *gor) {
			defer wg.Done()
			for !w.stopping.Load() {
				g.openOnly()
			}
		}(&gor{w: w, id: -1 - i, rnd: rand.New(rand.NewSource(cfg.Seed - int64(i+1)*15485863))})
	}
	in.Scan()
	w.stopping.Store(true)
	wg.Wait()
	w.closeAll(gs)
	w.say("done")
	return 0
}

// closeAll closes every handle. A handle that cannot be closed still holds
// a lock or an acquisition through it never finished: a leak.
func (w *worker) closeAll(gs []*gor) {
	for _, g := range gs {
		if g != nil && g.priv != nil {
			if err := g.priv.Close(); err != nil {
				w.violation("closing goroutine %d's handle after the run: %v", g.id, err)
			}
		}
		if g != nil {
			for i, ph := range g.long {
				if ph != nil {
					g.closeHandle(ph, "after the run")
					g.long[i] = nil
				}
			}
		}
	}
	for _, h := range w.shared {
		if err := h.Close(); err != nil {
			w.violation("closing a shared handle after the run: %v", err)
		}
	}
}

// A gor is one goroutine of a worker.
type gor struct {
	w     *worker
	id    int
	rnd   *rand.Rand
	watch *watchEntry
	priv  *flock.RWMutex // used by this goroutine only
	long  []*pathHandle  // path mode: long-lived handles, by lock file
	buf   [8]byte
}

// reopen replaces the goroutine's private handle by a new one, opened
// through a random one of the lock file's paths.
func (g *gor) reopen() error {
	paths := g.w.cfg.Paths
	h, err := flock.Open(paths[g.rnd.Intn(len(paths))], g.w.opts...)
	if err != nil {
		return err
	}
	g.priv = h
	return nil
}

// checkHoldsNothing closes the private handle after a call that did not
// acquire the lock: Close fails with ErrLocked if the call left anything
// held or in progress through the handle.
func (g *gor) checkHoldsNothing(what string, err error) {
	if cerr := g.priv.Close(); cerr != nil {
		g.w.violation("%s returned %v but its handle cannot be closed: %v", what, err, cerr)
		g.priv = nil // keep the broken handle out of use
	}
	if err := g.reopen(); err != nil {
		g.w.error("reopening: %v", err)
		g.w.stopping.Store(true)
	}
}

// Context kinds.
const (
	ctxCancelled   = iota // cancelled before the call
	ctxExpired            // deadline in the past
	ctxDeadline           // random deadline ahead
	ctxCancelLater        // cancelled after a random delay
)

func (g *gor) op() {
	w := g.w
	if w.cfg.PathMode {
		g.pathOp()
		return
	}
	h, priv := g.priv, true
	if n := g.rnd.Intn(len(w.shared) + 1); n < len(w.shared) || h == nil {
		h, priv = w.shared[n%len(w.shared)], false
	}
	switch kind, r, err := g.attempt(h); r {
	case failed:
	case cancelled:
		if priv {
			g.checkHoldsNothing(kindNames[kind], err)
		}
	case busy:
		if priv && g.rnd.Intn(8) == 0 {
			g.checkHoldsNothing(kindNames[kind], errors.New("false (held elsewhere)"))
		}
	case acquired:
		write := isWrite(kind)
		if write {
			g.writeSection(h)
		} else {
			g.readSection(h)
		}
		g.release(h, write)
	}
}

// The outcomes of attempt.
const (
	acquired  = iota
	busy      // TryLock or TryRLock found the lock held
	cancelled // a context call returned its context's error
	failed    // any other error, counted and reported
)

func isWrite(kind int) bool { return kind == kLock || kind == kTryLock || kind == kLockCtx }

// attempt runs one random lock call on h, with a random context for the
// context calls, and counts and times it. It returns the kind of call and
// its outcome (and the error if cancelled or failed); if acquired, the
// caller holds the lock and must release it.
func (g *gor) attempt(h *flock.RWMutex) (kind, outcome int, err error) {
	w := g.w
	cfg := &w.cfg

	write := g.rnd.Float64() >= cfg.ReadRatio
	kind = kRLock
	switch x := g.rnd.Float64(); {
	case x < cfg.CancelRatio:
		kind = kRLockCtx
	case x < cfg.CancelRatio+cfg.TryRatio:
		kind = kTryRLock
	}
	if write {
		kind-- // kLock, kTryLock, kLockCtx precede their read forms
	}

	var (
		ctx      context.Context
		ctxKind  int
		endNs    int64 // when ctx ended or is planned to end
		cancelAt atomic.Int64
		wantErr  error
	)
	if kind == kLockCtx || kind == kRLockCtx {
		var cancel context.CancelFunc
		maxD := int64(cfg.MaxDeadline) + 1
		switch r := g.rnd.Intn(10); {
		case r == 0:
			ctxKind, wantErr = ctxCancelled, context.Canceled
			ctx, cancel = context.WithCancel(context.Background())
			cancel()
			endNs = time.Now().UnixNano()
		case r == 1:
			ctxKind, wantErr = ctxExpired, context.DeadlineExceeded
			d := time.Now().Add(-time.Duration(g.rnd.Int63n(maxD)))
			ctx, cancel = context.WithDeadline(context.Background(), d)
			endNs = d.UnixNano()
		case r < 6:
			ctxKind, wantErr = ctxDeadline, context.DeadlineExceeded
			d := time.Now().Add(time.Duration(g.rnd.Int63n(maxD)))
			ctx, cancel = context.WithDeadline(context.Background(), d)
			endNs = d.UnixNano()
		default:
			ctxKind, wantErr = ctxCancelLater, context.Canceled
			delay := time.Duration(g.rnd.Int63n(maxD))
			ctx, cancel = context.WithCancel(context.Background())
			endNs = time.Now().Add(delay).UnixNano()
			t := time.AfterFunc(delay, func() {
				cancelAt.Store(time.Now().UnixNano())
				cancel()
			})
			defer t.Stop()
		}
		defer cancel()
	}

	start := time.Now()
	g.watch.set(kind, start.UnixNano(), endNs)
	ok, err := g.acquire(h, kind, ctx)
	end := time.Now()
	g.watch.clear()

	s := w.s
	wait := end.Sub(start)
	s.ops[kind].Add(1)
	s.record(kind, int64(wait))

	if err != nil {
		if ctx == nil || !(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			s.failed[kind].Add(1)
			w.error("%s: %v", kindNames[kind], err)
			return kind, failed, err
		}
		s.busy[kind].Add(1)
		if !errors.Is(err, wantErr) {
			w.violation("%s returned %v; its context ended with %v", kindNames[kind], err, wantErr)
		}
		if ctxKind == ctxCancelLater {
			if at := cancelAt.Load(); at != 0 {
				endNs = at
			}
		}
		if st := start.UnixNano(); endNs < st {
			endNs = st
		}
		s.record(hLate, end.UnixNano()-endNs)
		return kind, cancelled, err
	}
	if !ok {
		s.busy[kind].Add(1)
		return kind, busy, nil
	}
	s.acquired[kind].Add(1)
	if kind == kLock || kind == kLockCtx {
		storeMax(&s.writerMaxWait, int64(wait))
	}
	return kind, acquired, nil
}

func (g *gor) acquire(h *flock.RWMutex, kind int, ctx context.Context) (bool, error) {
	if g.w.cfg.Unsafe {
		return true, nil
	}
	switch kind {
	case kLock:
		h.Lock()
	case kRLock:
		if g.rnd.Intn(2) == 0 {
			h.RLocker().Lock()
		} else {
			h.RLock()
		}
	case kTryLock:
		return h.TryLock()
	case kTryRLock:
		return h.TryRLock()
	case kLockCtx:
		err := h.LockContext(ctx)
		return err == nil, err
	case kRLockCtx:
		err := h.RLockContext(ctx)
		return err == nil, err
	}
	return true, nil
}

func (g *gor) release(h *flock.RWMutex, write bool) {
	switch {
	case g.w.cfg.Unsafe:
	case write:
		h.Unlock()
	case g.rnd.Intn(2) == 0:
		h.RLocker().Unlock()
	default:
		h.RUnlock()
	}
}
