package flock

// The public RWMutex: the handle, Open, and the lock methods. It is one file
// (over the usual length) because every method keeps the invariants of the
// handle's state word, which are stated once, beside RWMutex's fields.

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// ErrLocked is returned (wrapped in an *fs.PathError) by [RWMutex.Close]
// when a lock taken through the handle is still held or being acquired.
var ErrLocked = errors.New("lock is held or being acquired through this handle")

// An RWMutex is a handle on a lock file that behaves like a sync.RWMutex
// shared by every goroutine and every process that locks the same file.
//
// A handle may be used by any number of goroutines. As with sync.RWMutex, a
// lock is not associated with a goroutine: one goroutine may lock and
// another unlock. Locks are counted per handle: Unlock and RUnlock release a
// lock taken through the same handle, and panic if the handle holds none.
//
// Once a writer is waiting, new readers of this process queue behind it, so
// writers are not starved by the process's own readers; across processes the
// OS decides the order, unless the processes use WriterPriority.
//
// An RWMutex comes from Open; unlike a sync.RWMutex, its zero value is not
// usable (its methods panic saying so). It must not be copied after first
// use. Its method set is sync.RWMutex's, except that TryLock and TryRLock
// return (bool, error), plus the context, Close, Path and File methods. A
// handle is released with Close; the lock file is removed only with
// RemoveOnUnlock.
type RWMutex struct {
	// state counts what goroutines do through this handle, in one word:
	//
	//	bits 32-62  read locks held through the handle, and readers
	//	            trying to join them (readUnit each)
	//	bits 3-31   goroutines acquiring a lock on the slow path or
	//	            holding the write lock (busyUnit each)
	//	bit 2       fast path closed: the entry's, mirrored here by the
	//	            entry itself once the handle follows it, set until
	//	            then (see follower)
	//	bit 1       admitted: the handle holds one read admission to the
	//	            entry, which its readers share
	//	bit 0       closed
	//
	// The handle's readers share one read admission to the entry: a reader
	// that got one from the entry installs it (sets admitted) unless the
	// handle has one already, and whoever brings the count to zero while
	// admitted gives it back (see giveBack). Those in between join with one
	// atomic addition, kept if its result says the handle is admitted and
	// the entry's fast path open (which a handle knows once it follows the
	// entry, see follower), undone otherwise (see rlock). So a read
	// lock and unlock in a busy handle are two additions to this word, as
	// in sync.RWMutex, and RLock is inlined as sync's is. A count never
	// stands in for an admission: only the admitted bit does. Close
	// succeeds only when nothing is held or being acquired through the
	// handle: from zero, the fast-path bit aside.
	state atomic.Int64
	// follow is the entry's link to state. Its links are touched only
	// under the entry's mutex, when the handle starts or stops following
	// (see askToFollow, Close); its linked flag is read without it, by
	// readers on the slow path and Close; state itself is written by the
	// entry when the fast path opens or closes.
	follow follower
	// The rest of state's cache line, after follow, is padding: readers
	// of the handle add to state from every core, and a field read beside
	// it (readFloor, which RUnlock loads) would miss whenever another core
	// took the line between a reader's addition and its load. When the
	// padding came (RLock then loaded e as well), 8 goroutines on one
	// handle went from 0.62-0.79x sync.RWMutex to 0.83-0.98x
	// (BenchmarkRLockParallel, four alternated runs each); the handle grew
	// from 88 to 144 bytes. What shares the line before state is the tail
	// of another object, which the fast paths do not touch.
	_ [64 - 8 - unsafe.Sizeof(follower{})]byte

	e            *entry   // nil with RemoveOnUnlock
	rm           *removal // with RemoveOnUnlock
	path         string
	syncOnUnlock bool
	// readFloor is the least state after a reader's RUnlock that needs no
	// more: readUnit (others still read on the handle's admission), or,
	// with RemoveOnUnlock, where every read lock has its own admission,
	// more than any state.
	readFloor int64

	// writer is whether a write lock taken through this handle is held, so
	// that Unlock of an unlocked handle panics as sync does.
	writer atomic.Bool
	// laterErr is the first error that Unlock could not return (from
	// SyncOnUnlock or RemoveOnUnlock); Close returns it.
	laterErrOnce sync.Once
	laterErr     error
}

const (
	closedBit   = 1
	admittedBit = 1 << 1
	busyUnit    = 1 << 3 // above fastClosedBit
	readUnit    = 1 << 32

	// joinMask is the bits a reader's addition must find, admittedBit
	// alone among them, to join the handle's admission.
	joinMask = closedBit | admittedBit | fastClosedBit
)

// Open opens the lock file at path, creating it (mode 0666 before the umask,
// or WithPerm) if it does not exist, and returns a handle on it. No lock is
// taken. Every error that the file system can give for the path (missing
// parent directory, no permission, not a regular file) is reported here, as
// an *fs.PathError naming the path.
//
// The file is opened for reading and writing if the caller may, else for
// reading only: a read-only file or file system can still be locked, as
// flock(1) allows (on fcntl platforms only shared locks are possible then).
// It is opened close-on-exec, never truncated and never written unless the
// caller writes through File. A directory can be locked as flock(1) does,
// where the OS allows it (flock(2) platforms). Devices, FIFOs and sockets
// are refused.
//
// If the file system does not support locking, the error satisfies
// errors.Is(err, errors.ErrUnsupported); it is reported here when the OS says
// so at open, else by the first lock attempt.
func Open(path string, opts ...Option) (*RWMutex, error) {
	c := config{perm: 0o666}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if path == "" {
		return nil, &fs.PathError{Op: "open", Path: path, Err: errEmptyPath}
	}
	if strings.IndexByte(path, 0) >= 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: errNULPath}
	}
	if c.removeOnUnlock {
		if c.noCreate {
			return nil, &fs.PathError{Op: "open", Path: path, Err: errNoCreateRemove}
		}
		c.noFollow = true
	}
	e, err := registry.open(path, &c)
	if err != nil {
		return nil, err
	}
	m := &RWMutex{e: e, path: path, syncOnUnlock: c.syncOnUnlock, readFloor: readUnit}
	if c.removeOnUnlock {
		m.e, m.readFloor = nil, math.MaxInt64
		m.rm = &removal{cfg: c, cur: e, reads: make(map[*entry]int)}
		return m, nil
	}
	// Not following yet: the fast-path bit is set until it does (see
	// askToFollow).
	m.state.Store(fastClosedBit)
	m.follow.word = &m.state
	return m, nil
}

var (
	errEmptyPath      = wrapInvalid("empty path")
	errNULPath        = wrapInvalid("path contains a NUL byte")
	errNoCreateRemove = wrapInvalid("NoCreate and RemoveOnUnlock do not go together: the file removed by Unlock could not be locked again")
)

// Path returns the path the handle was opened with.
func (m *RWMutex) Path() string {
	m.mustBeOpened()
	return m.path
}

// Writable reports whether the lock file is open for writing, so that the
// holder may write through [RWMutex.File]; see [ForWriting]. It reports
// false after Close.
func (m *RWMutex) Writable() bool {
	m.mustBeOpened()
	if m.state.Load()&closedBit != 0 {
		return false
	}
	e := m.e
	if m.rm != nil {
		e = m.rm.heldEntry()
	}
	return fileWritable(e.file)
}

// File returns an open file of the lock file, through which the lock's
// holder may read and write content (see [RWMutex.Writable]). It is a
// descriptor of its own, which the package never locks or unlocks through:
// closing it does not release the lock or disturb any handle, and the next
// File call returns a new one. Otherwise the package closes it when the
// process's last handle on the file is closed; File returns nil after Close
// (and if the process is out of descriptors).
//
// All handles of the process on the same file get the same *os.File, with
// one offset: use ReadAt and WriteAt (or [io.NewSectionReader]), never Seek
// followed by Read or Write, except under the write lock. For a file
// replaced as a whole by its writers, see [Update] instead.
//
// On flock(2) platforms, called while the process holds the lock, File
// returns a descriptor of the open file that carries the lock, however the
// lock was taken (a lock granted after a wait in the kernel is on a
// descriptor of its own until File moves it, with dup2, onto the file's),
// so that a child process that inherits it inherits the lock; the move
// resets the offset. To hand the lock to a child, call File after the lock
// is acquired: a result from before may be of a descriptor that does not
// carry it. On fcntl platforms (AIX, Solaris, the flock_fcntl
// tag) the OS releases the process's lock when any descriptor of the file
// is closed, this one included: there, closing it while the lock is held
// leaves the lock released for other processes though the handle still
// counts it held; nothing else goes wrong.
//
// With [RemoveOnUnlock] each write lock may be on a new file: File returns
// the file of the lock the handle holds (or of its next lock, if it holds
// none), and a file it returned earlier may be of a file that was removed,
// and is closed once no handle refers to that file any more. Call File
// again after each acquisition.
func (m *RWMutex) File() *os.File {
	m.mustBeOpened()
	if m.state.Load()&closedBit != 0 {
		return nil
	}
	if m.rm != nil {
		return m.rm.heldEntry().carryingFile()
	}
	return m.e.carryingFile()
}

// Lock locks m for writing, waiting as long as it takes for every other
// holder, in this process or another, to release it.
//
// Lock panics if m has been closed, or if the OS fails the lock for a reason
// other than contention (for example ENOLCK from an NFS server without a
// lock manager): a sync.Locker cannot return an error. Use LockContext to
// get such errors returned.
func (m *RWMutex) Lock() {
	m.mustBeOpened()
	if _, err := m.acquire(m.state.Add(busyUnit), nil, exclusive, true); err != nil {
		panic(err)
	}
	m.writer.Store(true) // busyUnit stays until Unlock
}

// RLock locks m for reading. It waits while a writer holds the lock or, in
// this process, waits for it. It panics in the cases Lock does.
func (m *RWMutex) RLock() {
	// rlock's join, by hand: there is no context to check. Short enough
	// to be inlined, with rlockOrPanic kept out of line.
	if n := m.state.Add(readUnit); n&joinMask != admittedBit {
		m.rlockOrPanic(n)
	}
}

// rlockOrPanic is RLock's slow path.
//
//go:noinline
func (m *RWMutex) rlockOrPanic(n int64) {
	if _, err := m.rlockSlow(n, nil, true); err != nil {
		panic(err)
	}
}

// LockContext locks m for writing, waiting until it can or ctx is done.
//
// If ctx is done before the lock is acquired, LockContext returns an error
// wrapping ctx.Err() (so errors.Is(err, context.Canceled) or
// context.DeadlineExceeded holds) and holds nothing: it does not acquire
// even if the lock is free when it is called with a ctx already done. If the
// OS wait in the kernel outlives the call, a background goroutine of the
// package finishes it and hands the lock to the next waiter of this process
// or releases it the moment it is granted.
//
// Where the platform can tell (see Holders), the text of that error names
// who held the lock when the call gave up, at most three holders:
//
//	lock /var/lock/x: context deadline exceeded (held by pid 4242 "backup.sh", exclusive)
//
// The lookup is made on that path only, and the call does not wait for
// it: it starts when the call gives up and runs in the background (on
// Linux a read of /proc/locks can take the kernel 10 ms and more), and the
// error's Error method waits for it to end; calls on the same file that
// give up meanwhile share it. If it fails or finds nobody, the text is the
// plain one.
//
// Any other error is an *fs.PathError naming the file; after Close it wraps
// os.ErrClosed. As the context package asks, do not pass a nil ctx; a nil
// ctx is taken as one that never ends (Lock's behaviour, with errors
// returned instead of panics).
func (m *RWMutex) LockContext(ctx context.Context) error {
	_, err := m.lock(ctx, exclusive, true)
	return m.namingHolders(ctx, err)
}

// RLockContext locks m for reading, waiting until it can or ctx is done. It
// reports errors as LockContext does.
func (m *RWMutex) RLockContext(ctx context.Context) error {
	_, err := m.lock(ctx, shared, true)
	return m.namingHolders(ctx, err)
}

// namingHolders makes err, the *fs.PathError of a lock call that gave up
// because ctx ended, name the lock's holders (see withHolders). The
// package's own waits, whose errors nobody reads, call lock instead.
func (m *RWMutex) namingHolders(ctx context.Context, err error) error {
	if pe, ok := err.(*fs.PathError); ok && ctx != nil && pe.Err == ctx.Err() {
		pe.Err = m.withHolders(ctx, pe.Err)
	}
	return err
}

// TryLock tries to lock m for writing without waiting. It returns true, nil
// if it acquired the lock, false, nil if the lock is held (or waited for) by
// another goroutine or process, and false with an error if the attempt
// failed for another reason.
func (m *RWMutex) TryLock() (bool, error) {
	return m.lock(nil, exclusive, false)
}

// TryRLock tries to lock m for reading without waiting. Like TryLock it
// reports contention as false, nil. It fails while a writer of this process
// waits, as sync.RWMutex.TryRLock does.
func (m *RWMutex) TryRLock() (bool, error) {
	return m.lock(nil, shared, false)
}

func (m *RWMutex) lock(ctx context.Context, mode lockMode, wait bool) (bool, error) {
	if mode == shared {
		return m.rlock(ctx, wait)
	}
	m.mustBeOpened()
	ok, err := m.acquire(m.state.Add(busyUnit), ctx, exclusive, wait)
	if ok {
		m.writer.Store(true) // busyUnit stays until Unlock
	}
	return ok, err
}

// acquire takes a lock in mode from the entry (or, with RemoveOnUnlock,
// the file now at the path) for a goroutine that counts itself busy
// meanwhile: its caller added the busyUnit, and n is the state after the
// addition. On success the busyUnit stays for the caller to settle, on
// failure it goes.
//
// Callers add the busyUnit themselves rather than through a helper, lockOS
// tries an ungated lock itself, and Unlock calls the entry's unlock
// directly: where the kernel clears the CPU's return-address predictor on
// a system call's way back (Spectre-class mitigations), each frame between
// Lock and the call costs some 7 ns on return (BenchmarkRawFlockDepth),
// which is much of what the gate adds to an uncontended Lock+Unlock.
func (m *RWMutex) acquire(n int64, ctx context.Context, mode lockMode, wait bool) (bool, error) {
	if n&closedBit != 0 {
		m.state.Add(-busyUnit)
		return false, m.pathError("lock", os.ErrClosed)
	}
	var ok bool
	var err error
	if m.rm != nil {
		ok, err = m.rm.lock(m.path, ctx, mode, wait)
	} else {
		ok, err = m.e.lock(ctx, mode, wait)
	}
	if !ok {
		m.state.Add(-busyUnit)
		if err != nil {
			err = m.pathError("lock", err)
		}
	}
	return ok, err
}

// rlock takes a read lock: by joining the read admission the handle's
// readers already hold, with one atomic addition, if the handle is
// admitted and the entry lets readers join (its fast path is open: no
// writer of the process holds or waits, and the process holds the OS
// shared lock), both of which the addition's result tells once the handle
// follows the entry (before that, its bit says closed); else on the slow
// path. A closed handle is never admitted (Close succeeds only when
// nothing is held).
func (m *RWMutex) rlock(ctx context.Context, wait bool) (bool, error) {
	if ctx != nil && ctx.Err() != nil {
		// Acquire nothing, even what is free (the slow path says why).
		return false, m.pathError("lock", ctx.Err())
	}
	n := m.state.Add(readUnit)
	if n&joinMask == admittedBit {
		return true, nil
	}
	return m.rlockSlow(n, ctx, wait)
}

// rlockSlow gets a read admission from the entry for a reader whose
// addition to the handle's count (n is the state after it) did not join
// one.
//
// If the entry lets readers join without a system call, the reader takes
// an admission from it there and then, its addition standing: it does not
// wait, and the count keeps Close away meanwhile. So a reader alone on its
// handle, beside readers of other handles, locks with three atomic
// operations. Otherwise the addition is undone first (turned into the
// busyUnit acquire counts under): a reader that waits must not count, or it
// would keep the handle's admission from going back while the entry's
// writers, which it queues behind, wait for it to go.
func (m *RWMutex) rlockSlow(n int64, ctx context.Context, wait bool) (bool, error) {
	if m.e == nil && m.rm == nil {
		m.state.Add(-readUnit) // so that RUnlock panics as well
		m.mustBeOpened()
	}
	if n&(closedBit|admittedBit) == admittedBit && m.rm == nil {
		m.askToFollow()
	}
	if n&closedBit == 0 && m.rm == nil && m.e.joinReaders() {
		m.installAdmission(0)
		return true, nil
	}
	// Undo the addition and count as busy in one step. If the count is
	// zero then while the handle is admitted (another reader of it got the
	// admission meanwhile and left), ours was the count that kept it: give
	// it back, as the last RUnlock would.
	if n = m.state.Add(busyUnit - readUnit); n < 0 {
		panic("flock: RUnlock of unlocked RWMutex " + m.path) // by another goroutine, meanwhile
	}
	if err := m.giveBack(n); err != nil {
		m.state.Add(-busyUnit)
		return false, m.pathError("unlock", err)
	}
	ok, err := m.acquire(n, ctx, shared, wait)
	if !ok {
		return false, err
	}
	if m.rm != nil {
		// Every read lock has an admission of its own.
		m.state.Add(readUnit - busyUnit)
		return true, nil
	}
	m.installAdmission(readUnit - busyUnit)
	return true, nil
}

// askToFollow makes the handle follow its entry's fast path (see
// follower) when a reader finds the handle admitted but could not join its
// admission: its readers overlap, so later ones may join with one addition.
// The entry's mutex is taken for it while the entry has room, and when
// full only at every askEvery-th ask, when an idle follower may give up
// its place; readers of a handle refused meanwhile take the slow path. The
// caller's count is in the state, so Close cannot run meanwhile.
func (m *RWMutex) askToFollow() {
	f := &m.follow
	if f.linked.Load() {
		return // the fast path is closed
	}
	if f.asks.Add(1)%askEvery != 1 && m.e.nfollowers.Load() >= maxFollowers {
		return
	}
	m.e.follow(f)
}

// askEvery is how many asks to follow (see askToFollow) of a handle refused
// by a full entry make one that takes the entry's mutex.
const askEvery = 64

// installAdmission makes the read admission a reader got from the entry
// the handle's, adding delta to the state with it (the reader's count, if
// not in it yet, less the busyUnit it acquired under).
func (m *RWMutex) installAdmission(delta int64) {
	for {
		n := m.state.Load()
		if n&admittedBit == 0 {
			if m.state.CompareAndSwap(n, n|admittedBit+delta) {
				return
			}
			continue
		}
		// The handle got an admission meanwhile (another reader of it):
		// keep to that one and give ours back. Ours is not the entry's
		// last, so that releases no OS lock and cannot fail.
		if m.state.CompareAndSwap(n, n+delta) {
			m.e.unlock(shared)
			return
		}
	}
}

// Unlock releases a write lock taken through m. It panics if m is not
// locked for writing, as sync.RWMutex does, or if the OS refuses to release
// the lock (which only happens if the file was closed behind the package's
// back, through File). With SyncOnUnlock it first flushes the file.
func (m *RWMutex) Unlock() {
	if !m.writer.CompareAndSwap(true, false) {
		m.mustBeOpened()
		if m.state.Load() >= readUnit {
			panic("flock: Unlock of RWMutex " + m.path + " locked for reading only (RUnlock releases a read lock)")
		}
		panic("flock: Unlock of unlocked RWMutex " + m.path)
	}
	if m.syncOnUnlock {
		if err := syncFile(m.File()); err != nil {
			m.keepError("sync", err)
		}
	}
	var err error
	if m.rm == nil {
		err = m.e.unlock(exclusive)
	} else {
		err = m.unlockRemoving(exclusive)
	}
	m.state.Add(-busyUnit)
	if err != nil {
		panic(m.pathError("unlock", err))
	}
}

// RUnlock releases one read lock taken through m. It panics if m holds no
// read lock, as sync.RWMutex does, or if the OS refuses to release the lock.
func (m *RWMutex) RUnlock() {
	// Unless the count reached zero, others of the handle still read on
	// its admission.
	if n := m.state.Add(-readUnit); n < m.readFloor {
		m.runlockSlow(n)
	}
}

func (m *RWMutex) runlockSlow(n int64) {
	if n < 0 {
		m.state.Add(readUnit)
		m.mustBeOpened()
		if m.writer.Load() {
			panic("flock: RUnlock of RWMutex " + m.path + " locked for writing (Unlock releases the write lock)")
		}
		panic("flock: RUnlock of unlocked RWMutex " + m.path)
	}
	var err error
	if m.rm != nil {
		err = m.unlockRemoving(shared) // every read lock has its own admission
	} else {
		err = m.giveBack(n)
	}
	if err != nil {
		panic(m.pathError("unlock", err))
	}
}

// giveBack gives the handle's read admission back to the entry if the
// count is still zero and the handle still admitted (n is the state after
// the caller's subtraction); if a reader joined meanwhile, the admission
// stays for it, and whoever brings the count to zero next gives it back. A
// Close racing with the last RUnlock may drop the entry first; that is
// harmless, since a dropped entry holds no OS lock and settling it makes no
// system call.
func (m *RWMutex) giveBack(n int64) error {
	for n < readUnit && n&admittedBit != 0 {
		if m.state.CompareAndSwap(n, n&^admittedBit) {
			return m.e.unlock(shared)
		}
		n = m.state.Load()
	}
	return nil
}

func (m *RWMutex) unlockRemoving(mode lockMode) error {
	removeErr, err := m.rm.unlock(mode, m.path)
	if removeErr != nil {
		m.keepError("remove", removeErr)
	}
	return err
}

// keepError keeps the first error that Unlock cannot return, for Close.
func (m *RWMutex) keepError(op string, err error) {
	m.laterErrOnce.Do(func() { m.laterErr = m.pathError(op, err) })
}

// RLocker returns a sync.Locker whose Lock and Unlock call m.RLock and
// m.RUnlock.
func (m *RWMutex) RLocker() sync.Locker {
	m.mustBeOpened()
	return (*rlocker)(m)
}

type rlocker RWMutex

func (r *rlocker) Lock() { (*RWMutex)(r).RLock() }

func (r *rlocker) Unlock() { (*RWMutex)(r).RUnlock() }

// Close releases the handle. It fails with an error wrapping ErrLocked, and
// changes nothing, while a lock taken through m is held or a goroutine is
// acquiring one through it. After Close, LockContext, RLockContext,
// TryLock, TryRLock and Close fail with an error wrapping os.ErrClosed, Lock
// and RLock panic with it, File returns nil, and Unlock and RUnlock panic as
// they do on any handle that holds nothing (a closed handle holds nothing).
// The lock file stays open while other handles in the process refer to it.
// Close does not remove the file. It returns the first error that Unlock
// could not return (from SyncOnUnlock or RemoveOnUnlock), if any.
//
// Close refuses rather than unlocking because any goroutine may unlock, as
// with sync.RWMutex: a lock held through the handle may belong to another
// goroutine that is still inside its critical section, and releasing it
// under that goroutine would break exclusion silently, which is worse than
// a handle kept open. So `defer m.Close()` must not drop the error if the
// handle may still be locked then: unlock first (defers run last in, first
// out: defer m.Close() before defer m.Unlock()).
func (m *RWMutex) Close() error {
	m.mustBeOpened()
	for {
		n := m.state.Load()
		if n&closedBit != 0 {
			return m.pathError("close", os.ErrClosed)
		}
		if n&^fastClosedBit != 0 {
			return m.pathError("close", ErrLocked)
		}
		// The bit stays: the entry may flip it until unfollow.
		if m.state.CompareAndSwap(n, n|closedBit) {
			break
		}
	}
	e := m.e
	if m.rm != nil {
		e = m.rm.cur
	} else if m.follow.linked.Load() {
		e.unfollow(&m.follow)
	}
	err := registry.release(e)
	if err != nil {
		err = m.pathError("close", err)
	}
	if m.laterErr != nil {
		err = errors.Join(m.laterErr, err)
	}
	return err
}

// mustBeOpened panics, with a message that says so, if m is not a handle
// Open returned (the zero RWMutex, or a copy of one).
func (m *RWMutex) mustBeOpened() {
	if m.e == nil && m.rm == nil {
		panic("flock: RWMutex used without Open (the zero value is not usable; call flock.Open)")
	}
}

// pathError names the handle's path in err, once: an *fs.PathError that
// names it already is returned as it is.
func (m *RWMutex) pathError(op string, err error) error {
	if pe, ok := err.(*fs.PathError); ok && pe.Path == m.path {
		return pe
	}
	return &fs.PathError{Op: op, Path: m.path, Err: err}
}
