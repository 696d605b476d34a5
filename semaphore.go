package flock

// The cross-process counting semaphore: its API, and its design, which is
// the contract the code below and semaphore_slots.go keep (one file over
// the usual length because of that comment).
//
// Slots. The semaphore is capacity slot files laid out as portalocker's
// BoundedSemaphore lays them out, {dir}/{name}.{i:02d}.lock, and a unit is
// held by holding one slot file's exclusive lock. Each slot is an RWMutex
// opened once and kept open, so a slot costs what a write lock costs: one
// OS lock per file per process, TryLock without waiting, LockContext
// waiting in the kernel and cancellable, and an abandoned wait released by
// the package when it is granted.
//
// In-process. A weighted FIFO (x/sync/semaphore.Weighted of the capacity)
// admits goroutines first, so that the units the process's goroutines ask
// for together never exceed the capacity and a large request is not passed
// by small ones. An admitted goroutine then collects its slots: first those
// free, with one TryLock each, starting where the last success left off
// (so an uncontended Acquire(1) is one TryLock); then, if some are missing,
// by queueing (FIFO again) for slots that the process's slot waiters get.
//
// Waiting. While any goroutine of the process queues for slots, every slot
// the process does not hold has one slot waiter: a goroutine in the slot's
// LockContext, which the slot's RWMutex turns into at most one blocking
// flock(2) in the kernel. A slot freed by any process thus wakes one of
// them at once, and it hands the slot to the goroutine at the front of the
// queue (or lets go of it if the queue emptied meanwhile). When the queue
// empties the waiters' context is cancelled; the waits still in the kernel
// are adopted by the next waiter of the slot or released when granted. So,
// however many goroutines wait, a process blocks at most capacity OS
// threads on slot files (one per slot: only exclusive locks are taken) and
// one on the gate, and runs at most capacity slot-waiter goroutines (plus
// the RWMutex's own wait goroutine per slot file and for the gate).
//
// The gate: why weighted requests cannot deadlock. Two processes that each
// hold part of what they need and wait for the rest can wait for each
// other for ever. Here only a holder of the gate, an exclusive lock on
// {dir}/{name}.gate.lock (a name portalocker's pattern never produces),
// waits for slots while holding some for the same request: a request for
// more than one slot that does not get them all at once tries the gate
// without waiting and keeps its partial slots only if it got it; otherwise
// it lets them go before it waits for the gate, and collects only once it
// holds it. Requests for one slot (and all of portalocker's) hold nothing
// while they wait. A waiting process other than the gate holder therefore
// holds only slots of completed requests, which their holders release
// without waiting for this semaphore (as with any semaphore, a holder that
// waits for more units while it holds some can deadlock by itself), so the
// gate holder's wait ends. Nobody waits while holding part of a request
// except that one holder, and nobody retries without waiting in between:
// no livelock either.
//
// Removed slot files. A cleaner that removes a slot file would let a
// process that opens the path afresh lock a new file while others lock the
// removed one: two holders of "slot i". (For the gate that would be worse:
// two holders of "the" gate, each with part of its slots, could wait for
// each other; waitSlots makes the holder of a removed gate let its slots go
// within about a second.) Every grant of a slot (and of the gate) is
// therefore checked: a grant on a file that has no name left (its
// link count, from fstat, is zero: removed, or renamed over) is let go, the
// path is opened again (creating the file) and the slot tried again. The
// link count says it without a walk of the path, which cost as much as the
// lock itself; a slot file with other hard links is not one a cleaner
// removed, and is not checked for that. A slot file
// removed while held is not detected until that hold ends: the cleaner
// breaks the bound for that slot meanwhile, as it would for portalocker.

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/semaphore"
)

// A Semaphore is a counting semaphore shared by every goroutine and every
// process that opens it with the same directory and name: at no instant do
// they together hold more units than the capacity. Its method set is
// golang.org/x/sync/semaphore.Weighted's, with errors returned, plus Close.
//
// The units are slot files, {dir}/{name}.00.lock to
// {dir}/{name}.{capacity-1}.lock (the number formatted as Go's and Python's
// "%02d": 7 is "07", 100 is "100"), each held with an exclusive lock: the
// layout and locks of portalocker's BoundedSemaphore, with which it
// interoperates on flock(2) platforms (see OpenSemaphore). Slot files are
// never removed.
//
// Inside a process, goroutines are admitted first in, first out, by the
// units they ask for, as with x/sync's Weighted: a request that must wait
// keeps later ones of the process from passing it. Across processes there
// is no order: a slot freed goes to whichever waiting process the kernel
// wakes, or to a portalocker process that polls at the right moment.
//
// A process that waits for units waits in the kernel, on every slot file
// it does not hold, so a slot freed by any process is taken at once (no
// polling); however many of its goroutines wait, it blocks at most
// capacity+1 OS threads in the kernel for the semaphore (one per slot
// file, one on the gate that requests for more than one unit pass), and
// the package runs at most two goroutines per slot file and one for the
// gate for it, not one per waiting goroutine. A cancelled wait
// returns at once holding nothing; a wait it left in the kernel is
// released the moment it is granted, or adopted by the next Acquire.
//
// Units are not associated with a goroutine: one may Acquire and another
// Release. A Semaphore comes from OpenSemaphore (its zero value is not
// usable: its methods panic saying so) and must not be copied.
type Semaphore struct {
	dir, name string
	capacity  int64
	opts      []Option
	cfg       config

	admit *semaphore.Weighted

	mu    sync.Mutex
	slots []semSlot
	gate  *RWMutex // nil for a capacity of one: nobody needs more than one slot
	// oldGates are gate handles replaced after a removal of the gate file
	// while goroutines still queued on them; Close closes them.
	oldGates []*RWMutex
	// held lists the slots held for completed acquisitions; Release lets
	// go of the last ones.
	held []int
	// queue holds the goroutines waiting for slots (*slotRequest), in
	// arrival order. While it is not empty every slot not held by the
	// process has a waiter, and waitCtx is live.
	queue     list.List
	waitCtx   context.Context
	stopWaits context.CancelFunc
	waiters   sync.WaitGroup
	next      int // the slot to try first
	active    int // goroutines inside Acquire or TryAcquire
	closed    bool
}

const (
	slotFree    slotState = iota // not held by the process, nobody on it
	slotTrying                   // a goroutine is trying its lock without waiting
	slotWaiting                  // a slot waiter is in its LockContext
	slotHeld                     // held by the process, for an acquisition
)

// OpenSemaphore opens the semaphore of the given capacity whose slot files
// are {dir}/{name}.NN.lock, creating the files that do not exist (as Open
// creates a lock file, with its options), and returns a handle on it. It
// keeps the capacity slot files open (and, when waiting, up to one more
// descriptor per slot) until Close. For a capacity above one it also opens,
// creating it with the first slot file's permission bits if it does not
// exist, the gate {dir}/{name}.gate.lock, which requests for more than one
// unit pass to collect their slots without deadlock; it is not removed
// either.
//
// The options are Open's; RemoveOnUnlock and WriterPriority are refused
// (with an error matching fs.ErrInvalid): slot files must never be
// removed, and slots are only ever locked exclusively.
//
// Errors: a capacity below one, an empty name, or a name containing a path
// separator or a NUL byte give an error matching fs.ErrInvalid; a missing
// directory gives the *fs.PathError of its stat, naming the directory and
// matching fs.ErrNotExist; an error opening a slot file is Open's, naming
// that file.
//
// # Capacity
//
// The capacity is not stored anywhere: it is the number of slot files each
// process uses, as with portalocker. Processes that disagree each bound
// only the slots they use: with capacities 2 and 5 on one name, the first
// kind never holds more than 2 units together, but all of them together
// may hold 5 (slots 00 and 01 are shared, 02 to 04 only the second kind
// uses). Give every user of a name the same capacity.
//
// # portalocker
//
// portalocker's BoundedSemaphore (2.2.1) opens each slot file for
// appending, creating it, and takes flock(2) LOCK_EX|LOCK_NB on it, trying
// the slots in order and polling every check_interval (0.25 s by default);
// its default directory is the system temporary directory and its default
// name "bounded_semaphore". A Semaphore opened on the same directory, name
// and capacity excludes it on flock(2) platforms (Linux, macOS, the BSDs,
// illumos): together they never hold more than the capacity. On fcntl
// platforms (AIX, Solaris, or built with -tags flock_fcntl) and on Windows
// the lock is not the one portalocker takes, and Go processes only exclude
// each other. portalocker holds one slot per object and never waits in the
// kernel, so a slot freed while Go processes wait almost always goes to
// them: nothing is fair between the two.
//
// On fcntl platforms locks belong to the process, not the descriptor; the
// package's in-process layer gives each slot to one goroutine at a time all
// the same, but do not open the slot files with other APIs in the process
// (closing any descriptor of a file there drops the process's lock on it).
// Waits there block in F_SETLKW; the kernel's deadlock detection, which
// takes a process for one owner, may see a deadlock between two processes
// that each hold a slot (for a completed acquisition) and wait for the
// other's, and the package then retries with backoff, as LockContext does.
func OpenSemaphore(dir, name string, capacity int64, opts ...Option) (*Semaphore, error) {
	pattern := filepath.Join(dir, name+".NN.lock")
	switch {
	case capacity < 1:
		return nil, &fs.PathError{Op: "open", Path: pattern, Err: wrapInvalid("semaphore capacity " + strconv.FormatInt(capacity, 10) + " is not positive")}
	case int64(int(capacity)) != capacity:
		return nil, &fs.PathError{Op: "open", Path: pattern, Err: wrapInvalid("semaphore capacity " + strconv.FormatInt(capacity, 10) + " is too large")}
	case name == "":
		return nil, &fs.PathError{Op: "open", Path: pattern, Err: wrapInvalid("empty semaphore name")}
	case strings.IndexByte(name, 0) >= 0:
		return nil, &fs.PathError{Op: "open", Path: pattern, Err: errNULPath}
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x80 && (r == '/' || os.IsPathSeparator(uint8(r))) }):
		return nil, &fs.PathError{Op: "open", Path: pattern, Err: wrapInvalid("semaphore name " + strconv.Quote(name) + " contains a path separator")}
	}
	c := config{perm: 0o666}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.removeOnUnlock || c.writerPriority {
		return nil, &fs.PathError{Op: "open", Path: pattern, Err: wrapInvalid("RemoveOnUnlock and WriterPriority do not apply to a semaphore's slot files")}
	}
	statDir := dir
	if statDir == "" {
		statDir = "."
	}
	if st, err := os.Stat(statDir); err != nil {
		return nil, err // *fs.PathError naming the directory
	} else if !st.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: wrapInvalid("not a directory")}
	}

	s := &Semaphore{dir: dir, name: name, capacity: capacity, opts: opts, cfg: c,
		admit: semaphore.NewWeighted(capacity)}
	s.slots = make([]semSlot, capacity)
	for i := range s.slots {
		sl := &s.slots[i]
		sl.path = filepath.Join(dir, fmt.Sprintf("%s.%02d.lock", name, i))
		m, err := Open(sl.path, opts...)
		if err != nil {
			s.closeHandles()
			return nil, err
		}
		sl.m = m
	}
	if capacity > 1 {
		g, err := openGate(s.gatePath(), s.slots[0].m.File())
		if err != nil {
			s.closeHandles()
			return nil, err
		}
		s.gate = g
	}
	// Start where other Go processes are unlikely to (portalocker starts
	// at slot 00), so that they rarely try the same slot first.
	s.next = os.Getpid() % len(s.slots)
	return s, nil
}

func (s *Semaphore) gatePath() string { return filepath.Join(s.dir, s.name+".gate.lock") }

// openGate opens the gate file at path, creating it with like's
// permission bits (and owner, where the process may) if it does not exist,
// as WriterPriority's gate is created: whoever may not open the slot files
// may not open the gate either, and so cannot block weighted requests.
func openGate(path string, like *os.File) (*RWMutex, error) {
	info, err := like.Stat()
	if err != nil {
		return nil, err
	}
	return openSidecar(path, info, sidecarPerm(info), NoFollow())
}

// Acquire acquires n units of the semaphore, waiting until they are free
// or ctx is done. If ctx is done first, it returns an error wrapping
// ctx.Err() (errors.Is(err, context.Canceled) or
// context.DeadlineExceeded holds) and holds nothing: slots it had
// collected for the request are released. Like x/sync's Weighted, it fails
// without acquiring if ctx is already done when it is called.
//
// n must be between 1 and the capacity: otherwise Acquire returns at once
// an error matching fs.ErrInvalid (x/sync's Weighted, asked for more than
// its size, blocks until ctx is done instead). Any other error comes from
// a slot file's lock (an *fs.PathError naming it); after Close the error
// wraps os.ErrClosed.
func (s *Semaphore) Acquire(ctx context.Context, n int64) error {
	if err := s.enter("acquire", n); err != nil {
		return err
	}
	defer s.leave()
	if ctx == nil {
		ctx = context.Background()
	}
	if err := s.admit.Acquire(ctx, n); err != nil {
		return s.pathError("acquire", err)
	}
	var buf [4]int // the slots of a small request, without allocating
	got, err := s.collect(ctx, int(n), buf[:0])
	if err != nil {
		s.admit.Release(n)
		return err
	}
	s.mu.Lock()
	s.held = append(s.held, got...)
	s.mu.Unlock()
	return nil
}

// TryAcquire acquires n units if they are free now, without waiting. It
// returns true, nil if it acquired them, and false, nil if they are not
// all free, or if goroutines of the process wait for units (as x/sync's
// TryAcquire, it does not pass them); it holds nothing then. n must be
// between 1 and the capacity, or it returns false with an error matching
// fs.ErrInvalid. It reports other errors as Acquire does.
//
// Right after an Acquire of this process was cancelled, or stopped
// waiting because it got its units, TryAcquire may report false for a
// slot that is free: the slot's waiter may still be winding down, or a
// wait left in the kernel may still be there (it is released the moment
// it is granted). Acquire adopts both instead of failing.
func (s *Semaphore) TryAcquire(n int64) (bool, error) {
	if err := s.enter("acquire", n); err != nil {
		return false, err
	}
	defer s.leave()
	if !s.admit.TryAcquire(n) {
		return false, nil
	}
	var buf [4]int
	got, err := s.tryFree(int(n), buf[:0])
	if err != nil || len(got) < int(n) {
		s.unlockSlots(got)
		s.admit.Release(n)
		return false, err
	}
	s.mu.Lock()
	s.held = append(s.held, got...)
	s.mu.Unlock()
	return true, nil
}

// Release releases n units, acquired through this handle by any goroutine.
// It panics if n is not positive, or if fewer than n units are held
// through the handle, as x/sync's Weighted panics on releasing more than
// it holds.
func (s *Semaphore) Release(n int64) {
	s.mustBeOpened()
	if n < 1 {
		panic("flock: Semaphore.Release of " + units(n) + " of " + s.pattern() + ": the count must be positive")
	}
	s.mu.Lock()
	h := int64(len(s.held))
	if h < n {
		s.mu.Unlock()
		panic("flock: Semaphore.Release of " + units(n) + " of " + s.pattern() +
			": released more than held (" + strconv.FormatInt(h, 10) + " held)")
	}
	var buf [4]int
	rel := append(buf[:0], s.held[h-n:]...)
	s.held = s.held[:h-n]
	// Active until the slots are unlocked: Close must not close them
	// under this release.
	s.active++
	s.mu.Unlock()
	s.unlockSlots(rel)
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
	s.admit.Release(n)
}

// Close releases the handle: the slot files' descriptors and the gate's.
// It fails with an error wrapping ErrLocked, and changes nothing, while
// units are held through the handle or a goroutine is acquiring or
// releasing some through it. After Close, Acquire, TryAcquire and Close
// fail with an error wrapping os.ErrClosed. The files are not removed.
//
// A wait that a cancelled Acquire left in the kernel (flock(2) waits
// cannot be interrupted) keeps its slot file's descriptor open and its
// thread blocked after Close, until the slot is granted to it, which it
// then releases at once; only another process holding the slot for ever
// makes that last for ever.
func (s *Semaphore) Close() error {
	s.mustBeOpened()
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return s.pathError("close", os.ErrClosed)
	case s.active > 0 || len(s.held) > 0:
		s.mu.Unlock()
		return s.pathError("close", ErrLocked)
	}
	s.closed = true
	s.mu.Unlock()
	// The queue is empty, so the slot waiters are on their way out.
	s.waiters.Wait()
	return s.closeHandles()
}

func (s *Semaphore) closeHandles() error {
	var errs []error
	for i := range s.slots {
		if m := s.slots[i].m; m != nil {
			errs = append(errs, m.Close())
		}
	}
	if s.gate != nil {
		errs = append(errs, s.gate.Close())
	}
	for _, g := range s.oldGates {
		errs = append(errs, g.Close())
	}
	return errors.Join(errs...)
}

// units says n units in words.
func units(n int64) string {
	if n == 1 {
		return "1 unit"
	}
	return strconv.FormatInt(n, 10) + " units"
}

// enter checks n and counts the caller as active, unless s is closed.
func (s *Semaphore) enter(op string, n int64) error {
	s.mustBeOpened()
	if n < 1 || n > s.capacity {
		return s.pathError(op, wrapInvalid("request for "+strconv.FormatInt(n, 10)+
			" units of a semaphore of capacity "+strconv.FormatInt(s.capacity, 10)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.pathError(op, os.ErrClosed)
	}
	s.active++
	return nil
}

// mustBeOpened panics, saying so, if s is not a Semaphore OpenSemaphore
// returned (the zero Semaphore).
func (s *Semaphore) mustBeOpened() {
	if s.slots == nil {
		panic("flock: Semaphore used without OpenSemaphore (the zero value is not usable)")
	}
}

func (s *Semaphore) leave() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
}

// testHookSemQueued, if set by a test, runs when a goroutine has queued
// for slots, holding those it collected before.
var testHookSemQueued func(*Semaphore)

func (s *Semaphore) pattern() string { return filepath.Join(s.dir, s.name+".NN.lock") }

func (s *Semaphore) pathError(op string, err error) error {
	return &fs.PathError{Op: op, Path: s.pattern(), Err: err}
}
