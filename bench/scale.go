//go:build linux

package main

// Scenario 6: scale. (a) 1 to 16 processes taking and releasing one
// exclusive lock as fast as they can; (b) 1 to 1000 goroutines of one
// process waiting for a lock another process holds: OS threads and memory;
// (c) 10,000 distinct lock files opened in one process.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	roles["contender"] = contenderMain
	roles["waiters"] = waitersMain
	roles["manyfiles"] = manyFilesMain
}

var scaleImpls = []impl{implOurs, implGofrs, implRaw}

// contenderMain (args: path, impl) loops Lock+Unlock for WINDOW after
// "go WINDOW" and answers "ops N".
func contenderMain(args []string) {
	im, err := implByName(args[1])
	if err != nil {
		fail(err)
	}
	l, err := im.open(args[0])
	if err != nil {
		fail(err)
	}
	say("ready")
	_, arg, _ := strings.Cut(next(), " ")
	window, err := time.ParseDuration(arg)
	if err != nil {
		fail(err)
	}
	exitOnEOF()
	n := 0
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		if err := l.Lock(); err != nil {
			fail(err)
		}
		if err := l.Unlock(); err != nil {
			fail(err)
		}
		n++
	}
	say("ops %d", n)
	select {}
}

type scaleResult struct {
	total         float64 // ops/s, all processes
	minShare, max int     // fewest and most operations of one process
}

func runContenders(cfg *config, im impl, path string, n int) (scaleResult, error) {
	var r scaleResult
	ps, err := spawnAll(n, "contender", func(int) []string { return []string{path, im.name} })
	if err != nil {
		return r, err
	}
	defer closeAll(ps)
	for _, p := range ps {
		if err := p.send("go " + cfg.scaleWindow.String()); err != nil {
			return r, err
		}
	}
	sum := 0
	r.minShare = -1
	for _, p := range ps {
		rest, err := p.expect("ops")
		if err != nil {
			return r, err
		}
		k, _ := strconv.Atoi(rest)
		sum += k
		if r.minShare < 0 || k < r.minShare {
			r.minShare = k
		}
		r.max = max(r.max, k)
	}
	r.total = float64(sum) / cfg.scaleWindow.Seconds()
	return r, nil
}

func scenario6(cfg *config, res *results) ([]*table, error) {
	a, err := scenario6a(cfg)
	if err != nil {
		return nil, err
	}
	b, err := scenario6b(cfg, res)
	if err != nil {
		return nil, err
	}
	c, err := scenario6c(cfg)
	if err != nil {
		return nil, err
	}
	return []*table{a, b, c}, nil
}

func scenario6a(cfg *config) (*table, error) {
	t := &table{
		title: fmt.Sprintf("6a. Scale: processes contending on one file: Lock+Unlock in a loop, one goroutine per process (total operations per second, %v window)", cfg.scaleWindow),
		header: []string{"processes", "ours", "gofrs", "raw flock(2) (floor)", "ours/gofrs", "ours/raw",
			"fewest–most ops of one process: ours", "gofrs", "raw"},
	}
	for _, n := range cfg.procCounts {
		rs := map[string]scaleResult{}
		for i, im := range scaleImpls {
			path := filepath.Join(cfg.dir, fmt.Sprintf("s6a-%d-%d.lock", n, i))
			r, err := runContenders(cfg, im, path, n)
			if err != nil {
				return nil, fmt.Errorf("%s, %d processes: %w", im.name, n, err)
			}
			rs[im.name] = r
		}
		o, g, w := rs[implOurs.name], rs[implGofrs.name], rs[implRaw.name]
		share := func(r scaleResult) string { return fmt.Sprintf("%d–%d", r.minShare, r.max) }
		t.row(strconv.Itoa(n), fmtRate(o.total), fmtRate(g.total), fmtRate(w.total),
			fmtRatio(o.total/g.total), fmtRatio(o.total/w.total), share(o), share(g), share(w))
	}
	t.note("flock(2) is not fair: a process that releases and relocks at once often gets the lock again, so the fewest–most columns show how evenly the processes were served.")
	return t, nil
}

// waitersMain (args: path, impl, N) starts N goroutines that lock the file,
// which the parent holds, waits until all of them wait, and answers
// "waiting THREADS0 THREADS1 RSS0 RSS1 INFLOCK" (RSS in KiB).
func waitersMain(args []string) {
	path := args[0]
	im, err := implByName(args[1])
	if err != nil {
		fail(err)
	}
	n, _ := strconv.Atoi(args[2])
	say("ready")
	exitOnEOF()
	// ours: one handle shared by the goroutines; the others need one each.
	var shared locker
	if im.name == implOurs.name {
		if shared, err = im.open(path); err != nil {
			fail(err)
		}
	}
	handles := make([]locker, n)
	for i := range handles {
		if shared != nil {
			handles[i] = shared
		} else if handles[i], err = im.open(path); err != nil {
			fail(err)
		}
	}
	runtime.GC()
	th0, rss0 := threads(), rssKiB()
	for _, l := range handles {
		go parkedWaiter(l)
	}
	// Wait until every goroutine waits. Each gofrs or raw waiter blocks in
	// flock(2) on a thread of its own; ours park in the package's gate and
	// one thread waits in the kernel for all of them.
	kernel := n
	if shared != nil {
		kernel = 1
	}
	err = waitFor("every waiter waits", func() bool {
		return threadsInFlock() >= kernel && parkedGoroutines("main.parkedWaiter") == n
	})
	if err != nil {
		fail(err)
	}
	say("waiting %d %d %d %d %d", th0, threads(), rss0, rssKiB(), threadsInFlock())
	select {}
}

func parkedWaiter(l locker) {
	if err := l.Lock(); err != nil {
		fail(err)
	}
	fail(fmt.Errorf("acquired a lock the parent holds"))
}

func scenario6b(cfg *config, res *results) (*table, error) {
	path := filepath.Join(cfg.dir, "s6b.lock")
	holder, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	defer holder.Close()
	if err := flockRetry(int(holder.Fd()), unix.LOCK_EX); err != nil {
		return nil, err
	}
	t := &table{
		title: "6b. Scale: goroutines of one process waiting for a lock another process holds: extra OS threads and memory",
		header: []string{"waiting goroutines", "ours: extra OS threads (total)", "gofrs", "raw flock(2)",
			"ours: extra RSS", "gofrs", "raw flock(2)", "threads in flock(2): ours / gofrs / raw"},
	}
	for _, n := range cfg.waiterCounts {
		type w struct{ th, total, rss, inFlock int64 }
		got := map[string]w{}
		for _, im := range scaleImpls {
			p, err := spawn("waiters", path, im.name, strconv.Itoa(n))
			if err != nil {
				return nil, err
			}
			rest, err := p.expect("waiting")
			p.close()
			if err != nil {
				return nil, fmt.Errorf("%s, %d waiters: %w", im.name, n, err)
			}
			var th0, th1, rss0, rss1, inFlock int64
			fmt.Sscan(rest, &th0, &th1, &rss0, &rss1, &inFlock)
			got[im.name] = w{th1 - th0, th1, rss1 - rss0, inFlock}
		}
		o, g, r := got[implOurs.name], got[implGofrs.name], got[implRaw.name]
		th := func(x w) string { return fmt.Sprintf("%d (%d)", x.th, x.total) }
		t.row(strconv.Itoa(n), th(o), th(g), th(r),
			fmtKiB(float64(o.rss)), fmtKiB(float64(g.rss)), fmtKiB(float64(r.rss)),
			fmt.Sprintf("%d / %d / %d", o.inFlock, g.inFlock, r.inFlock))
		if n == cfg.waiterCounts[len(cfg.waiterCounts)-1] {
			res.waitersN, res.waitersThreads = n, o.th
		}
	}
	res.has6 = true
	t.note("Each row is a fresh child process; extra = after all goroutines wait minus before they started (Threads and VmRSS from /proc/self/status). ours: one handle shared by the goroutines; gofrs and raw: one handle or descriptor per goroutine, since a shared one gives no exclusion.")
	return t, nil
}

// manyFilesMain (args: dir, impl, N) opens N lock files dir/0..N-1 and
// then locks and unlocks each once; it answers "files OPEN_NS LOCK_NS
// HEAP0 HEAP1 RSS0 RSS1 FDS0 FDS1".
func manyFilesMain(args []string) {
	dir := args[0]
	im, err := implByName(args[1])
	if err != nil {
		fail(err)
	}
	n, _ := strconv.Atoi(args[2])
	say("ready")
	exitOnEOF()
	paths := make([]string, n)
	for i := range paths {
		paths[i] = filepath.Join(dir, strconv.Itoa(i))
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0, rss0, fds0 := ms.HeapAlloc, rssKiB(), openFDs()
	hs := make([]locker, n)
	t0 := time.Now()
	for i, p := range paths {
		if hs[i], err = im.open(p); err != nil {
			fail(err)
		}
	}
	openNs := time.Since(t0).Nanoseconds()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap1, rss1, fds1 := ms.HeapAlloc, rssKiB(), openFDs()
	t0 = time.Now()
	for _, h := range hs {
		if err := h.Lock(); err != nil {
			fail(err)
		}
		if err := h.Unlock(); err != nil {
			fail(err)
		}
	}
	lockNs := time.Since(t0).Nanoseconds()
	say("files %d %d %d %d %d %d %d %d", openNs, lockNs, heap0, heap1, rss0, rss1, fds0, fds1)
	runtime.KeepAlive(hs)
	select {}
}

func scenario6c(cfg *config) (*table, error) {
	dir := filepath.Join(cfg.dir, "many")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Create the files first, in parallel, so that opening measures
	// opening and every implementation finds them in the same state.
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	const par = 4
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < cfg.files; i += par {
				f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(i)), os.O_RDWR|os.O_CREATE, 0o666)
				if err == nil {
					err = f.Close()
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}(w)
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	t := &table{
		title: fmt.Sprintf("6c. Scale: %d distinct lock files, one handle each, in one process", cfg.files),
		header: []string{"implementation", "open, per handle", "Go heap per handle", "RSS per handle",
			"descriptors held per handle", "then Lock+Unlock each, per handle"},
	}
	per := map[string][2]float64{}
	for _, im := range scaleImpls {
		p, err := spawn("manyfiles", dir, im.name, strconv.Itoa(cfg.files))
		if err != nil {
			return nil, err
		}
		rest, err := p.expect("files")
		p.close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", im.name, err)
		}
		var openNs, lockNs, heap0, heap1, rss0, rss1, fds0, fds1 float64
		fmt.Sscan(rest, &openNs, &lockNs, &heap0, &heap1, &rss0, &rss1, &fds0, &fds1)
		n := float64(cfg.files)
		per[im.name] = [2]float64{openNs / n, (heap1 - heap0) / n}
		t.row(im.name, fmtDur(time.Duration(openNs/n)), fmtBytes((heap1-heap0)/n), fmtBytes((rss1-rss0)*1024/n),
			fmt.Sprintf("%.2f", (fds1-fds0)/n), fmtDur(time.Duration(lockNs/n)))
	}
	t.note("ours/gofrs: open time %s, heap per handle %s; ours/raw: open time %s, heap per handle %s. gofrs.New opens nothing (it opens and closes the file on every Lock/Unlock), so its \"open\" is an allocation; ours opens the file once and keeps one descriptor per file (mind RLIMIT_NOFILE); raw is os.OpenFile. Each row is a fresh child process; the files exist beforehand.",
		fmtRatio(per[implOurs.name][0]/per[implGofrs.name][0]), fmtRatio(per[implOurs.name][1]/per[implGofrs.name][1]),
		fmtRatio(per[implOurs.name][0]/per[implRaw.name][0]), fmtRatio(per[implOurs.name][1]/per[implRaw.name][1]))
	return t, nil
}
