//go:build unix

package main

// The parent's checks while the workers run and after: the witness
// checker, the watchdog for calls stuck past their context, the shutdown
// that reports a deadlock, the final check of the lock file, and who holds
// the lock when something goes wrong.

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-flock/flock"
)

// checker samples the witness from outside: a consistent snapshot with a
// writer and anyone else is a violation.
func (p *parent) checker(stop <-chan struct{}) {
	reported := 0
	for {
		select {
		case <-stop:
			return
		default:
		}
		if p.cfg.pathMode() {
			p.checkPaths(&reported)
		} else if w, r, rp, ok := snapshot(p.m); ok {
			storeMax(&p.maxReaders, r)
			storeMax(&p.maxRProcs, rp)
			if w > 1 || (w == 1 && r > 0) {
				p.violations.Add(1)
				if reported < 5 {
					reported++
					p.note("violation: checker saw %d writers and %d readers inside at once; lock holders just after:%s", w, r, p.holders())
				}
			}
		}
		time.Sleep(200 * time.Microsecond) // sampling period
	}
}

// watchdog reports operations running long past their context's end, and
// blocking waits without a deadline that last very long.
func (p *parent) watchdog() {
	now := time.Now().UnixNano()
	for _, w := range p.procs {
		if w.killed || w.hasExited() {
			continue
		}
		s := p.m.slot(w.slot)
		for g := 0; g < p.cfg.Goroutines; g++ {
			kind, start, deadline, ok := s.watch[g].read()
			if !ok {
				continue
			}
			key := watchKey{w.slot, w.gen, g, start}
			switch {
			case p.flagged[key]:
			case deadline != 0 && now-deadline > int64(p.cfg.Stuck):
				p.flagged[key] = true
				p.stuck++
				p.note("violation: worker %d goroutine %d: %s still waiting %v after its context ended",
					w.slot, g, kindNames[kind], time.Duration(now-deadline).Round(time.Millisecond))
			case deadline == 0 && now-start > int64(longWait(p.cfg)):
				p.flagged[key] = true
				p.longWaits++
				p.note("warning: worker %d goroutine %d: %s waiting for %v",
					w.slot, g, kindNames[kind], time.Duration(now-start).Round(time.Millisecond))
			}
		}
	}
}

// stopAll tells every worker to stop and waits for all of them.
func (p *parent) stopAll() {
	for _, w := range p.procs {
		if w != nil {
			w.stop()
		}
	}
	timeout := p.cfg.StopTimeout
	if p.stalled {
		timeout = 2 * time.Second // they will not stop: get the stacks
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	hung := false
	for _, w := range p.procs {
		if w == nil || w.reaped {
			continue
		}
		select {
		case <-w.exited:
		case <-deadline.C:
			if !hung {
				hung = true
				p.violation("workers did not stop within %v; lock holders:%s; worker pids:%s (stacks on stderr)",
					timeout, p.holders(), p.pids())
			}
			p.violation("worker %d (pid %d) did not stop: a lock call never returned?%s",
				w.slot, w.cmd.Process.Pid, p.describeWaits(w.slot))
			// SIGQUIT makes the Go runtime print every goroutine's stack
			// on the worker's stderr.
			w.killed = true
			w.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-w.exited:
			case <-time.After(5 * time.Second):
				w.cmd.Process.Kill()
			}
			deadline.Reset(time.Second) // the others are most likely hung too
		}
		if err := p.reap(w); err != nil && !w.killed {
			p.error("worker %d (pid %d): %v", w.slot, w.cmd.Process.Pid, err)
		}
	}
}

func (p *parent) pids() string {
	var b strings.Builder
	for _, w := range p.procs {
		if w != nil && !w.reaped {
			fmt.Fprintf(&b, " %d=%d", w.slot, w.cmd.Process.Pid)
		}
	}
	return b.String()
}

// holders says who holds the lock on each lock file of the run, as the
// package's Holders reports it (Linux: every holder from /proc/locks; one
// at most on macOS and FreeBSD; nothing where it is unsupported), for the
// stall, deadlock and violation reports: " [pid 123 "stress" (worker 2)
// exclusive FLOCK]" per holder; in path mode only the files somebody
// holds, each after its name. It takes no lock and creates no file, and it
// only reads what the checker goroutine may read too (the witness's
// atomics and what was set up before the run).
func (p *parent) holders() string {
	if !p.cfg.pathMode() {
		return p.holdersOf(p.lockPath)
	}
	var b strings.Builder
	for _, path := range p.paths {
		if hs := p.holdersOf(path); hs != " [none]" {
			b.WriteString(" " + filepath.Base(path) + ":" + hs)
		}
	}
	if b.Len() == 0 {
		return " [none of the lock files is held]"
	}
	return b.String()
}

// holdersOf is holders for the lock file path.
func (p *parent) holdersOf(path string) string {
	h, err := flock.Open(path, flock.NoCreate())
	if err != nil {
		return " [" + err.Error() + "]"
	}
	defer h.Close()
	hs, err := h.Holders()
	if err != nil {
		return " [" + err.Error() + "]"
	}
	if len(hs) == 0 {
		return " [none]"
	}
	var b strings.Builder
	for _, x := range hs {
		b.WriteString(" [pid " + strconv.Itoa(x.PID))
		if x.Command != "" {
			b.WriteString(" " + strconv.Quote(x.Command))
		}
		for i := 0; i < p.m.n; i++ {
			if x.PID > 0 && p.m.slot(i).pid.Load() == int64(x.PID) {
				b.WriteString(" (worker " + strconv.Itoa(i) + ")")
			}
		}
		if x.PID == os.Getpid() {
			b.WriteString(" (the parent)")
		}
		mode := " shared "
		if x.Exclusive {
			mode = " exclusive "
		}
		b.WriteString(mode + x.Kind + "]")
	}
	return b.String()
}

func (p *parent) describeWaits(i int) string {
	var b strings.Builder
	now := time.Now().UnixNano()
	s := p.m.slot(i)
	for g := 0; g < p.cfg.Goroutines; g++ {
		if kind, start, _, ok := s.watch[g].read(); ok {
			fmt.Fprintf(&b, " [goroutine %d in %s for %v]", g, kindNames[kind], time.Duration(now-start).Round(time.Millisecond))
		}
	}
	return b.String()
}

// finalCheck, once every worker is gone, checks that the lock is free and
// returns the counter's value.
func (p *parent) finalCheck(initial int64) (int64, error) {
	if p.cfg.pathMode() {
		return p.finalCheckPaths()
	}
	h, err := flock.Open(p.lockPath)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	ok, err := h.TryLock()
	if err != nil {
		return 0, err
	}
	if !ok {
		if p.cfg.Path == "" {
			p.finalViolation("the lock is still held after every worker exited; lock holders:%s", p.holders())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.LockContext(ctx); err != nil {
			return 0, err
		}
	}
	defer h.Unlock()
	var b [8]byte
	if _, err := h.File().ReadAt(b[:], 0); err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(b[:])), nil
}

// stallTimeout is how long no operation may complete anywhere before the
// run is declared deadlocked.
func stallTimeout(c config) time.Duration {
	return max(5*time.Second, 2*c.Stuck)
}
