package flock

// Writer priority across processes (option WriterPriority).
//
// flock(2) grants a new shared lock while a writer of another process
// waits, so overlapping readers in other processes can keep a writer out
// forever. With the option, every OS acquisition of the lock file first
// passes a second lock, the gate: a sidecar file named after the lock file
// with ".gate" appended. A writer that finds the lock taken takes the gate
// exclusively and keeps it while it waits for and holds the lock (one that
// finds it free just takes it); a reader takes the gate
// exclusively only for the moment it takes the lock shared, then releases
// it. New readers thus queue on the gate behind a waiting writer, and the
// writer waits only for the readers already inside.
//
// The gate file is locked through its own registry entry, like any lock
// file: one descriptor and one OS lock per gate file per process, whatever
// number of lock-file entries share it (a lock file removed and re-created
// with RemoveOnUnlock has one entry per file, and one gate). So the gate's
// descriptor is never closed while the process holds the gate through it
// (on fcntl platforms that would drop it), and the process's own users of
// the gate are ordered by the gate entry's FIFO.
//
// Only OS acquisitions pass the gate: readers joining a shared lock their
// process already holds do not, so a process whose own readers overlap
// without a break keeps its shared lock (and the writer waits) until they
// pause. Processes that do not use the option (flock(1), other libraries)
// are still excluded by the lock itself, but are not ordered by the gate.

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
)

// gatePath names the gate of the lock file at path, resolving symbolic
// links so that every process reaching the file through a link uses one
// gate. (Processes reaching it through different hard links do not share
// the gate.)
func gatePath(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	return path + ".gate"
}

// gateConfig opens gate files: never through a symbolic link (the gate is
// the package's own file), never creating them (createSidecar does).
var gateConfig = config{noFollow: true, noCreate: true}

// addGate gives e a gate if it has none. The gate file is created, if it
// does not exist, with the lock file's permission bits and, where the
// process may, its owner and group: whoever may not open the lock file may
// not open the gate either, and so cannot block the lock's users through
// it. The descriptor that creates it is the one the gate entry keeps (on
// fcntl platforms closing another would drop the process's gate lock).
//
// A gate is locked through the registry like any lock file, so a gate
// file that is (a hard link to) a lock file with a gate of its own, or to
// the lock file itself, would have a lock wait for itself: such a gate is
// refused, and so is a gate for a lock file that is another's gate.
func (r *registryState) addGate(e *entry, path string) error {
	e.mu.Lock()
	has := e.gate != nil
	e.mu.Unlock()
	if has {
		return nil
	}
	gp := gatePath(path)
	like, serr := e.file.Stat()
	if serr != nil {
		return serr
	}
	var g *entry
	for tries := 0; ; tries++ {
		f, id, err := createSidecar(gp, like, sidecarPerm(like))
		if err != nil {
			return err
		}
		if f != nil {
			g = r.register(f, id)
			break
		}
		g, err = r.find(gp, &gateConfig)
		if err == nil {
			break
		}
		// Removed between the attempt to create it and its opening:
		// create it again, a few times.
		if !errors.Is(err, fs.ErrNotExist) || tries == 3 {
			return err
		}
	}
	r.mu.Lock()
	e.mu.Lock()
	var err error
	switch {
	case e.gate != nil:
		// Another Open of the same file gave it a gate first.
	case g == e || g.gate != nil:
		err = &fs.PathError{Op: "open", Path: gp, Err: errGateLocked}
	case e.gateOf > 0:
		err = &fs.PathError{Op: "open", Path: path, Err: errLockIsGate}
	default:
		e.gate, g = g, nil
		e.gate.gateOf++
	}
	e.mu.Unlock()
	r.mu.Unlock()
	if g != nil {
		r.release(g)
	}
	return err
}

var (
	errGateLocked = errors.New("writer-priority gate is the lock file itself or a lock file with a gate of its own (a hard link?)")
	errLockIsGate = errors.New("lock file is another lock file's writer-priority gate")
)

// takeGate takes the gate g for an OS acquisition in mode, waiting if ctx
// is not nil. The gate is taken exclusively; but a backend that cannot take
// an exclusive lock through a gate it could only open for reading (fcntl)
// lets readers through with a shared gate lock, which still waits behind a
// writer holding the gate. It returns the mode taken, errWouldBlock if the
// gate is held elsewhere and ctx is nil, errAbandoned if ctx ended, and
// other errors naming the gate file.
func takeGate(g *entry, ctx context.Context, mode lockMode) (lockMode, error) {
	gm := exclusive
	ok, err := g.lock(ctx, gm, ctx != nil)
	if err != nil && mode == shared && errors.Is(err, errReadOnly) {
		gm = shared
		ok, err = g.lock(ctx, gm, ctx != nil)
	}
	switch {
	case err != nil && ctx != nil && ctx.Err() != nil:
		return unlocked, errAbandoned
	case err != nil:
		return unlocked, &fs.PathError{Op: "lock", Path: g.file.Name(), Err: err}
	case !ok:
		return unlocked, errWouldBlock
	}
	return gm, nil
}

// osTryGated takes the OS lock in mode without waiting, through e's gate
// (without a gate the OS lock is tried on its own: lockFile). A writer
// first tries without the gate: if the lock is free it
// needs no priority, and holding it without the gate orders nobody
// differently (a writer of another process then waits holding the gate, as
// it would behind any holder); so an uncontended Lock costs what it does
// without the option. Otherwise a writer keeps the gate with the lock; a
// reader, and anyone who failed, lets it go at once (a wait takes it again
// for itself). e.mu must be held.
func (e *entry) osTryGated(mode lockMode) error {
	if mode == exclusive {
		if err := lockFile(e.fd, mode); err != errWouldBlock {
			return err
		}
	}
	gm, err := takeGate(e.gate, nil, mode)
	if err != nil {
		return err
	}
	err = lockFile(e.fd, mode)
	if err == nil && mode == exclusive {
		e.gateHeld = gm
	} else {
		e.gate.unlock(gm)
	}
	return err
}

// osUnlock releases the OS lock, and the gate with it. e.mu must be held.
func (e *entry) osUnlock() error {
	err := unlockFile(e.fd)
	e.held = unlocked
	e.handoffs = 0
	if e.gateHeld != unlocked {
		e.gate.unlock(e.gateHeld)
		e.gateHeld = unlocked
	}
	return err
}
