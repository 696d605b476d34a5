package flock

// Writer priority across processes (option WriterPriority).
//
// flock(2) grants a new shared lock while a writer of another process
// waits, so overlapping readers in other processes can keep a writer out
// forever. With the option, every OS acquisition of the lock file first
// passes a second lock, the gate: a sidecar file named after the lock file
// with ".gate" appended. A writer takes the gate exclusively and keeps it
// while it waits for and holds the lock; a reader takes the gate
// exclusively only for the moment it takes the lock shared, then releases
// it. New readers thus queue on the gate behind a waiting writer, and the
// writer waits only for the readers already inside.
//
// Only OS acquisitions pass the gate: readers joining a shared lock their
// process already holds do not, so a process whose own readers overlap
// without a break keeps its shared lock (and the writer waits) until they
// pause. Processes that do not use the option (flock(1), other libraries)
// are still excluded by the lock itself, but are not ordered by the gate.

import (
	"os"
	"path/filepath"
)

// gate is an entry's writer-priority gate: the open sidecar file and
// whether this process holds its exclusive lock. Guarded by entry.mu.
type gate struct {
	file *os.File
	fd   fd
	held bool
}

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

// addGate gives e a gate if it has none. The caller holds registry.mu, so
// no two Opens open the gate file at once.
func addGate(e *entry, path string, c *config) error {
	e.mu.Lock()
	has := e.gate != nil
	e.mu.Unlock()
	if has {
		return nil
	}
	f, _, err := openFile(gatePath(path), &config{perm: c.perm})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.gate = &gate{file: f, fd: sysFD(f)}
	e.mu.Unlock()
	return nil
}

// osTry takes the OS lock in mode without waiting, through the gate if e
// has one. On errWouldBlock from the lock itself the gate stays held for
// the wait that follows; settle releases it if none does. e.mu must be
// held.
func (e *entry) osTry(mode lockMode) error {
	g := e.gate
	if g == nil {
		return lockFile(e.fd, mode, false)
	}
	if !g.held {
		if err := lockFile(g.fd, exclusive, false); err != nil {
			return err
		}
		g.held = true
	}
	err := lockFile(e.fd, mode, false)
	if err == nil && mode == shared {
		e.releaseGate()
	}
	return err
}

// osWait waits for the OS lock in c.mode, first for the gate if the wait
// needs it. It runs without e.mu.
func (e *entry) osWait(c *osWait) error {
	if c.needGate {
		if err := waitFile(e.gate.fd, exclusive, c.abandon); err != nil {
			return err
		}
		e.mu.Lock()
		e.gate.held = true
		e.mu.Unlock()
		select {
		case <-c.abandon:
			return errAbandoned // settle releases the gate
		default:
		}
	}
	return waitFile(e.fd, c.mode, c.abandon)
}

// osUnlock releases the OS lock (and the gate with it). e.mu must be held.
func (e *entry) osUnlock() error {
	err := unlockFile(e.fd)
	e.held = unlocked
	e.releaseGate()
	return err
}

// releaseGate releases the gate if this process holds it. e.mu must be
// held.
func (e *entry) releaseGate() {
	if g := e.gate; g != nil && g.held {
		unlockFile(g.fd)
		g.held = false
	}
}

// gateNeeded reports whether the gate, if held, must stay held: by the
// writer holding the lock or by the OS wait in flight. e.mu must be held.
func (e *entry) gateNeeded() bool {
	return e.held == exclusive || e.inflight != nil
}
