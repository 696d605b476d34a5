package flock

// The Semaphore's slots: collecting them without waiting, the slot waiters
// that wait in the kernel for the ones missing and hand them to the queue,
// the gate of weighted requests, and the check that a granted slot file was
// not removed (the design is at the top of semaphore.go).

import (
	"container/list"
	"context"
	"errors"
	"time"
)

// collect gets n slot locks for an admitted goroutine: those free now, and
// the rest by waiting, through the gate if n > 1 (see the top of the
// file). On failure it holds none.
func (s *Semaphore) collect(ctx context.Context, n int, got []int) ([]int, error) {
	for {
		slots, err := s.collectOnce(ctx, n, got)
		if err != errGateRemoved {
			return slots, err
		}
		// The gate file was removed while this request held it and
		// waited: it let its slots go; start over on the new gate.
		got = got[:0]
	}
}

// errGateRemoved is waitSlots' report that the gate it held was removed.
var errGateRemoved = errors.New("gate file removed")

// gateCheck is how often a weighted request that holds the gate and waits
// for slots checks that the gate file still has a name (see waitSlots).
var gateCheck = time.Second

func (s *Semaphore) collectOnce(ctx context.Context, n int, got []int) ([]int, error) {
	got, err := s.tryFree(n, got)
	if err != nil || len(got) == n {
		if err != nil {
			s.unlockSlots(got)
			got = nil
		}
		return got, err
	}
	if ctx.Err() != nil {
		s.unlockSlots(got)
		return nil, s.pathError("acquire", ctx.Err())
	}
	if n > 1 {
		// Keep the partial slots only as the gate's holder: waiting for
		// the gate while holding them could deadlock with its holder.
		g, ok, err := s.tryGate()
		if !ok {
			s.unlockSlots(got)
			got = nil
			if err == nil {
				g, err = s.lockGate(ctx)
			}
			if err != nil {
				return nil, err
			}
			if got, err = s.tryFree(n, got[:0]); err != nil {
				s.unlockSlots(got)
				g.Unlock()
				return nil, err
			}
		}
		defer g.Unlock()
		if len(got) == n {
			return got, nil
		}
		return s.waitSlots(ctx, got, n-len(got), g)
	}
	return s.waitSlots(ctx, got, n-len(got), nil)
}

// tryFree tries, without waiting, the locks of up to n slots nobody in the
// process holds or waits for, and returns those it got, appended to got.
// While goroutines queue for slots every such slot has a waiter, so
// tryFree does not pass them.
func (s *Semaphore) tryFree(n int, got []int) ([]int, error) {
	n += len(got)
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.next
	for j := 0; j < len(s.slots) && len(got) < n; j++ {
		i := (start + j) % len(s.slots)
		sl := &s.slots[i]
		if sl.state != slotFree {
			continue
		}
		sl.state = slotTrying
		s.mu.Unlock()
		ok, err := s.trySlot(i)
		s.mu.Lock()
		if ok {
			sl.state = slotHeld
			got = append(got, i)
			s.next = (i + 1) % len(s.slots)
			continue
		}
		s.freeLocked(i)
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// trySlot tries slot i's lock without waiting. The caller has the slot
// (slotTrying).
func (s *Semaphore) trySlot(i int) (bool, error) {
	for {
		ok, err := s.slots[i].m.TryLock()
		if !ok {
			return false, err
		}
		if fresh, err := s.verify(i); fresh || err != nil {
			return fresh, err
		}
	}
}

// verify checks that the lock just granted on slot i is on a file that is
// still at its path (see "Removed slot files"). If not, it lets it go, opens the path again (creating the
// file) and returns false, so that the caller tries the new file; an error
// is returned with the lock let go. The caller has the slot.
func (s *Semaphore) verify(i int) (bool, error) {
	sl := &s.slots[i]
	if !fileUnlinked(sl.m.e.file) {
		return true, nil
	}
	sl.m.Unlock()
	m, err := Open(sl.path, s.opts...)
	if err != nil {
		return false, err
	}
	old := sl.m
	s.mu.Lock()
	sl.m = m
	s.mu.Unlock()
	return false, old.Close()
}

// freeLocked marks slot i free, or gives it a waiter if goroutines queue
// for slots. s.mu must be held.
func (s *Semaphore) freeLocked(i int) {
	s.slots[i].state = slotFree
	if s.queue.Len() > 0 {
		s.startWaiterLocked(i)
	}
}

// unlockSlots releases the slots listed.
func (s *Semaphore) unlockSlots(slots []int) {
	for _, i := range slots {
		s.slots[i].m.Unlock() // panics only if the file was closed behind the package's back
		s.mu.Lock()
		s.freeLocked(i)
		s.next = i // just released: the likeliest to be free
		s.mu.Unlock()
	}
}

// waitSlots queues the caller for k more slots (it holds got already) and
// waits until the slot waiters have handed them over or ctx is done. On
// failure it releases all, got included.
//
// A request that holds the gate g checks every gateCheck that the gate file
// still has a name. A cleaner that removed it would let a process opening
// the semaphore afresh take a new gate file, and two requests each holding
// part of their slots could wait for each other; the holder of the removed
// gate lets its slots go instead (errGateRemoved), so such a wait lasts
// about gateCheck. The OS gives no wait for a file's removal to block in;
// the check runs only in that case, never on a handoff's path.
func (s *Semaphore) waitSlots(ctx context.Context, got []int, k int, g *RWMutex) ([]int, error) {
	r := &slotRequest{want: k, done: make(chan struct{})}
	s.mu.Lock()
	if s.queue.Len() == 0 {
		s.waitCtx, s.stopWaits = context.WithCancel(context.Background())
	}
	r.elem = s.queue.PushBack(r)
	for i := range s.slots {
		if s.slots[i].state == slotFree {
			s.startWaiterLocked(i)
		}
	}
	s.mu.Unlock()
	if testHookSemQueued != nil {
		testHookSemQueued(s)
	}

	var tick <-chan time.Time
	if g != nil {
		t := time.NewTicker(gateCheck)
		defer t.Stop()
		tick = t.C
	}
	var err error
wait:
	for {
		select {
		case <-r.done:
		case <-ctx.Done():
			err = s.pathError("acquire", ctx.Err())
		case <-tick:
			if !fileUnlinked(g.e.file) {
				continue
			}
			err = errGateRemoved
		}
		break wait
	}
	s.mu.Lock()
	if r.elem != nil {
		s.dequeueLocked(r)
	}
	got = append(got, r.got...)
	if err == nil {
		err = r.err
	}
	s.mu.Unlock()
	if err != nil {
		// Even if the slots came meanwhile: ctx wins, as in x/sync.
		s.unlockSlots(got)
		return nil, err
	}
	return got, nil
}

// dequeueLocked takes r out of the queue, and stops the slot waiters if
// nobody queues any more. s.mu must be held.
func (s *Semaphore) dequeueLocked(r *slotRequest) {
	s.queue.Remove(r.elem)
	r.elem = nil
	if s.queue.Len() == 0 {
		s.stopWaits()
		s.waitCtx, s.stopWaits = nil, nil
	}
}

// startWaiterLocked starts the waiter of the free slot i. s.mu must be
// held.
func (s *Semaphore) startWaiterLocked(i int) {
	s.slots[i].state = slotWaiting
	s.waiters.Add(1)
	go s.waitSlot(i)
}

// waitSlot is slot i's waiter: while goroutines queue for slots, it waits
// for the slot's lock and hands it to the first of them.
func (s *Semaphore) waitSlot(i int) {
	defer s.waiters.Done()
	sl := &s.slots[i]
	s.mu.Lock()
	for {
		if s.queue.Len() == 0 {
			sl.state = slotFree
			s.mu.Unlock()
			return
		}
		ctx, m := s.waitCtx, sl.m
		s.mu.Unlock()
		_, err := m.lock(ctx, exclusive, true) // LockContext, naming no holders
		fresh := false
		if err == nil {
			fresh, err = s.verify(i)
		}
		s.mu.Lock()
		switch {
		case err == nil && !fresh:
			// Granted on a removed file: wait on the new one.
		case err == nil && s.queue.Len() > 0:
			s.handLocked(i)
			s.mu.Unlock()
			return
		case err == nil:
			// Nobody wants it any more.
			s.mu.Unlock()
			m.Unlock()
			s.mu.Lock()
		case ctx.Err() != nil:
			// Stopped: the queue emptied, perhaps to fill again since.
		case s.queue.Len() > 0:
			front := s.queue.Front().Value.(*slotRequest)
			front.err = err
			s.dequeueLocked(front)
			close(front.done)
		}
	}
}

// handLocked hands the held slot i to the first goroutine in the queue.
// s.mu must be held.
func (s *Semaphore) handLocked(i int) {
	s.slots[i].state = slotHeld
	r := s.queue.Front().Value.(*slotRequest)
	r.got = append(r.got, i)
	if r.want--; r.want == 0 {
		s.dequeueLocked(r)
		close(r.done)
	}
}

// tryGate tries the gate without waiting.
func (s *Semaphore) tryGate() (*RWMutex, bool, error) {
	for {
		s.mu.Lock()
		g := s.gate
		s.mu.Unlock()
		ok, err := g.TryLock()
		if !ok {
			return nil, false, err
		}
		if fresh, err := s.gateFresh(g); fresh || err != nil {
			return g, fresh, err
		}
	}
}

// lockGate waits for the gate until ctx is done.
func (s *Semaphore) lockGate(ctx context.Context) (*RWMutex, error) {
	for {
		s.mu.Lock()
		g := s.gate
		s.mu.Unlock()
		if _, err := g.lock(ctx, exclusive, true); err != nil { // LockContext, naming no holders
			if ctx.Err() != nil {
				err = s.pathError("acquire", ctx.Err())
			}
			return nil, err
		}
		if fresh, err := s.gateFresh(g); fresh || err != nil {
			return g, err
		}
	}
}

// gateFresh checks, as verify does for slots, that the gate g just locked
// is the file at the gate's path. If not, it lets go of it and, unless
// another goroutine has, replaces the handle with one on the file now
// there, and returns false: the caller locks the new one. The replaced
// handle may still have goroutines queued on it (they find it stale in
// turn): it is kept for Close. An error opening the gate again is
// returned, with the gate let go.
func (s *Semaphore) gateFresh(g *RWMutex) (bool, error) {
	path := s.gatePath()
	if !fileUnlinked(g.e.file) {
		return true, nil
	}
	g.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == g {
		ng, err := openGate(path, s.slots[0].m.File())
		if err != nil {
			return false, err
		}
		s.oldGates = append(s.oldGates, g)
		s.gate = ng
	}
	return false, nil
}

// A semSlot is one slot file of the semaphore.
type semSlot struct {
	path  string
	m     *RWMutex
	state slotState
}

type slotState uint8

// A slotRequest is a goroutine queued for slots.
type slotRequest struct {
	want int   // slots still missing
	got  []int // slots handed to it
	err  error // a slot waiter's error, ending the request
	done chan struct{}
	elem *list.Element
}
