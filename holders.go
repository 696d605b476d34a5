package flock

// Who holds a lock: the public API, and the /proc/locks parser that the
// Linux backend uses (here, free of build tags, so that its table tests run
// on every platform).

import (
	"context"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// A Holder is a process that holds the lock on a file, as the kernel
// reports it.
type Holder struct {
	// PID is the holder's process id, as the /proc of the reading process
	// shows it (Linux) or as fcntl(F_GETLK) returns it. It is -1 where the
	// kernel does not record one (Linux OFD locks, "OFDLCK"; flock(2)
	// locks on macOS and FreeBSD); any other value the kernel gives, such
	// as 0, is passed on as it is.
	PID int
	// Exclusive is whether the lock is held for writing.
	Exclusive bool
	// Command is the holder's command name (Linux: /proc/PID/comm, at most
	// 15 bytes), or empty if it cannot be read (the process exited, or is
	// not visible) or the platform does not offer it.
	Command string
	// Kind is the kind of lock as the kernel reports it: "FLOCK" for
	// flock(2), "POSIX" for fcntl(2) record locks and lockf(3), "OFDLCK"
	// for Linux open-file-description locks.
	Kind string
}

// Holders returns the processes holding the lock on m's file, in this
// process (its own pid) and in others, as the kernel reports them; none if
// the lock is free. It asks the kernel each time, costs system calls and
// allocations, and is meant for diagnostics (who keeps a lock), never for
// deciding whether to lock: the answer may be stale by the time it returns.
//
// What it can report depends on the platform:
//
//   - Linux and Android (whichever backend): every holder /proc/locks
//     lists for the file's device and inode, all holders of a shared lock
//     included, of any kind (FLOCK, POSIX, OFDLCK); blocked requests are
//     not holders. Each holder is reported once per kind and mode.
//   - AIX, Solaris, and other Unix systems built with the flock_fcntl tag:
//     fcntl(F_GETLK) with a whole-file write-lock probe, which returns one
//     conflicting lock only: at most one holder in another process (of a
//     shared lock held by several, any one of them), with Kind "POSIX" and
//     no Command. F_GETLK does not report the caller's own locks, so this
//     process's lock, if it holds one, is reported from the package's own
//     state.
//   - macOS, iOS and FreeBSD (flock(2) backend): fcntl(F_GETLK) with a
//     whole-file write-lock probe. Their kernels keep flock(2) and fcntl(2)
//     locks in one list per file, and F_GETLK reports a flock(2) lock as a
//     conflict with l_pid -1 (its owner is an open file, not a process):
//     so Holders reports one holder at most, with PID -1 and Kind "FLOCK"
//     for a flock(2) lock (flock(1), this package in another process), or
//     with the pid and Kind "POSIX" for a record lock; no Command. This is
//     read from the kernel sources (XNU bsd/kern/kern_lockf.c, lf_advlock
//     and lf_getlock; FreeBSD sys/kern/kern_lockf.c, lf_advlockasync and
//     lf_getlock) rather than from their documentation, and it is not
//     tested on those systems by this package's tests. It holds for file
//     systems that use the kernel's lock list (a file system with locking
//     of its own, such as a network one, may answer otherwise). F_GETLK
//     would report this process's own flock(2) lock the same way, so while
//     this process holds the lock Holders reports that lock only, with
//     this process's pid, and other readers beside it are not reported.
//   - NetBSD, OpenBSD, DragonFly BSD, illumos (flock(2) backend), Windows,
//     js, wasip1 and plan9: an error for which errors.Is(err,
//     errors.ErrUnsupported) holds. (Whether F_GETLK sees flock(2) locks on
//     those Unix systems is not established here; on Windows the Restart
//     Manager lists processes that have a file open, not those that lock
//     it.)
//
// Caveats. A flock(2) lock belongs to an open file description, and the
// pid the kernel records is the process that took the lock: a child that
// inherited the descriptor (fork, or exec with the descriptor passed on)
// keeps the lock after that process exits, and is then the real holder
// while the reported pid is the one that took it (or a reused one), and
// Command is empty once that process has exited.
//
// Pid namespaces (Linux). Pids are those of the pid namespace that the
// process's /proc was mounted for, which is not always the process's own:
// a holder in a child pid namespace (a container, "unshare --pid --fork")
// is reported with its pid as seen from outside it, and a process in a
// child pid namespace that shares its parent's /proc sees the parent's
// pids. A process whose /proc belongs to its own child pid namespace
// ("unshare --pid --fork --mount-proc", a container's /proc) does not see
// holders outside that namespace at all: the kernel leaves their locks out
// of /proc/locks, so Holders reports nobody, or only the holders inside,
// while the lock is held from outside. Mount namespaces change nothing:
// the file is matched by device and inode. (Measured on Linux 6.18 by
// this package's tests, which run where they may create namespaces.)
//
// Linux reads /proc/locks in page-sized read(2) calls: while other
// processes lock and unlock, a line can be seen twice (holders are
// deduplicated) or, rarely, missed.
//
// After Close, Holders returns an error wrapping os.ErrClosed. Errors are
// *fs.PathError naming m's path.
func (m *RWMutex) Holders() ([]Holder, error) {
	return m.holders(math.MaxInt)
}

// holders is Holders, with the command names of the first commands
// holders only.
func (m *RWMutex) holders(commands int) ([]Holder, error) {
	m.mustBeOpened()
	e := m.pinOpen()
	if e == nil {
		return nil, m.pathError("holders", os.ErrClosed)
	}
	defer registry.release(e)
	hs, err := holdersOf(e, commands)
	if err != nil {
		return nil, m.pathError("holders", err)
	}
	return hs, nil
}

// holdersOf is holders for the entry e, which the caller keeps pinned.
func holdersOf(e *entry, commands int) ([]Holder, error) {
	e.mu.Lock()
	own := e.held
	e.mu.Unlock()
	hs, err := sysHolders(e.fd, e.id, own)
	if err != nil {
		return nil, err
	}
	for i := range hs {
		if i < commands {
			hs[i].Command = holderCommand(hs[i].PID)
		}
	}
	return hs, nil
}

// ownHolder describes the OS lock this process holds in mode (none if
// unlocked), for backends whose query does not see, or cannot tell apart,
// the process's own locks.
func ownHolder(mode lockMode, kind string) []Holder {
	if mode == unlocked {
		return nil
	}
	return []Holder{{PID: os.Getpid(), Exclusive: mode == exclusive, Kind: kind}}
}

// maxNamed is how many holders a lock error names; it bounds the command
// names read on that path too.
const maxNamed = 3

// holderLookups counts the holder lookups made for lock errors (for the
// tests: the paths that succeed must make none), and lookupsRunning the
// ones still running (the tests wait for them before they check that
// nothing is left).
var (
	holderLookups  atomic.Int64
	lookupsRunning sync.WaitGroup
)

// withHolders returns err, the error of a lock call through m, made to name
// the lock's holders in its text if err is ctx's own error (the call gave
// up because ctx ended) and the platform can say who holds the lock. It is
// called on that failure path only, and does not wait for the lookup: on
// Linux a read of /proc/locks that follows none for a while takes the
// kernel 10 ms and more (11-14 ms measured on Linux 6.18, where reads in a
// row take well under 0.1 ms), which a cancelled call must not wait for. The lookup starts at once, in a
// goroutine that keeps the entry open meanwhile, and the error's Error
// method waits for it. Whatever the lookup finds, the result wraps err, so
// errors.Is(result, ctx.Err()) holds as it did for err; if the lookup
// fails or finds nobody, the text is err's.
func (m *RWMutex) withHolders(ctx context.Context, err error) error {
	if err == nil || ctx == nil || err != ctx.Err() {
		return err
	}
	e := m.pinOpen()
	if e == nil {
		return err
	}
	// One lookup per file at a time: calls that give up while one runs
	// (a loop of short timeouts) share it, so they cannot pile up threads
	// reading /proc/locks.
	e.mu.Lock()
	l := e.lookup
	start := l == nil
	if start {
		l = &holdersLookup{found: make(chan struct{})}
		e.lookup = l
	}
	e.mu.Unlock()
	if !start {
		registry.release(e) // the handle's reference keeps e
		return &heldError{err: err, lookup: l}
	}
	holderLookups.Add(1)
	lookupsRunning.Add(1)
	go func() {
		defer lookupsRunning.Done()
		defer registry.release(e)
		l.holders, _ = lookupHolders(e, maxNamed)
		e.mu.Lock()
		e.lookup = nil
		e.mu.Unlock()
		close(l.found)
	}()
	return &heldError{err: err, lookup: l}
}

// lookupHolders is holdersOf; a variable so that tests can hold a lookup.
var lookupHolders = holdersOf

// A holdersLookup is a lookup of the holders of an entry's lock for lock
// errors; holders is set before found is closed.
type holdersLookup struct {
	found   chan struct{}
	holders []Holder
}

// A heldError is a lock call's error with the holders of the lock that the
// call gave up waiting for, looked up from that moment on.
type heldError struct {
	err    error
	lookup *holdersLookup
}

func (e *heldError) Unwrap() error { return e.err }

// Error reads, for example,
//
//	context deadline exceeded (held by pid 1234 "flock", exclusive)
//	context canceled (held by pid 10 "a", shared; pid 11 "b", shared; and 2 more)
func (e *heldError) Error() string {
	<-e.lookup.found
	hs := e.lookup.holders
	if len(hs) == 0 {
		return e.err.Error()
	}
	var b strings.Builder
	b.WriteString(e.err.Error())
	b.WriteString(" (held by ")
	self := os.Getpid()
	for i, h := range hs {
		if i == maxNamed {
			b.WriteString("; and " + strconv.Itoa(len(hs)-maxNamed) + " more")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if h.PID > 0 {
			b.WriteString("pid " + strconv.Itoa(h.PID))
		} else {
			b.WriteString("a process of unknown pid")
		}
		if h.Command != "" {
			b.WriteString(" " + strconv.Quote(h.Command))
		}
		if h.PID == self {
			b.WriteString(" (this process)")
		}
		if h.Exclusive {
			b.WriteString(", exclusive")
		} else {
			b.WriteString(", shared")
		}
	}
	b.WriteString(")")
	return b.String()
}

// pinOpen returns the handle's current entry with a reference taken, or nil
// if the handle is closed. Close sets the closed bit before it releases the
// handle's reference under registry.mu, so an entry found open under
// registry.mu is alive, and the reference keeps it so.
func (m *RWMutex) pinOpen() *entry {
	if m.rm != nil {
		m.rm.mu.Lock()
		defer m.rm.mu.Unlock()
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if m.state.Load()&closedBit != 0 {
		return nil
	}
	e := m.e
	if m.rm != nil {
		e = m.rm.cur
	}
	e.refs++
	return e
}

// parseProcLocks returns the holders that the /proc/locks text data lists
// for the file with device major:minor and inode ino, once per pid, kind
// and mode, in the order listed, without Command. Lines of blocked
// requests ("->") and lines it cannot parse are skipped. A line reads
//
//	1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF
//	1: -> FLOCK  ADVISORY  WRITE 4321 fd:01:5678 0 EOF
//
// with major and minor in hex and the inode in decimal; leases (LEASE,
// DELEG) and locks being broken are listed too, and are skipped unless
// their mode is READ or WRITE.
func parseProcLocks(data []byte, major, minor uint32, ino uint64) []Holder {
	type key struct {
		pid  int
		kind string
		excl bool
	}
	var hs []Holder
	seen := make(map[key]bool)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasSuffix(f[0], ":") || f[1] == "->" {
			continue
		}
		kind, mode, pid, dev := f[1], f[3], f[4], f[5]
		var excl bool
		switch mode {
		case "READ":
		case "WRITE":
			excl = true
		default:
			continue
		}
		if !deviceIs(dev, major, minor, ino) {
			continue
		}
		p, err := strconv.Atoi(pid)
		if err != nil {
			continue
		}
		k := key{p, kind, excl}
		if seen[k] {
			continue
		}
		seen[k] = true
		hs = append(hs, Holder{PID: p, Exclusive: excl, Kind: kind})
	}
	return hs
}

// deviceIs reports whether the /proc/locks field s, "MAJOR:MINOR:INODE"
// (major and minor in hex), names the file major:minor, ino.
func deviceIs(s string, major, minor uint32, ino uint64) bool {
	ma, rest, ok1 := strings.Cut(s, ":")
	mi, in, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return false
	}
	a, err1 := strconv.ParseUint(ma, 16, 32)
	b, err2 := strconv.ParseUint(mi, 16, 32)
	i, err3 := strconv.ParseUint(in, 10, 64)
	return err1 == nil && err2 == nil && err3 == nil && uint32(a) == major && uint32(b) == minor && i == ino
}
