//go:build linux

package main

// Scenario 5: a writer's wait under a flood of readers in other processes.
//
// Four reader processes each loop: take a shared lock, hold it 10 ms,
// release, pause 1 ms, staggered so that their holds overlap and the file
// is almost never free of readers. Writer processes loop: note the time,
// take the exclusive lock, hold it 1 ms, release, pause 10 ms. Every
// process of a row uses the same implementation. Over the window each
// writer reports its longest wait, counting a wait still going on when the
// window ends.

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-flock/flock"
)

// floodImpls are the rows of scenario 5. A row is one line: an impl whose
// name is unique.
var floodImpls = []impl{
	oursImpl("ours"),
	gofrsImpl(),
	rawImpl(),
	oursImpl("ours, WriterPriority", flock.WriterPriority()),
}

const (
	floodReaders   = 4
	readerHold     = 10 * time.Millisecond
	readerGap      = time.Millisecond
	writerHold     = time.Millisecond
	writerGap      = 10 * time.Millisecond
	floodWarmUp    = readerHold + readerGap // writers start once the readers overlap
	floodRoleRead  = "flood-reader"
	floodRoleWrite = "flood-writer"
)

func init() {
	roles[floodRoleRead] = floodReaderMain
	roles[floodRoleWrite] = floodWriterMain
}

// floodChild opens the row's lock (args: path, impl name, index) and waits
// for "go WINDOW".
func floodChild(args []string) (locker, int, time.Duration) {
	im, err := implByName(args[1])
	if err != nil {
		fail(err)
	}
	l, err := im.open(args[0])
	if err != nil {
		fail(err)
	}
	idx, _ := strconv.Atoi(args[2])
	say("ready")
	cmd, arg, _ := strings.Cut(next(), " ")
	window, err := time.ParseDuration(arg)
	if cmd != "go" || err != nil {
		fail(fmt.Errorf("want go WINDOW, got %q", cmd+" "+arg))
	}
	exitOnEOF()
	return l, idx, window
}

func floodReaderMain(args []string) {
	l, idx, window := floodChild(args)
	// Stagger the readers over one period so that their holds overlap.
	time.Sleep(time.Duration(idx) * (readerHold + readerGap) / floodReaders)
	var mu sync.Mutex
	reads := 0
	time.AfterFunc(floodWarmUp+window, func() {
		mu.Lock()
		say("reads %d", reads)
		mu.Unlock()
	})
	for {
		if err := l.RLock(); err != nil {
			fail(err)
		}
		time.Sleep(readerHold)
		if err := l.RUnlock(); err != nil {
			fail(err)
		}
		mu.Lock()
		reads++
		mu.Unlock()
		time.Sleep(readerGap)
	}
}

func floodWriterMain(args []string) {
	l, _, window := floodChild(args)
	time.Sleep(floodWarmUp) // let the readers' holds start overlapping
	var mu sync.Mutex
	var waits []string
	var waitingSince time.Time // zero while not waiting
	time.AfterFunc(window, func() {
		mu.Lock()
		pending := time.Duration(0)
		if !waitingSince.IsZero() {
			pending = time.Since(waitingSince)
		}
		say("writes %d %s", pending.Nanoseconds(), strings.Join(waits, " "))
		mu.Unlock()
	})
	for {
		mu.Lock()
		waitingSince = time.Now()
		mu.Unlock()
		if err := l.Lock(); err != nil {
			fail(err)
		}
		mu.Lock()
		waits = append(waits, strconv.FormatInt(time.Since(waitingSince).Nanoseconds(), 10))
		waitingSince = time.Time{}
		mu.Unlock()
		time.Sleep(writerHold)
		if err := l.Unlock(); err != nil {
			fail(err)
		}
		time.Sleep(writerGap)
	}
}

type floodResult struct {
	writes, reads int
	maxWait       time.Duration // including a wait still pending at the end
	medianWait    time.Duration // of all writers' completed waits
	starved       bool          // some writer never got the lock
}

func runFlood(cfg *config, im impl, path string) (floodResult, error) {
	var r floodResult
	args := func(i int) []string { return []string{path, im.name, strconv.Itoa(i)} }
	readers, err := spawnAll(floodReaders, floodRoleRead, args)
	if err != nil {
		return r, err
	}
	defer closeAll(readers)
	writers, err := spawnAll(cfg.floodWriters, floodRoleWrite, args)
	if err != nil {
		return r, err
	}
	defer closeAll(writers)
	goLine := "go " + cfg.floodWindow.String()
	for _, p := range readers {
		if err := p.send(goLine); err != nil {
			return r, err
		}
	}
	for _, p := range writers {
		if err := p.send(goLine); err != nil {
			return r, err
		}
	}
	var waits sample
	for _, p := range writers {
		rest, err := p.expect("writes")
		if err != nil {
			return r, err
		}
		f := strings.Fields(rest)
		pend, _ := strconv.ParseInt(f[0], 10, 64)
		r.maxWait = max(r.maxWait, time.Duration(pend))
		if len(f) == 1 {
			r.starved = true
		}
		for _, w := range f[1:] {
			ns, _ := strconv.ParseInt(w, 10, 64)
			waits = append(waits, time.Duration(ns))
		}
	}
	r.writes = len(waits)
	r.maxWait = max(r.maxWait, waits.max())
	r.medianWait = waits.median()
	for _, p := range readers {
		rest, err := p.expect("reads")
		if err != nil {
			return r, err
		}
		n, _ := strconv.Atoi(rest)
		r.reads += n
	}
	return r, nil
}

func scenario5(cfg *config, res *results) ([]*table, error) {
	t := &table{
		title: fmt.Sprintf("5. Writer wait under a reader flood: %d reader processes (hold %v, pause %v, overlapping) and %d writer processes, %v window",
			floodReaders, readerHold, readerGap, cfg.floodWriters, cfg.floodWindow),
		header: []string{"implementation (all processes)", "writer's longest wait", "writers' median wait", "writes", "reads", "longest wait ÷ gofrs"},
	}
	out := map[string]floodResult{}
	for i, im := range floodImpls {
		path := filepath.Join(cfg.dir, fmt.Sprintf("s5-%d.lock", i))
		r, err := runFlood(cfg, im, path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", im.name, err)
		}
		out[im.name] = r
	}
	peer := out[implGofrs.name].maxWait
	for _, im := range floodImpls {
		r := out[im.name]
		longest := fmtDur(r.maxWait)
		if r.starved {
			longest = "≥ " + longest + " (a writer never got the lock)"
		}
		med := fmtDur(r.medianWait)
		if r.writes == 0 {
			med = "—"
		}
		t.row(im.name, longest, med, fmt.Sprint(r.writes), fmt.Sprint(r.reads), fmtRatio(float64(r.maxWait)/float64(peer)))
	}
	t.note("A wait still going on when the window ends counts up to that moment, so no row can show more than the window. flock(2) grants new shared locks while a writer waits; WriterPriority makes every process that uses it queue new readers behind a waiting writer (through a second lock file). Median: of all completed waits. Writers start %v after the readers, once their holds overlap.", floodWarmUp)
	res.floodOurs = out["ours"].maxWait
	res.floodGofrs = peer
	res.floodWindow = cfg.floodWindow
	res.floodRows = floodImpls
	res.flood = out
	res.has5 = true
	return []*table{t}, nil
}
