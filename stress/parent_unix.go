//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-flock/flock"
	"golang.org/x/sys/unix"
)

const (
	// startTimeout bounds a worker's start-up; config.StopTimeout its
	// shutdown, and killTimeout its death once SIGKILLed.
	startTimeout = 60 * time.Second
	killTimeout  = 30 * time.Second
	// maxMessages bounds the messages kept for the summary.
	maxMessages = 40
)

// A proc is one worker process.
type proc struct {
	slot   int
	gen    uint64
	cmd    *exec.Cmd
	ready  chan struct{} // closed when the worker said "ready"
	exited chan struct{} // closed at EOF on its stdout: it has exited

	mu      sync.Mutex
	stdin   io.WriteCloser
	started bool // told "go"
	stopped bool // stdin closed
	autoGo  bool // say "go" as soon as it is ready

	killed bool // by us, on purpose
	reaped bool
}

func (p *proc) sendGo() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped && !p.started {
		p.started = true
		io.WriteString(p.stdin, "go\n")
	}
}

func (p *proc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.stopped = true
		p.stdin.Close()
	}
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

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

// spawn starts the worker for slot i in the slot's current generation.
func (p *parent) spawn(i int, autoGo bool) error {
	gen := p.m.slot(i).state.Load() >> 1
	wc := workerConfig{
		Slot:        i,
		Gen:         gen,
		Shm:         filepath.Join(p.dir, "witness"),
		Paths:       p.paths,
		Goroutines:  p.cfg.Goroutines,
		ReadRatio:   p.cfg.ReadRatio,
		CancelRatio: p.cfg.CancelRatio,
		TryRatio:    p.cfg.TryRatio,
		Unsafe:      p.cfg.Unsafe,
		PathMode:    p.cfg.pathMode(),
		Churn:       p.cfg.Churn,
		Prio:        p.cfg.Prio,
		Remove:      p.cfg.Remove,
		UnsafeWrong: p.cfg.UnsafeWrong,
		Openers:     p.cfg.Openers,
		Hold:        p.cfg.Hold,
		MaxDeadline: p.cfg.MaxDeadline,
		Seed:        p.cfg.Seed + int64(i)*1000003 + int64(gen)*7919,
	}
	env, err := json.Marshal(wc)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.exe)
	cmd.Env = append(os.Environ(), workerEnv+"="+string(env))
	cmd.Stderr = p.log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	w := &proc{
		slot:   i,
		gen:    gen,
		cmd:    cmd,
		stdin:  stdin,
		ready:  make(chan struct{}),
		exited: make(chan struct{}),
		autoGo: autoGo,
	}
	p.procs[i] = w
	go func() {
		defer close(w.exited)
		in := bufio.NewScanner(stdout)
		for in.Scan() {
			line := in.Text()
			switch {
			case line == "ready":
				close(w.ready)
				if w.autoGo {
					w.sendGo()
				}
			case line == "done":
			default:
				// Counted by the worker in its slot; kept for the summary.
				p.note("worker %d (pid %d): %s", i, cmd.Process.Pid, line)
			}
		}
	}()
	return nil
}

func (p *parent) waitReady() error {
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	for _, w := range p.procs {
		select {
		case <-w.ready:
		case <-w.exited:
			p.reap(w)
			return fmt.Errorf("worker %d exited while starting: %v", w.slot, w.cmd.ProcessState)
		case <-t.C:
			return fmt.Errorf("worker %d did not start within %v", w.slot, startTimeout)
		}
	}
	return nil
}

func (p *parent) reap(w *proc) error {
	if w.reaped {
		return nil
	}
	<-w.exited // Wait closes stdout: read it all first
	w.reaped = true
	return w.cmd.Wait()
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

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// stallTimeout is how long no operation may complete anywhere before the
// run is declared deadlocked.
func stallTimeout(c config) time.Duration {
	return max(5*time.Second, 2*c.Stuck)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// termWidth returns the width in columns of the terminal w, 0 if unknown.
func termWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	var ws *unix.Winsize
	if cerr := rc.Control(func(fd uintptr) {
		ws, err = unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ)
	}); cerr != nil || err != nil {
		return 0
	}
	return int(ws.Col)
}

func (p *parent) nextKill() time.Duration {
	return time.Duration(p.rnd.ExpFloat64() / p.cfg.KillRate * float64(time.Second))
}

// killOne SIGKILLs a random running worker, half the time waiting (briefly)
// for a moment it holds the lock, reaps it, clears its slot and starts a
// replacement in the slot.
func (p *parent) killOne() {
	var live []*proc
	for _, w := range p.procs {
		if !w.hasExited() && !w.killed {
			live = append(live, w)
		}
	}
	if len(live) == 0 {
		return
	}
	w := live[p.rnd.Intn(len(live))]
	s := p.m.slot(w.slot)
	if p.rnd.Intn(2) == 0 {
		// Aim at a moment the worker is inside a section. This polls
		// the witness to pick the moment; it synchronises nothing.
		for t := time.Now(); !s.inside() && time.Since(t) < 20*time.Millisecond; {
			time.Sleep(20 * time.Microsecond)
		}
	}
	st := s.state.Load()
	s.state.Store(st | 1) // from now on its counts are not trusted
	holding := s.inside()
	w.killed = true
	if err := w.cmd.Process.Kill(); err != nil {
		p.error("killing worker %d: %v", w.slot, err)
	}
	select {
	case <-w.exited:
	case <-time.After(killTimeout):
		p.error("worker %d (pid %d) did not die within %v of SIGKILL", w.slot, w.cmd.Process.Pid, killTimeout)
		return
	}
	p.reap(w)
	p.kills++
	if holding {
		p.killsHolding++
	}
	p.clearSlot(s)
	s.state.Store((st>>1 + 1) << 1)
	if err := p.spawn(w.slot, true); err != nil {
		p.error("starting a replacement for worker %d: %v", w.slot, err)
		return
	}
	p.replacements++
}

// clearSlot forgets what a dead worker was doing. Only for a reaped worker:
// until then it may still hold the lock.
func (p *parent) clearSlot(s *slot) {
	p.cut += s.writeInFlight.Swap(0)
	s.section.Store(0)
	for i := range s.psection {
		s.psection[i].Store(0)
		s.removing[i].Store(0)
	}
	for i := range s.watch {
		s.watch[i].clear()
	}
	s.pid.Store(0)
	p.m.hdr.seq.Add(1)
}

// checkExits notices workers that exited without being told to.
func (p *parent) checkExits() {
	for _, w := range p.procs {
		if w.killed || w.reaped || !w.hasExited() {
			continue
		}
		s := p.m.slot(w.slot)
		st := s.state.Load()
		s.state.Store(st | 1)
		err := p.reap(w)
		p.error("worker %d (pid %d) exited unexpectedly: %v", w.slot, w.cmd.Process.Pid, err)
		p.clearSlot(s)
		s.state.Store(st | 1) // stays out of the checks
	}
}

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

type totals struct {
	ops, reads, writes, cancels, violations, errors int64
}

func (p *parent) totals() totals {
	var t totals
	for i := 0; i < p.m.n; i++ {
		s := p.m.slot(i)
		for k := 0; k < nKinds; k++ {
			t.ops += s.ops[k].Load()
		}
		t.reads += s.readsDone.Load()
		t.writes += s.writesDone.Load()
		t.cancels += s.busy[kLockCtx].Load() + s.busy[kRLockCtx].Load()
		t.violations += s.violations.Load()
		t.errors += s.errors.Load()
	}
	t.violations += p.violations.Load() + p.stuck
	t.errors += p.errors.Load()
	return t
}

func (p *parent) summarize(elapsed time.Duration, delta int64) *summary {
	sm := &summary{
		Config:       p.cfg,
		LockFile:     p.lockPath,
		Elapsed:      elapsed,
		CounterDelta: delta,
		CutWrites:    p.cut,
		Kills:        p.kills,
		KillsHolding: p.killsHolding,
		Replacements: p.replacements,
		Stuck:        p.stuck,
		LongWaits:    p.longWaits,
	}
	sm.LockPaths = p.paths
	sm.RemovedAtExit = p.cfg.Path == ""
	if p.cfg.pathMode() {
		sm.LockFile = ""
		sm.LockDir = filepath.Dir(p.paths[0])
		sm.Recreations = p.recreations
	} else {
		sm.LockDir = filepath.Dir(p.lockPath)
	}
	var hist [nHist][nBuckets]int64
	var hmax [nHist]int64
	for i := 0; i < p.m.n; i++ {
		s := p.m.slot(i)
		for h := 0; h < nHist; h++ {
			for b := range hist[h] {
				hist[h][b] += s.hist[h][b].Load()
			}
			if v := s.histMax[h].Load(); v > hmax[h] {
				hmax[h] = v
			}
		}
		sm.Writes += s.writesDone.Load()
		sm.Reads += s.readsDone.Load()
		sm.Violations += s.violations.Load()
		sm.Errors += s.errors.Load()
		sm.Opens += s.opens.Load()
		sm.WrongEntries += s.wrongEntry.Load()
		sm.StaleLocks += s.stale.Load()
		sm.Removals += s.removals.Load()
		sm.MaxReaders = max(sm.MaxReaders, s.maxReaders.Load())
		sm.MaxReaderProcs = max(sm.MaxReaderProcs, s.maxReaderProcs.Load())
		sm.WriterMaxWait = max(sm.WriterMaxWait, s.writerMaxWait.Load())
	}
	for k := 0; k < nKinds; k++ {
		ks := kindSummary{
			Kind: kindNames[k],
			P50:  quantile(hist[k][:], 0.50, hmax[k]),
			P99:  quantile(hist[k][:], 0.99, hmax[k]),
			Max:  hmax[k],
		}
		for i := 0; i < p.m.n; i++ {
			s := p.m.slot(i)
			ks.Ops += s.ops[k].Load()
			ks.Acquired += s.acquired[k].Load()
			// The witness counts Try calls that found the lock held and
			// context calls that were cancelled in one array: a kind
			// can only end one of the two ways.
			switch {
			case isTry(k):
				ks.Busy += s.busy[k].Load()
			case isCtx(k):
				ks.Cancelled += s.busy[k].Load()
			}
			ks.Errors += s.failed[k].Load()
		}
		ks.BusyOrCancelled = ks.Busy + ks.Cancelled
		sm.TotalOps += ks.Ops
		sm.Kinds = append(sm.Kinds, ks)
	}
	sm.Cancelled = sm.Kinds[kLockCtx].Cancelled + sm.Kinds[kRLockCtx].Cancelled
	sm.LateP50 = quantile(hist[hLate][:], 0.50, hmax[hLate])
	sm.LateP99 = quantile(hist[hLate][:], 0.99, hmax[hLate])
	sm.LateMax = hmax[hLate]
	sm.MaxReaders = max(sm.MaxReaders, p.maxReaders.Load())
	sm.MaxReaderProcs = max(sm.MaxReaderProcs, p.maxRProcs.Load())

	// No lost update: every completed write section advanced the counter;
	// a section cut by a kill may or may not have.
	switch {
	case delta < sm.Writes:
		p.finalViolation("lost updates: the counter advanced by %d but %d write sections completed", delta, sm.Writes)
	case delta > sm.Writes+sm.CutWrites:
		p.finalViolation("the counter advanced by %d, more than the %d completed write sections plus %d cut by kills", delta, sm.Writes, sm.CutWrites)
	}
	if sm.TotalOps == 0 {
		p.error("no operation completed")
	}
	sm.Violations += p.violations.Load() + p.stuck
	sm.Errors += p.errors.Load()
	p.msgMu.Lock()
	sm.Messages = append(p.final, p.messages...)
	if p.dropped > 0 {
		sm.Messages = append(sm.Messages, fmt.Sprintf("(%d more messages not kept)", p.dropped))
	}
	p.msgMu.Unlock()
	sm.Pass = sm.Violations == 0 && sm.Errors == 0
	return sm
}
