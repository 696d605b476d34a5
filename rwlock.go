package flock

// The in-process layer, per lock file: an entry holds the file, the FIFO
// reader/writer gate (waiters queue in arrival order; a writer waiting
// blocks later readers) and the OS lock the process holds, reference
// counted by the admitted goroutines; settle keeps the OS lock in step with
// the gate. The registry (registry.go) finds a file's entry.

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
)

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
	// view is the file that File hands out (see carryingFile), or nil;
	// guarded by mu.
	view *os.File

	// readers is the number of admitted readers, minus readerBias while the
	// fast path is closed. The fast path is open exactly when the OS shared
	// lock is held and nobody is queued (see setFast); then readers > 0 and a
	// reader may join (compare-and-swap) or leave unless it is the last
	// (add), with no system call. Every other change goes through mu.
	readers atomic.Int64

	mu sync.Mutex
	// followers are the words that mirror fastOpen (see follower); guarded
	// by mu. nfollowers is how many, changed under mu and read without it
	// by readers asking whether there is room.
	followers  *follower
	nfollowers atomic.Int32
	refs       int       // handles (and entries, for a gate) referring to this entry; guarded by registry.mu
	fastOpen   bool      // whether readers is unbiased
	writer     bool      // a writer is admitted
	queue      waitQueue // in arrival order
	held       lockMode  // the OS lock this process holds on the file
	// inflight holds the OS waits in the kernel, by mode. A wait on the
	// entry's own descriptor (not separate) is alone, and nothing is tried
	// beside it; separate waits, on owners of their own, may be in flight
	// for both modes, and the lock may be held beside one in the other
	// mode. A wait is granted only while held is unlocked: it conflicts
	// with any lock taken beside it.
	inflight [exclusive + 1]*osWait
	wake     chan struct{} // closed (and cleared) when held or inflight changes; made by a waiter
	// handoffs counts the writers in a row that took the exclusive OS
	// lock over from the one before (see maxHandoffs).
	handoffs int
	spares   []*os.File     // descriptors of the same file from racing Opens
	dead     bool           // dropped from the registry; file closed
	lookup   *holdersLookup // the holder lookup of lock errors running, if any (see withHolders)

	// The writer-priority gate (see priority.go), if a handle asked for
	// it: the gate file's own entry, of which this entry holds a
	// reference, and the gate lock held for the OS lock held (only while
	// held is exclusive).
	gate     *entry
	gateHeld lockMode
	// gateOf counts the entries whose gate this entry is; guarded by
	// registry.mu. A gate has no gate of its own and is no lock file's
	// that has one (see addGate).
	gateOf int

	// fdMem is where fd's state lives, if it has any (see sysFD): last,
	// away from the fields the lock's fast paths touch.
	fdMem fdMem
}

// carryingFile returns the file that File hands out for e: e's view, a
// descriptor of its own on the open file that carries the process's lock,
// made (or made again, if its caller closed it) as needed. The package
// never locks, unlocks or closes a file through the view until e is
// closed, so closing it cannot release a lock (except on fcntl platforms,
// where closing any descriptor of the file does) nor leave e's own
// descriptor number to be reused by another file. It returns nil if the
// descriptor cannot be made.
func (e *entry) carryingFile() *os.File {
	e.mu.Lock()
	defer e.mu.Unlock()
	moved := e.held != unlocked && lockOnFile(e.fd)
	view, err := viewFile(e.file, e.view, moved)
	if err != nil {
		return nil
	}
	e.view = view
	return view
}

// waiting reports whether an OS wait is in flight. e.mu must be held.
func (e *entry) waiting() bool {
	return e.inflight[shared] != nil || e.inflight[exclusive] != nil
}

// A waiter is a goroutine queued at an entry's gate. Waiters are pooled:
// one is back in the pool only once it is out of the queue and its token
// taken, so that nothing refers to it any more.
type waiter struct {
	mode       lockMode
	ready      chan struct{} // capacity 1: gets one token when the waiter is admitted
	prev, next *waiter
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ready: make(chan struct{}, 1)} }}

// waitQueue is the gate's FIFO of waiters, linked through them so that
// queueing allocates nothing.
type waitQueue struct {
	head, tail *waiter
	n          int
}

func (q *waitQueue) Len() int { return q.n }

func (q *waitQueue) front() *waiter { return q.head }

func (q *waitQueue) push(w *waiter) {
	w.prev, w.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
}

func (q *waitQueue) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
	q.n--
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
	// either counted before or sees a negative value and comes to mu. The
	// followers are closed before readers and opened after it, so that a
	// follower's word is open only while readers is.
	if open {
		e.readers.Add(readerBias)
		e.markFollowers(-fastClosedBit)
	} else {
		e.markFollowers(fastClosedBit)
		e.readers.Add(-readerBias)
	}
	e.fastOpen = open
}

// fastClosedBit is the bit of a follower's word that e sets while its
// reader fast path is closed.
const fastClosedBit = 1 << 2

// A follower is a word that mirrors whether an entry's reader fast path is
// open: while linked, the entry keeps fastClosedBit of word set exactly
// while the fast path is closed (the word's other bits are its owner's, who
// never changes that one); unlinked, the bit is set, as its owner sets it
// to begin with. A handle's state word follows its entry once two of its
// readers hold or take read locks at once (see askToFollow), so that a
// reader joining the handle's read admission learns from the result of its
// own addition to that word whether it may, with no load of the entry:
// once a writer of the process queues, readers of an admitted handle must
// queue behind it as well. A handle whose readers never overlap has
// nothing to join and never follows.
//
// The bit is flipped with an addition, which is as good as setting or
// clearing it because e knows its value: it is what fastOpen says while
// linked, set while not, all changed under e.mu only. The cost is one
// atomic addition per follower whenever the fast path opens or closes,
// 2.5-5 ns each (BenchmarkRLockRUnlockOtherHandles, when every handle
// followed: 10 000 idle handles made an uncontended RLock+RUnlock 100 µs
// instead of 1.3), hence maxFollowers.
type follower struct {
	word       *atomic.Int64
	prev, next *follower
	// linked is whether e follows the word: changed under e.mu, read
	// without it by the word's readers (and by Close).
	linked atomic.Bool
	// asks counts its readers' asks to follow while not linked (see
	// askToFollow).
	asks atomic.Uint32
}

// maxFollowers bounds an entry's followers, so that opening or closing the
// fast path costs at most as many atomic additions. Handles beyond it keep
// their bit set: their readers take the slow path's admission from the
// entry, as readers of handles of their own do.
const maxFollowers = 16

// follow makes f follow e, if e has room for it or a follower idle now
// (no reader counted in its word) to give it up for f: a follower that
// asked once keeps no claim, so a handle whose readers overlap now is not
// kept out by handles that are idle. f's bit (set until then) is cleared
// if the fast path is open now.
func (e *entry) follow(f *follower) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f.linked.Load() {
		return
	}
	if e.nfollowers.Load() >= maxFollowers {
		idle := e.followers
		// The words are handles' states, which count their readers from
		// readUnit up. Idle is a guess, made without their owners: a
		// follower given up only has its readers take the slow path.
		for idle != nil && idle.word.Load() >= readUnit {
			idle = idle.next
		}
		if idle == nil {
			return
		}
		e.unlink(idle)
	}
	if e.fastOpen {
		f.word.Add(-fastClosedBit)
	}
	f.prev, f.next = nil, e.followers
	if e.followers != nil {
		e.followers.prev = f
	}
	e.followers = f
	f.linked.Store(true)
	e.nfollowers.Add(1)
}

// unfollow stops e from changing f's word, if it follows.
func (e *entry) unfollow(f *follower) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f.linked.Load() {
		e.unlink(f)
	}
}

// unlink removes f from e's followers, setting its bit if the fast path
// is open (it is set otherwise). e.mu must be held.
func (e *entry) unlink(f *follower) {
	if e.fastOpen {
		f.word.Add(fastClosedBit)
	}
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		e.followers = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	}
	f.prev, f.next = nil, nil
	f.linked.Store(false)
	e.nfollowers.Add(-1)
}

// markFollowers adds bit (fastClosedBit, or its negation) to every
// follower's word. e.mu must be held.
func (e *entry) markFollowers(bit int64) {
	for f := e.followers; f != nil; f = f.next {
		f.word.Add(bit)
	}
}

// maxHandoffs bounds how many writers of the process in a row take over
// the exclusive OS lock from the one before without releasing it (see
// settle). At the bound the lock is released and retaken, so that a waiter
// of another process is woken and may get in; flock(2) does not order
// waiters, so that is as much as a release ever gives it.
const maxHandoffs = 8

// settle restores the invariants after the set of admitted or queued
// goroutines changed: waiters that can now be admitted are, an OS lock
// nobody admitted needs is released at once, and the fast path follows. A
// queued writer admitted as the writer before it leaves takes over the
// exclusive OS lock as it is, with no system call, up to maxHandoffs times
// in a row. e.mu must be held.
func (e *entry) settle() error { return e.settleAfter(false) }

// settleAfter is settle; writerLeft is whether a writer holding the
// exclusive OS lock just left, which a queued writer may take over.
func (e *entry) settleAfter(writerLeft bool) error {
	for w := e.queue.front(); w != nil; w = e.queue.front() {
		if !e.compatible(w.mode) {
			break
		}
		e.admit(w.mode)
		e.queue.remove(w)
		w.ready <- struct{}{}
	}
	var err error
	switch want := e.want(); {
	case e.held == unlocked:
	case e.held != want:
		err = e.osUnlock()
	case want == exclusive && writerLeft:
		// The lock passes from one writer to the next.
		if e.handoffs++; e.handoffs >= maxHandoffs {
			err = e.osUnlock()
		}
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
	if mode == shared && e.joinReaders() {
		return true, nil
	}

	e.mu.Lock()
	switch {
	case e.admissible(mode):
		e.admit(mode)
	case !wait:
		e.mu.Unlock()
		return false, nil
	default:
		w := waiterPool.Get().(*waiter)
		w.mode = mode
		e.queue.push(w)
		e.setFast()
		e.mu.Unlock()
		select {
		case <-w.ready:
			waiterPool.Put(w)
			e.mu.Lock()
		case <-done:
			e.mu.Lock()
			select {
			case <-w.ready:
				// Admitted while we gave up: leave like a holder.
				e.leave(mode)
			default:
				e.queue.remove(w)
				e.settle() // readers queued behind a writer may go now
			}
			e.mu.Unlock()
			waiterPool.Put(w)
			return false, ctx.Err()
		}
	}
	return e.lockOS(ctx, done, mode, wait)
}

// lockOS gets the OS lock for a goroutine the gate admitted in mode. It is
// called with e.mu held and returns with it released; on failure the
// goroutine has left the gate.
//
// Every admitted goroutine that cannot have the lock yet waits for a change
// with an OS wait of its own mode in flight (started by the first of them,
// adopted by the rest), unless a wait of the other mode on the entry's own
// descriptor forbids it: then only that wait's end can change anything. So
// whatever another process does to its lock (release it, convert it, leave
// only readers behind) is seen by a wait in the kernel that wants exactly
// what the waiting goroutines want.
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
		own, other := e.inflight[mode], e.inflight[mode.other()]
		switch {
		case own != nil || other != nil && !other.separate:
			// Our wait is in flight (adopt it), or the other mode's
			// occupies the descriptor we would try on.
			if own != nil && mode == exclusive && wait && own.gate != nil &&
				own.gateHeld == unlocked && own.regate == nil && own.abandoned() {
				e.regate(own) // it let go of the gate when it was abandoned
			}
			if !wait {
				e.leave(mode)
				e.mu.Unlock()
				return false, nil
			}
		default:
			// Nothing in flight, or the other mode's wait on an owner of
			// its own, which the admitted goroutines (of our mode) do not
			// want: try beside it.
			var err error
			if e.gate == nil {
				err = lockFile(e.fd, mode) // from here, not a frame deeper (see RWMutex.acquire)
			} else {
				err = e.osTryGated(mode)
			}
			if err == nil {
				e.held = mode
				e.notify() // admitted goroutines waiting for a change
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
			// If no wait of our own can go beside the other's (its
			// descriptor could not be opened), the other's end is the
			// change we wait for.
			own = e.startWait(mode, other != nil, done == nil)
			if own != nil && own.inline {
				// The inline wait (see startWait): its caller is admitted
				// in its mode and stays so, so it is never abandoned, and
				// others of the mode adopt it as they would a wait
				// goroutine's; its handle keeps the entry referred to. Its
				// end is recorded in the same critical section that then
				// finds the lock held.
				e.mu.Unlock()
				err := e.osWait(own)
				e.mu.Lock()
				e.waitEnded(own, err)
				if own.err != nil {
					e.leave(mode)
					e.mu.Unlock()
					return false, own.err
				}
				continue
			}
		}
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
		if own != nil && e.inflight[mode] != own && own.err != nil {
			e.leave(mode)
			e.mu.Unlock()
			return false, own.err
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

// joinReaders admits a reader with no system call, if the fast path is
// open and a reader is admitted, and reports whether it did. Not by an
// addition undone on failure: a count that went up for a moment could let
// another joiner believe a reader was admitted after the last one left and
// the OS lock went.
func (e *entry) joinReaders() bool {
	for n := e.readers.Load(); n > 0; n = e.readers.Load() {
		if e.readers.CompareAndSwap(n, n+1) {
			return true
		}
	}
	return false
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
		return e.settleAfter(e.held == exclusive)
	}
	return e.settle()
}
