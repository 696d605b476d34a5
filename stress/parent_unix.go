//go:build unix

package main

// The parent process: it prepares the lock file and the witness, starts
// the workers (spawn_unix.go), runs the main loop (progress, kills in
// kill_unix.go, checks in check_unix.go) for the duration, stops the
// workers and sums up (summary_unix.go, report.go).

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-flock/flock"
)

const (
	// startTimeout bounds a worker's start-up; config.StopTimeout its
	// shutdown, and killTimeout its death once SIGKILLed.
	startTimeout = 60 * time.Second
	killTimeout  = 30 * time.Second
	// maxMessages bounds the messages kept for the summary.
	maxMessages = 40
)

// A parent is the state of a run, on the parent's side.
type parent struct {
	cfg      config
	exe      string
	dir      string
	lockPath string
	paths    []string // the lock file and its aliases; or the lock files
	filesDir string   // path mode with -dir: the directory made for the lock files
	m        *shm
	rnd      *rand.Rand
	log      io.Writer

	procs []*proc // by slot: the current worker

	msgMu    sync.Mutex
	messages []string
	dropped  int
	final    []string // from the final checks: always shown

	violations atomic.Int64 // seen by the parent itself
	errors     atomic.Int64
	maxReaders atomic.Int64
	maxRProcs  atomic.Int64

	stalled bool // the run stopped on a deadlock

	kills, killsHolding, replacements, cut int64
	stuck, longWaits                       int64
	recreations                            int64
	flagged                                map[watchKey]bool
}

type watchKey struct {
	slot int
	gen  uint64
	g    int
	t    int64
}

func (p *parent) note(format string, args ...any) {
	p.msgMu.Lock()
	defer p.msgMu.Unlock()
	if len(p.messages) >= maxMessages {
		p.dropped++
		return
	}
	p.messages = append(p.messages, fmt.Sprintf(format, args...))
}

func (p *parent) violation(format string, args ...any) {
	p.violations.Add(1)
	p.note("violation: "+format, args...)
}

// finalViolation records a violation found by the final checks; its message
// is always kept.
func (p *parent) finalViolation(format string, args ...any) {
	p.violations.Add(1)
	p.msgMu.Lock()
	p.final = append(p.final, fmt.Sprintf("violation: "+format, args...))
	p.msgMu.Unlock()
}

func (p *parent) error(format string, args ...any) {
	p.errors.Add(1)
	p.note("error: "+format, args...)
}

// run runs the parent side: it starts the workers, watches them for
// cfg.Duration, stops them and checks the final state. Progress goes to
// progress (if not nil), worker stderr to log.
func run(cfg config, progress, log io.Writer) (*summary, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "flock-stress-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if _, ok := log.(*os.File); !ok {
		log = &syncWriter{w: log} // shared by the workers' stderr copiers
	}
	p := &parent{
		cfg:     cfg,
		exe:     exe,
		dir:     dir,
		rnd:     rand.New(rand.NewSource(cfg.Seed)),
		log:     log,
		flagged: make(map[watchKey]bool),
	}
	var initial int64
	if cfg.pathMode() {
		err := p.preparePaths()
		if p.filesDir != "" {
			defer os.RemoveAll(p.filesDir)
		}
		if err != nil {
			return nil, err
		}
	} else {
		p.lockPath = cfg.Path
		if p.lockPath == "" {
			p.lockPath = filepath.Join(dir, "lock")
		}
		if p.lockPath, err = filepath.Abs(p.lockPath); err != nil {
			return nil, err
		}
		if initial, err = p.prepareLockFile(); err != nil {
			return nil, err
		}
	}
	if progress != nil {
		on := p.lockPath
		if cfg.pathMode() {
			on = fmt.Sprintf("%d lock files in %s", len(p.paths), filepath.Dir(p.paths[0]))
		}
		fmt.Fprintf(progress, "stress: %d processes x %d goroutines for %v on %s\n", cfg.Procs, cfg.Goroutines, cfg.Duration, on)
	}
	if p.m, err = createShm(filepath.Join(dir, "witness"), cfg.Procs); err != nil {
		return nil, err
	}
	defer p.m.close()

	p.procs = make([]*proc, cfg.Procs)
	for i := range p.procs {
		if err := p.spawn(i, false); err != nil {
			p.stopAll()
			return nil, err
		}
	}
	if err := p.waitReady(); err != nil {
		p.stopAll()
		return nil, err
	}

	start := time.Now()
	for _, w := range p.procs {
		w.sendGo()
	}
	checkerDone := make(chan struct{})
	stopChecker := make(chan struct{})
	go func() {
		defer close(checkerDone)
		p.checker(stopChecker)
	}()
	recreatorDone := make(chan struct{})
	go func() {
		defer close(recreatorDone)
		if cfg.pathMode() && (cfg.Churn || cfg.Remove) {
			p.recreate(stopChecker)
		}
	}()
	p.loop(start, progress)
	close(stopChecker)
	<-checkerDone
	<-recreatorDone
	elapsed := time.Since(start)
	p.stopAll()

	final, err := p.finalCheck(initial)
	if err != nil {
		return nil, err
	}
	return p.summarize(elapsed, final-initial), nil
}

// prepareLockFile creates the lock file and its aliases, makes sure the
// counter exists, and returns its value.
func (p *parent) prepareLockFile() (int64, error) {
	h, err := flock.Open(p.lockPath)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.LockContext(ctx); err != nil {
		return 0, err
	}
	defer h.Unlock()
	var b [8]byte
	n, err := h.File().ReadAt(b[:], 0)
	switch {
	case n == len(b):
	case err == io.EOF || err == nil:
		b = [8]byte{}
		if _, err := h.File().WriteAt(b[:], 0); err != nil {
			return 0, err
		}
	default:
		return 0, err
	}

	p.paths = []string{p.lockPath}
	sym := filepath.Join(p.dir, "lock.symlink")
	if err := os.Symlink(p.lockPath, sym); err == nil {
		p.paths = append(p.paths, sym)
	} else {
		fmt.Fprintln(p.log, "stress: no symbolic link alias:", err)
	}
	hard := filepath.Join(p.dir, "lock.hardlink")
	if err := os.Link(p.lockPath, hard); err == nil {
		p.paths = append(p.paths, hard)
	} else {
		fmt.Fprintln(p.log, "stress: no hard link alias:", err)
	}
	return int64(binary.LittleEndian.Uint64(b[:])), nil
}

// loop runs until the duration is over or the user interrupts, printing
// progress, running the watchdog and the kills. On a terminal the progress
// line is redrawn in place 4 times a second; anywhere else (a pipe, a file,
// a CI log) a new line is printed every second.
func (p *parent) loop(start time.Time, progress io.Writer) {
	end := time.NewTimer(p.cfg.Duration)
	defer end.Stop()
	tty := isTerminal(progress)
	interval := time.Second
	if tty {
		interval = 250 * time.Millisecond
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	watch := time.NewTicker(100 * time.Millisecond)
	defer watch.Stop()
	var kill <-chan time.Time
	if p.cfg.KillRate > 0 {
		kill = time.After(p.nextKill())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)

	last, lastOps := start, int64(0)
	stallOps, stallSince := int64(-1), start
	for {
		select {
		case <-end.C:
			if tty {
				fmt.Fprint(progress, "\r\x1b[K")
			}
			return
		case <-sig:
			if tty {
				fmt.Fprint(progress, "\r\x1b[K")
			}
			fmt.Fprintln(p.log, "stress: interrupted")
			return
		case now := <-tick.C:
			if progress == nil {
				continue
			}
			t := p.totals()
			rate := float64(t.ops-lastOps) / now.Sub(last).Seconds()
			last, lastOps = now, t.ops
			left := p.cfg.Duration - now.Sub(start)
			if left < 0 {
				left = 0
			}
			// Most telling first: a narrow terminal cuts the end.
			line := fmt.Sprintf("%4.1fs left  violations %d  errors %d  %.0f ops/s  reads %d  writes %d  cancelled %d  kills %d",
				left.Seconds(), t.violations, t.errors, rate, t.reads, t.writes, t.cancels, p.kills)
			if tty {
				// Redrawn in place: it must not wrap.
				if cols := termWidth(progress); cols > 1 && len(line) >= cols {
					line = line[:cols-1]
				}
				fmt.Fprint(progress, "\r\x1b[K"+line)
			} else {
				fmt.Fprintln(progress, line)
			}
		case now := <-watch.C:
			p.watchdog()
			p.checkExits()
			// A deadlock stops every operation everywhere; a fair share
			// of the goroutines run operations with deadlines, which
			// end however busy the lock is.
			if ops := p.totals().ops; ops != stallOps {
				stallOps, stallSince = ops, now
			} else if now.Sub(stallSince) > stallTimeout(p.cfg) {
				p.violation("no operation completed anywhere for %v: deadlock? lock holders:%s; worker pids:%s",
					now.Sub(stallSince).Round(time.Millisecond), p.holders(), p.pids())
				p.stalled = true
				if tty {
					fmt.Fprint(progress, "\r\x1b[K")
				}
				return
			}
		case <-kill:
			p.killOne()
			kill = time.After(p.nextKill())
		}
	}
}
