package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-flock/flock"
)

// Exit statuses from <sysexits.h>, which util-linux flock uses.
const (
	exitUsage       = 64 // EX_USAGE: bad command line
	exitDataErr     = 65 // EX_DATAERR: the lock call failed
	exitNoInput     = 66 // EX_NOINPUT: the lock file cannot be opened
	exitUnavailable = 69 // EX_UNAVAILABLE: the command cannot be executed
	exitOSErr       = 71 // EX_OSERR: out of resources, bad timer
	exitCantCreat   = 73 // EX_CANTCREAT: read-only or full file system
)

func main() {
	c := &cli{argv0: os.Args[0], name: progName(os.Args[0]), stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(c.main(os.Args))
}

func (c *cli) main(args []string) int {
	cfg, err := c.parse(args)
	if err != nil {
		return statusOf(err)
	}
	if cfg.holders {
		return statusOf(c.listHolders(cfg))
	}
	sigs := catchSignals()
	if len(cfg.args) == 1 {
		err = c.runFD(cfg)
	} else {
		err = c.runFile(cfg, sigs)
	}
	return statusOf(err)
}

func statusOf(err error) int {
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	if err != nil {
		return exitOSErr
	}
	return 0
}

// progName is the name flock calls itself in messages: the base name it
// was invoked by, as util-linux uses.
func progName(argv0 string) string {
	name := filepath.Base(argv0)
	if runtime.GOOS == "windows" && strings.EqualFold(filepath.Ext(name), ".exe") {
		name = name[:len(name)-len(".exe")]
	}
	if name == "" || name == "." || name == string(filepath.Separator) {
		name = "flock"
	}
	return name
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// A waitPlan is how to wait for the lock: -n, -w and -w 0 combined.
type waitPlan struct {
	nonblock bool
	limit    time.Duration // 0: no limit
}

// plan works out how to wait, failing as util-linux does when its timer
// cannot be set (a negative or infinite -w): -w 0, or anything shorter
// than a microsecond, means -n; -n stands whatever -w says.
func (c *cli) plan(cfg *config) (waitPlan, error) {
	p := waitPlan{nonblock: cfg.nonblock}
	if t := cfg.timeout; t != nil {
		switch {
		case t.zero():
			p.nonblock = true
		case !t.valid:
			return p, c.fail(exitOSErr, "cannot set up timer: %s", errText(errInvalidTimer))
		default:
			p.limit = t.duration()
		}
	}
	return p, nil
}

// conflict reports that -n or -w gave up.
func (c *cli) conflict(cfg *config, p waitPlan) error {
	if cfg.verbose {
		if p.nonblock {
			c.warn("failed to get lock")
		} else {
			c.warn("timeout while waiting to get lock")
		}
	}
	return exitStatus(cfg.conflict)
}

func (c *cli) reportAcquired(cfg *config, start time.Time) {
	if cfg.verbose {
		fmt.Fprintf(c.stdout, "%s: getting lock took %.6f seconds\n", c.name, time.Since(start).Seconds())
	}
}

// waitNotice prints, if standard error is a terminal and the wait lasts
// more than a second, that flock is waiting for what, and for whom if who
// (not nil) can tell then. It returns a function that cancels the notice.
func (c *cli) waitNotice(what string, who func() string) (stop func()) {
	fi, err := os.Stderr.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	t := time.AfterFunc(time.Second, func() {
		var held string
		if who != nil {
			held = who()
		}
		c.warn("waiting for lock on %s%s...", what, held)
	})
	return func() { t.Stop() }
}

// runFile is the FILE|DIRECTORY form: lock, run the command, exit with its
// status.
func (c *cli) runFile(cfg *config, sigs *signals) error {
	path, argv := cfg.args[0], cfg.args[1:]
	if argv[0] == "-c" || argv[0] == "--command" {
		if len(argv) != 2 {
			return c.fail(exitUsage, "-c requires exactly one command argument")
		}
		argv = shellCommand(argv[1])
	}

	first := firstFreeFD() // the number the lock file's descriptor gets
	m, err := flock.Open(path)
	if err != nil {
		if path == "" {
			err = errNoSuchFile // what open(2) says, rather than the package's "empty path"
		}
		return c.fail(openStatus(err), "cannot open lock file %s: %s", path, errText(err))
	}
	p, err := c.plan(cfg)
	if err != nil {
		return err
	}

	start := time.Now()
	// A descriptor flock has just opened holds no lock for -u to release.
	if cfg.mode != modeUnlock {
		if err := c.lock(m, cfg, p, sigs); err != nil {
			return err
		}
	}
	c.reportAcquired(cfg, start)

	if cfg.verbose {
		fmt.Fprintf(c.stdout, "%s: executing %s\n", c.name, argv[0])
	}
	// The lock is never released explicitly: it goes when the last
	// descriptor of the open file closes, that is when flock exits or, if
	// the command inherited it, when the command and whatever it started
	// that kept it have exited too, exactly as with util-linux.
	var inherit *os.File
	if !cfg.close {
		inherit = m.File()
	}
	sigs.commandStarts()
	return c.execute(argv, inherit, first, cfg.noFork)
}

// lock takes the lock on m in cfg.mode, waiting as p says.
func (c *cli) lock(m *flock.RWMutex, cfg *config, p waitPlan, sigs *signals) error {
	// First without waiting: a free lock is taken however short the -w
	// limit, as util-linux takes it (its timer only interrupts a wait).
	ok, err := tryLock(m, cfg.mode)
	if err == nil && !ok && !p.nonblock {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if p.limit > 0 {
			ctx, cancel = context.WithTimeout(ctx, p.limit)
		}
		stop := c.waitNotice(m.Path(), func() string { return heldBy(m) })
		err = sigs.wait(ctx, func(ctx context.Context) error {
			if cfg.mode == modeShared {
				return m.RLockContext(ctx)
			}
			return m.LockContext(ctx)
		})
		stop()
		cancel()
		ok = err == nil
		if errors.Is(err, context.DeadlineExceeded) {
			err = nil
		}
	}
	if err != nil {
		return c.fail(exitDataErr, "%s: %s", m.Path(), errText(err))
	}
	if !ok {
		return c.conflict(cfg, p)
	}
	return nil
}

func tryLock(m *flock.RWMutex, mode lockMode) (bool, error) {
	if mode == modeShared {
		return m.TryRLock()
	}
	return m.TryLock()
}

// runFD is the FD form: lock (or unlock) an inherited descriptor and exit.
func (c *cli) runFD(cfg *config) error {
	arg := cfg.args[0]
	n, err := parseInt32(arg)
	if err != nil {
		return c.fail(exitUsage, "bad file descriptor: '%s'%s", arg, rangeSuffix(err))
	}
	if !fdLockSupported {
		return c.fail(exitUnavailable, "%d: locking a file descriptor is not supported on %s", n, runtime.GOOS)
	}
	p, err := c.plan(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	stop := func() {}
	if !p.nonblock && cfg.mode != modeUnlock {
		stop = c.waitNotice(fmt.Sprintf("file descriptor %d", n), nil)
	}
	ok, err := lockFD(int(n), cfg.mode, p.nonblock, p.limit)
	stop()
	if err != nil {
		return c.fail(exitDataErr, "%d: %s", n, errText(err))
	}
	if !ok {
		return c.conflict(cfg, p)
	}
	c.reportAcquired(cfg, start)
	return nil
}
