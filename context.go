package flock

// The cancellable OS wait.
//
// A blocking flock(2) or F_SETLKW cannot be interrupted from Go (the
// runtime installs its signal handlers with SA_RESTART, and closing the
// descriptor does not wake the waiter), so a goroutine that must be able to
// give up cannot make the call itself. Instead the first admitted goroutine
// that finds the lock held by another process starts one wait goroutine for
// the entry and its mode, and every admitted goroutine of the same mode
// waits for its result together with its own ctx. When the wait ends the
// wait goroutine records the OS lock as held, and settle releases it at
// once if no admitted goroutine needs it any more: a wait that outlived its
// caller is thus adopted by the next waiter of the same mode or released the
// moment it is granted.
//
// At most one wait per entry and mode is in the kernel (entry.inflight), so
// at most two OS threads per file per process block there, however many
// goroutines wait; where the backend cannot wait on an owner of its own
// (separateWait is false), at most one. A second wait, of the other mode,
// exists because a wait that nobody wants any more cannot be abandoned on
// flock(2): an abandoned writer's wait may stay blocked long after readers
// could have gone in (another process converting to shared, or leaving
// only readers behind), and only a wait for a shared lock sees that.
//
// A caller that cannot give up (Lock, RLock, or a context that never ends)
// makes the wait itself instead, on its own goroutine, so that a grant
// reaches it without a hop through the scheduler; the wait is registered
// in inflight all the same, and adopted like any other.
//
// Where the OS can abandon a wait (Windows), abandon is closed when nobody
// needs the wait's mode any more, and the backend returns errAbandoned.

import (
	"context"
	"time"
)

// osWait is one blocking OS lock call in flight for an entry.
type osWait struct {
	mode lockMode
	// separate is whether the wait is on a lock owner of its own (see
	// separateWait): then goroutines admitted in the other mode may take
	// the lock beside it, and it is granted only after they let go.
	separate bool
	inline   bool // made by its caller's goroutine (see startWait)
	// gate is the entry's writer-priority gate when the wait started, if
	// any; the wait passes it first. gateHeld is the gate lock the wait
	// holds (guarded by the entry's mutex): it is let go the moment the
	// wait is abandoned, since priority is for goroutines that still wait.
	gate     *entry
	gateHeld lockMode
	// regate, while not nil, stops the goroutine that takes the gate again
	// for a writer that adopted the wait after it was abandoned (see
	// entry.regate); guarded by the entry's mutex.
	regate  chan struct{}
	abandon chan struct{} // closed when nobody needs mode any more
	err     error         // the call's error, other than errAbandoned; set before inflight is cleared
}

// startWait starts the entry's OS wait for mode, which must have none in
// flight. If beside, a wait of the other mode is in flight and the new one
// must be separate from it; startWait returns nil if it cannot be. If
// inline, the caller, which cannot give up (no context to end), makes the
// wait itself (see entry.lockOS) and saves the hop through a wait
// goroutine; otherwise a wait goroutine makes it. e.mu must be held.
func (e *entry) startWait(mode lockMode, beside, inline bool) *osWait {
	sep := separateWait(e.fd, mode)
	if beside && !sep {
		return nil
	}
	c := &osWait{mode: mode, separate: sep, gate: e.gate, inline: inline, abandon: make(chan struct{})}
	e.inflight[mode] = c
	if !inline {
		go e.wait(c)
	}
	return c
}

// wait is the wait goroutine.
func (e *entry) wait(c *osWait) {
	e.waitDone(c, e.osWait(c))
	// The last handle may have been closed while the wait was in the
	// kernel; drop keeps the entry if not.
	registry.drop(e)
}

// waitDone records the end of wait c, as waitEnded does, for a wait
// goroutine.
func (e *entry) waitDone(c *osWait, err error) {
	e.mu.Lock()
	e.waitEnded(c, err)
	e.mu.Unlock()
}

// waitEnded records the end of wait c: the lock it got, if any, or its
// error. e.mu must be held.
func (e *entry) waitEnded(c *osWait, err error) {
	e.inflight[c.mode] = nil
	c.stopRegate()
	switch err {
	case nil:
		// held is unlocked here (see entry.inflight). The writer's gate
		// goes with the lock; a reader needs it no longer.
		e.held = c.mode
		waitGranted(e.fd, c.mode)
		if c.mode == exclusive {
			e.gateHeld, c.gateHeld = c.gateHeld, unlocked
		}
	case errAbandoned:
	default:
		c.err = err
	}
	c.releaseGate()
	e.settle() // releases the lock if its caller left meanwhile
	e.notify()
}

// osWait waits for the OS lock in c.mode, first for the gate if the wait
// has one. It runs without e.mu.
func (e *entry) osWait(c *osWait) error {
	if c.gate != nil {
		gm, err := takeGate(c.gate, abandonContext(c.abandon), c.mode)
		if err != nil {
			return err
		}
		e.mu.Lock()
		c.gateHeld = gm
		select {
		case <-c.abandon:
			c.releaseGate()
			e.mu.Unlock()
			return errAbandoned
		default:
		}
		e.mu.Unlock()
	}
	return waitFile(e.fd, c.mode, c.abandon)
}

// releaseGate lets go of the gate lock the wait holds, if any. The entry's
// mutex must be held.
func (c *osWait) releaseGate() {
	if c.gateHeld != unlocked {
		c.gate.unlock(c.gateHeld)
		c.gateHeld = unlocked
	}
}

// abandonUnwanted tells each wait in flight whose mode nobody needs any
// more that it may give up, and lets go of the gate it holds. e.mu must be
// held.
func (e *entry) abandonUnwanted() {
	if !e.waiting() {
		return
	}
	want := e.want()
	for _, c := range e.inflight {
		if c == nil || c.mode == want {
			continue
		}
		select {
		case <-c.abandon:
		default:
			close(c.abandon)
		}
		c.stopRegate()
		c.releaseGate()
	}
}

// regate takes the gate again, in a goroutine, for the exclusive wait c,
// which lost it when it was abandoned and has now been adopted by a writer
// of the process: priority is for writers that wait, and the adopter
// waits. It gives up when c ends or is abandoned again. The gate is
// thus never waited for while the process holds the lock (a writer of
// another process holding the gate waits for the lock, so that would
// deadlock); a writer granted the lock through c holds it without the gate.
// e.mu must be held.
func (e *entry) regate(c *osWait) {
	stop := make(chan struct{})
	c.regate = stop
	go func() {
		gm, err := takeGate(c.gate, abandonContext(stop), exclusive)
		e.mu.Lock()
		defer e.mu.Unlock()
		live := c.regate == stop // not stopped meanwhile
		if live {
			c.regate = nil
		}
		switch {
		case err != nil:
		case live && e.inflight[exclusive] == c:
			c.gateHeld = gm
		default:
			c.gate.unlock(gm)
		}
	}()
}

// stopRegate stops c's regate goroutine, if any. The entry's mutex must
// be held.
func (c *osWait) stopRegate() {
	if c.regate != nil {
		close(c.regate)
		c.regate = nil
	}
}

// abandoned reports whether c was abandoned (and perhaps adopted since).
func (c *osWait) abandoned() bool {
	select {
	case <-c.abandon:
		return true
	default:
		return false
	}
}

// abandonContext is a context that ends when abandon is closed, for the
// gate's own wait (an entry's lock takes a context).
type abandonContext <-chan struct{}

func (a abandonContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (a abandonContext) Done() <-chan struct{}       { return a }
func (a abandonContext) Value(any) any               { return nil }
func (a abandonContext) Err() error {
	select {
	case <-a:
		return context.Canceled
	default:
		return nil
	}
}
