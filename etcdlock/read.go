package etcdlock

import (
	"context"
	"errors"
)

const (
	stateAcquiring = iota
	stateHeld
	stateReleasing
)

// readState is the handle's one read key: being acquired for the readers
// waiting on it, held by refs readers, or being released. Guarded by m.mu.
type readState struct {
	state   int
	try     bool
	waiters int                // readers waiting for the acquisition
	refs    int                // readers holding
	cancel  context.CancelFunc // ends the acquisition
	// abandoned is set when the last waiter left and cancelled the
	// acquisition: a reader arriving after must not join it (it would get
	// that cancellation's error as its own), but wait until it is gone.
	abandoned bool
	finished  bool  // the acquisition returned
	err       error // its error
	h         *hold
	done      chan struct{} // closed when the acquisition has returned and cleaned up
	released  chan struct{} // closed when this read key is gone from the handle
}

// RLockContext locks m for reading, waiting until no writer that queued
// before it, in any process, holds or waits for the lock, or until ctx is
// done. A reader joins the read key the handle already holds without a
// round trip, unless a writer (of this handle or another) queued behind it.
// It reports errors as LockContext does.
func (m *RWMutex) RLockContext(ctx context.Context) error {
	_, err := m.rlock(ctx, false)
	return err
}

// TryRLock tries to lock m for reading without waiting. Like TryLock it
// reports contention as false, nil: a writer holds or waits for the lock, or
// another reader of the handle is still acquiring the read key.
func (m *RWMutex) TryRLock() (bool, error) { return m.rlock(nil, true) }

func (m *RWMutex) rlock(ctx context.Context, try bool) (bool, error) {
	const op = "rlock"
	if err := m.enter(op); err != nil {
		return false, err
	}
	defer m.leave()
	if try {
		if !m.gate.TryAcquire(1) {
			return false, nil
		}
		ctx = context.Background()
	} else {
		if ctx == nil {
			ctx = context.Background()
		}
		if err := ctx.Err(); err != nil {
			return false, m.errf(op, err)
		}
		if err := m.gate.Acquire(ctx, 1); err != nil {
			return false, m.errf(op, err)
		}
	}
	ok, err := m.readJoin(ctx, try)
	if !ok {
		m.gate.Release(1)
	}
	if err != nil {
		return false, m.errf(op, err)
	}
	return ok, nil
}

// readJoin makes the caller, who holds one gate token, a holder of the
// handle's read key, starting its acquisition if there is none.
func (m *RWMutex) readJoin(ctx context.Context, try bool) (bool, error) {
	m.mu.Lock()
	for {
		rd := m.rd
		switch {
		case rd == nil:
			rd = m.startRead(try)
		case rd.state == stateHeld && rd.h.joinable():
			rd.refs++
			m.mu.Unlock()
			return true, nil
		case rd.state == stateAcquiring && !try && !rd.abandoned:
			rd.waiters++
		default:
			// Acquiring for a try, abandoned by its waiters, held but
			// closed to new readers, or being released: wait until it
			// is gone, then start anew.
			if try {
				m.mu.Unlock()
				return false, nil
			}
			rel := rd.released
			m.mu.Unlock()
			select {
			case <-rel:
			case <-ctx.Done():
				return false, ctx.Err()
			}
			m.mu.Lock()
			continue
		}
		done := rd.done
		m.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
		m.mu.Lock()
		if rd.finished {
			if rd.err == nil {
				// Counted among the holders when it finished.
				m.mu.Unlock()
				return true, nil
			}
			if errors.Is(rd.err, errWouldBlock) {
				if try {
					m.mu.Unlock()
					return false, nil
				}
				continue // a try failed under us: queue a key of our own
			}
			err := rd.err
			m.mu.Unlock()
			return false, err
		}
		// Our ctx ended first.
		rd.waiters--
		if rd.waiters == 0 {
			rd.abandoned = true
			rd.cancel()
			m.mu.Unlock()
			<-done // the acquisition deletes the key before it finishes
		} else {
			m.mu.Unlock()
		}
		return false, ctx.Err()
	}
}

// startRead starts acquiring a read key for the caller. Called with m.mu held.
func (m *RWMutex) startRead(try bool) *readState {
	var ctx context.Context
	var cancel context.CancelFunc
	if try {
		ctx, cancel = m.opCtx(context.Background())
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	rd := &readState{
		state:    stateAcquiring,
		try:      try,
		waiters:  1,
		cancel:   cancel,
		done:     make(chan struct{}),
		released: make(chan struct{}),
	}
	m.rd = rd
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		defer cancel()
		h, err := m.acquire(ctx, kindRead, try)
		m.mu.Lock()
		if err == nil && rd.waiters == 0 {
			// Every reader left while it was being granted.
			m.mu.Unlock()
			_ = m.release(context.Background(), h)
			m.mu.Lock()
			err = context.Canceled
		}
		rd.finished = true
		if err != nil {
			rd.err = err
			if m.rd == rd {
				m.rd = nil
			}
			close(rd.released)
		} else {
			rd.state = stateHeld
			rd.h = h
			rd.refs = rd.waiters
			rd.waiters = 0
		}
		close(rd.done)
		m.mu.Unlock()
	}()
	return rd
}

// RUnlock releases one read lock held through m; the last reader of the
// handle releases the read key, as Unlock releases a write key (best effort,
// bounded by the operation timeout). It panics if m holds no read lock.
func (m *RWMutex) RUnlock() {
	m.mu.Lock()
	rd := m.rd
	if rd == nil || rd.state != stateHeld || rd.refs == 0 {
		m.mu.Unlock()
		panic("etcdlock: RUnlock of unlocked RWMutex")
	}
	rd.refs--
	if rd.refs > 0 {
		m.mu.Unlock()
		m.gate.Release(1)
		return
	}
	rd.state = stateReleasing
	m.mu.Unlock()
	_ = m.release(context.Background(), rd.h)
	m.mu.Lock()
	m.rd = nil
	close(rd.released)
	m.mu.Unlock()
	m.gate.Release(1)
}
