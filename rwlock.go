package flock

import (
	"container/list"
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
)

// lockMode is what a lock is held for, in-process or by the OS.
type lockMode uint8

const (
	unlocked lockMode = iota
	shared
	exclusive
)

// The OS backend (sys_*.go) provides the types fd (what the entry locks
// through) and fileID (a file's identity), and:
//
//	statFile(path, noFollow) (fileID, error)
//	openFile(path, *config) (*os.File, fileID, error)
//	sysFD(*os.File) fd
//	lockFile(fd, mode, wait) error     // errWouldBlock if !wait and held elsewhere
//	separateWait(fd) bool              // whether waitFile waits on an owner of its own
//	waitFile(fd, mode, abandon) error  // blocking; errAbandoned if abandoned (where it can be)
//	waitGranted(fd)                    // the lock waitFile got is now the one held
//	unlockFile(fd) error
//	closeFD(fd) error                  // close what sysFD opened beside the file
//
// All but waitFile are called with the entry's mutex held.

// errWouldBlock is the backend's report that another process holds the lock.
var errWouldBlock = errors.New("lock held elsewhere")

// registry maps file identity to the process's one entry for that file, so
// that every handle on a file, whatever path it was opened by, shares one
// open file, one in-process gate and one OS lock.
var registry = registryState{entries: make(map[fileID]*entry)}

type registryState struct {
	mu      sync.Mutex
	entries map[fileID]*entry
}

// open returns the entry for the file at path, with a reference taken for
// the caller's handle.
//
// The identity is looked up by stat before anything is opened, so that no
// second descriptor of a file the process already holds is opened and
// closed: on fcntl platforms closing any descriptor of a file drops the
// process's lock on it.
func (r *registryState) open(path string, c *config) (*entry, error) {
	e, err := r.find(path, c)
	if err != nil {
		return nil, err
	}
	if c.writerPriority {
		r.mu.Lock()
		err := addGate(e, path, c)
		r.mu.Unlock()
		if err != nil {
			r.release(e)
			return nil, err
		}
	}
	return e, nil
}

// find returns the entry of the file at path, opening the file if no entry
// has it, with a reference taken.
func (r *registryState) find(path string, c *config) (*entry, error) {
	id, err := statFile(path, c.noFollow)
	switch {
	case err == nil:
		r.mu.Lock()
		if e := r.entries[id]; e != nil {
			e.refs++
			r.mu.Unlock()
			return e, nil
		}
		r.mu.Unlock()
	case errors.Is(err, fs.ErrNotExist) && !c.noCreate:
		// Create it below.
	default:
		return nil, err
	}

	f, id, err := openFile(path, c)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[id]
	if e != nil {
		// Another Open of the same file won the race. Closing f now could
		// drop that entry's fcntl lock; keep it until the entry goes.
		e.spares = append(e.spares, f)
	} else {
		e = &entry{id: id, file: f, fd: sysFD(f)}
		e.readers.Store(-readerBias)
		r.entries[id] = e
	}
	e.refs++
	return e, nil
}

// release drops a handle's reference to e. The last reference closes the
// file, unless an OS wait is still in the kernel on it: then the waiting
// goroutine drops the entry when the wait ends (see entry.wait), and the
// entry stays registered meanwhile so that a new Open of the same file finds
// it instead of opening a second descriptor.
func (r *registryState) release(e *entry) error {
	r.mu.Lock()
	e.refs--
	r.mu.Unlock()
	return r.drop(e)
}

// drop removes e and closes its files if no handle refers to it and no OS
// wait is in flight on it.
func (r *registryState) drop(e *entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refs > 0 || e.inflight != nil || e.dead {
		return nil
	}
	e.dead = true
	if r.entries[e.id] == e { // not if forgotten (see RemoveOnUnlock)
		delete(r.entries, e.id)
	}
	var errs []error
	if e.held != unlocked {
		// The last RUnlock of a handle that is being closed may not have
		// settled yet. Unlock explicitly rather than by closing: Windows
		// releases a closed handle's locks only eventually.
		errs = append(errs, e.osUnlock())
	}
	errs = append(errs, closeFD(e.fd), e.file.Close())
	if e.gate != nil {
		e.releaseGate()
		errs = append(errs, closeFD(e.gate.fd), e.gate.file.Close())
	}
	for _, f := range e.spares {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// readerBias is subtracted from entry.readers while the reader fast path is
// closed. It is larger than any number of goroutines.
const readerBias = 1 << 40

// An entry is the process's state for one lock file: the open file, the
// in-process reader/writer gate and the OS lock.
//
// The gate admits goroutines in FIFO order: a writer when nobody is
// admitted, readers while no writer is admitted or queued ahead of them.
// Admitted goroutines then need the OS lock in their mode; the process holds
// at most one OS lock on the file (held), shared by all admitted readers or
// owned by the one admitted writer, and never converts it from one mode to
// the other in place.
type entry struct {
	id   fileID
	file *os.File
	fd   fd

	// readers is the number of admitted readers, minus readerBias while the
	// fast path is closed. The fast path is open exactly when the OS shared
	// lock is held and nobody is queued (see setFast); then readers > 0 and a
	// reader may join (compare-and-swap) or leave unless it is the last
	// (add), with no system call. Every other change goes through mu.
	readers atomic.Int64

	mu       sync.Mutex
	refs     int           // handles referring to this entry; guarded by registry.mu
	fastOpen bool          // whether readers is unbiased
	writer   bool          // a writer is admitted
	queue    list.List     // of *waiter, in arrival order
	held     lockMode      // the OS lock this process holds on the file
	inflight *osWait       // the OS wait in the kernel, if any; held is then unlocked, or of the other mode if the wait is separate
	wake     chan struct{} // closed (and cleared) when held or inflight changes; made by a waiter
	gate     *gate         // the writer-priority gate, if a handle asked for it
	spares   []*os.File    // descriptors of the same file from racing Opens
	dead     bool          // dropped from the registry; file closed
}

type waiter struct {
	mode  lockMode
	ready chan struct{} // closed when the waiter is admitted
}

// admittedReaders returns the number of admitted readers. e.mu must be held.
func (e *entry) admittedReaders() int64 {
	n := e.readers.Load()
	if !e.fastOpen {
		n += readerBias
	}
	return n
}

// want is the OS lock that the admitted goroutines need. e.mu must be held.
func (e *entry) want() lockMode {
	switch {
	case e.writer:
		return exclusive
	case e.admittedReaders() > 0:
		return shared
	}
	return unlocked
}

// admissible reports whether a goroutine asking for mode may be admitted
// now, ahead of nobody. e.mu must be held.
func (e *entry) admissible(mode lockMode) bool {
	return e.queue.Len() == 0 && e.compatible(mode)
}

// compatible reports whether mode may join the admitted goroutines: readers
// while no writer is admitted, a writer when nobody is. e.mu must be held.
func (e *entry) compatible(mode lockMode) bool {
	if e.writer {
		return false
	}
	return mode == shared || e.admittedReaders() == 0
}

func (e *entry) admit(mode lockMode) {
	if mode == shared {
		e.readers.Add(1)
	} else {
		e.writer = true
	}
}

// setFast opens or closes the reader fast path to match the state. e.mu
// must be held.
func (e *entry) setFast() {
	open := e.held == shared && e.queue.Len() == 0
	if open == e.fastOpen {
		return
	}
	// Joining readers only touch readers while it is positive, which it is
	// only while open; closing subtracts atomically, so a concurrent join
	// either counted before or sees a negative value and comes to mu.
	if open {
		e.readers.Add(readerBias)
	} else {
		e.readers.Add(-readerBias)
	}
	e.fastOpen = open
}

// settle restores the invariants after the set of admitted or queued
// goroutines changed: an OS lock nobody needs is released at once, waiters
// that can now be admitted are, and the fast path follows. e.mu must be held.
func (e *entry) settle() error {
	var err error
	if e.held != unlocked && e.held != e.want() {
		err = e.osUnlock()
	}
	if !e.gateNeeded() {
		e.releaseGate()
	}
	for el := e.queue.Front(); el != nil; el = e.queue.Front() {
		w := el.Value.(*waiter)
		if !e.compatible(w.mode) {
			break
		}
		e.admit(w.mode)
		e.queue.Remove(el)
		close(w.ready)
	}
	e.setFast()
	e.abandonUnwanted()
	return err
}

// leave undoes the admission of a goroutine in mode. e.mu must be held.
func (e *entry) leave(mode lockMode) error {
	if mode == shared {
		e.readers.Add(-1)
	} else {
		e.writer = false
	}
	return e.settle()
}

// lock acquires e in mode: first admission through the gate, then the OS
// lock. If wait is false it gives up (false, nil) wherever it would wait. A
// nil ctx never ends.
func (e *entry) lock(ctx context.Context, mode lockMode, wait bool) (bool, error) {
	var done <-chan struct{}
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		done = ctx.Done()
	}
	if mode == shared {
		for n := e.readers.Load(); n > 0; n = e.readers.Load() {
			if e.readers.CompareAndSwap(n, n+1) {
				return true, nil
			}
		}
	}

	e.mu.Lock()
	switch {
	case e.admissible(mode):
		e.admit(mode)
	case !wait:
		e.mu.Unlock()
		return false, nil
	default:
		w := &waiter{mode: mode, ready: make(chan struct{})}
		el := e.queue.PushBack(w)
		e.setFast()
		e.mu.Unlock()
		select {
		case <-w.ready:
			e.mu.Lock()
		case <-done:
			e.mu.Lock()
			select {
			case <-w.ready:
				// Admitted while we gave up: leave like a holder.
				e.leave(mode)
			default:
				e.queue.Remove(el)
				e.settle() // readers queued behind a writer may go now
			}
			e.mu.Unlock()
			return false, ctx.Err()
		}
	}
	return e.lockOS(ctx, done, mode, wait)
}

// lockOS gets the OS lock for a goroutine the gate admitted in mode. It is
// called with e.mu held and returns with it released; on failure the
// goroutine has left the gate.
func (e *entry) lockOS(ctx context.Context, done <-chan struct{}, mode lockMode, wait bool) (bool, error) {
	for {
		if e.held == mode {
			e.setFast()
			e.mu.Unlock()
			return true, nil
		}
		if e.held != unlocked {
			// A writer admitted between the last reader's count reaching
			// zero and that reader's settle (see unlock): nobody needs the
			// shared lock, and it must not be converted in place.
			e.osUnlock()
			e.setFast()
		}
		c := e.inflight
		if c == nil || c.mode != mode && c.separate {
			// No wait in flight, or one of the other mode, which nobody
			// admitted wants, on an owner of its own: try beside it.
			err := e.osTry(mode)
			if err == nil {
				e.held = mode
				e.notify() // admitted goroutines waiting for the wait beside it
				continue
			}
			if err != errWouldBlock || !wait {
				if err == errWouldBlock {
					err = nil
				}
				e.leave(mode)
				e.mu.Unlock()
				return false, err
			}
			if c == nil {
				c = e.startWait(mode)
			}
		} else if !wait {
			e.leave(mode)
			e.mu.Unlock()
			return false, nil
		}
		// Wait for any change, not only for c to end: another goroutine
		// admitted with us may take the lock beside c (see above), and c
		// may then wait for us to let go.
		wake := e.changed()
		e.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			// If the wait was granted meanwhile, ctx still wins, as it
			// does in the gate: leaving releases what nobody else needs.
			e.mu.Lock()
			e.leave(mode)
			e.mu.Unlock()
			return false, ctx.Err()
		}
		e.mu.Lock()
		if e.inflight != c && c.err != nil && c.mode == mode {
			e.leave(mode)
			e.mu.Unlock()
			return false, c.err
		}
	}
}

// changed returns a channel closed at the next change of the OS lock or of
// the wait in flight. e.mu must be held.
func (e *entry) changed() <-chan struct{} {
	if e.wake == nil {
		e.wake = make(chan struct{})
	}
	return e.wake
}

// notify wakes the goroutines waiting for a change. e.mu must be held.
func (e *entry) notify() {
	if e.wake != nil {
		close(e.wake)
		e.wake = nil
	}
}

// unlock releases a lock held in mode. A reader that is not the last, while
// the fast path is open, leaves with one atomic operation and no system
// call.
func (e *entry) unlock(mode lockMode) error {
	if mode == shared && e.readers.Add(-1) > 0 {
		return nil
	}
	// A writer, the last reader (the count is now 0 with the fast path
	// still open, so joiners wait for mu), or a reader while the fast path
	// is closed: the change needs settling.
	e.mu.Lock()
	defer e.mu.Unlock()
	if mode == exclusive {
		e.writer = false
	}
	return e.settle()
}
