package flock

// Who holds a lock: the public API, and the /proc/locks parser that the
// Linux backend uses (here, free of build tags, so that its table tests run
// on every platform).

import (
	"os"
	"strconv"
	"strings"
)

// A Holder is a process that holds the lock on a file, as the kernel
// reports it.
type Holder struct {
	// PID is the holder's process id, as the /proc of the reading process
	// shows it (Linux) or as fcntl(F_GETLK) returns it. It is -1 where the
	// kernel does not record one (Linux OFD locks, "OFDLCK") and 0 where
	// the holder's pid is not visible in the reader's pid namespace.
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
//   - macOS, iOS, the BSDs, illumos (flock(2) backend), Windows, js, wasip1
//     and plan9: an error for which errors.Is(err, errors.ErrUnsupported)
//     holds.
//
// Caveats. A flock(2) lock belongs to an open file description, and the
// pid the kernel records is the process that took the lock: a child that
// inherited the descriptor (fork, or exec with the descriptor passed on)
// keeps the lock after that process exits, and is then the real holder
// while the reported pid is the one that took it (or a reused one). Pids
// are as the reading process's /proc shows them: a holder in another pid
// namespace is reported with its pid in the namespace of that /proc, or 0
// if it has none there. Linux reads /proc/locks in page-sized read(2)
// calls: while other processes lock and unlock, a line can be seen twice
// (holders are deduplicated) or, rarely, missed.
//
// After Close, Holders returns an error wrapping os.ErrClosed. Errors are
// *fs.PathError naming m's path.
func (m *RWMutex) Holders() ([]Holder, error) {
	m.mustBeOpened()
	e := m.pinOpen()
	if e == nil {
		return nil, m.pathError("holders", os.ErrClosed)
	}
	defer registry.release(e)
	e.mu.Lock()
	own := e.held
	e.mu.Unlock()
	hs, err := sysHolders(e.fd, e.id, own)
	if err != nil {
		return nil, m.pathError("holders", err)
	}
	return hs, nil
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
