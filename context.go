package flock

// The cancellable OS wait.
//
// A blocking flock(2) or F_SETLKW cannot be interrupted from Go (the
// runtime installs its signal handlers with SA_RESTART, and closing the
// descriptor does not wake the waiter), so a goroutine that must be able to
// give up cannot make the call itself. Instead the first admitted goroutine
// that finds the lock held by another process starts one wait goroutine for
// the entry, and every admitted goroutine of the same mode waits for its
// result together with its own ctx. When the wait ends the wait goroutine
// records the OS lock as held, and settle releases it at once if no admitted
// goroutine needs it any more: a wait that outlived its caller is thus
// adopted by the next waiter of the same mode or released the moment it is
// granted. At most one wait per entry is in the kernel (entry.inflight), so
// at most one OS thread per file per process blocks there, however many
// goroutines wait.
//
// Where the OS can abandon a wait (Windows), abandon is closed when nobody
// needs the wait's mode any more, and the backend returns errAbandoned.

import "errors"

// osWait is one blocking OS lock call in flight for an entry.
type osWait struct {
	mode     lockMode
	needGate bool // the wait must take the writer-priority gate first
	// separate is whether the wait is on a lock owner of its own (see
	// separateWait): then goroutines admitted in the other mode may take
	// the lock beside it, and it is granted only after they let go.
	separate bool
	abandon  chan struct{} // closed when nobody needs mode any more
	err      error         // the call's error, other than errAbandoned; set before inflight is cleared
}

var errAbandoned = errors.New("lock wait abandoned")

// startWait starts the entry's OS wait for mode. e.mu must be held, and no
// wait may be in flight.
func (e *entry) startWait(mode lockMode) *osWait {
	c := &osWait{mode: mode, abandon: make(chan struct{})}
	c.needGate = e.gate != nil && !e.gate.held
	// With the writer-priority gate the wait may hold or wait for the gate,
	// which its own descriptor carries: keep to one owner then.
	c.separate = e.gate == nil && separateWait(e.fd)
	e.inflight = c
	go e.wait(c)
	return c
}

func (e *entry) wait(c *osWait) {
	err := e.osWait(c)

	e.mu.Lock()
	e.inflight = nil
	switch err {
	case nil:
		// held is unlocked here: a separate wait conflicts with any lock
		// of the other mode taken beside it, and a wait of the same mode is
		// adopted, never tried beside.
		e.held = c.mode
		waitGranted(e.fd)
	case errAbandoned:
	default:
		c.err = err
	}
	e.settle() // releases the lock if its caller left meanwhile
	e.notify()
	e.mu.Unlock()
	// The last handle may have been closed while the wait was in the
	// kernel; drop keeps the entry if not.
	registry.drop(e)
}

// abandonUnwanted tells the wait in flight, if nobody needs its mode any
// more, that it may give up. e.mu must be held.
func (e *entry) abandonUnwanted() {
	c := e.inflight
	if c == nil || c.mode == e.want() {
		return
	}
	select {
	case <-c.abandon:
	default:
		close(c.abandon)
	}
}
