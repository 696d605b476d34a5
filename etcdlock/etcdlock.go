// Package etcdlock provides a reader/writer lock with the shape of
// github.com/go-flock/flock's RWMutex, shared by every goroutine of every
// process on every machine that talks to one etcd cluster.
//
// A lock is a name. Each holder or waiter owns one key under "name/",
// "name/w/<lease>" for a writer and "name/r/<lease>" for readers, attached
// to the handle's etcd lease. Keys are ordered by their create revision: a
// writer holds the lock when no key created before its own remains, a reader
// when no writer key created before its own remains. So a waiting writer
// blocks readers that arrive after it, in any process. Waits are driven by
// an etcd watch, never by polling.
//
// # Within a process
//
// An RWMutex may be used by any number of goroutines. They pass an
// in-process first-in-first-out reader/writer gate first: a
// golang.org/x/sync/semaphore.Weighted of N tokens, where a reader takes one
// and a writer all N — the reference design that the flock package's
// design names for its slow path (the flock package's own gate is not
// exported and is tied to its OS lock state, so it is not shared). The
// readers of one handle share one read key: the first reader creates it,
// later readers join it without a round trip, the last one out deletes it.
// They stop joining while a writer of another handle is queued behind the
// key (the hold's watch sees it), so a stream of local readers cannot starve
// remote writers. Two handles
// on the same name, in one process or in two, exclude each other exactly
// like two processes do.
//
// # What changes against a file lock
//
// There is no Lock or RLock without a context: every acquisition is a
// network operation that can fail, and an error must be returned, not
// panicked. A hold can end without Unlock: when the lease expires (the
// holder was paused or cut off from etcd for longer than the TTL), when an
// operator revokes it, or when its key is deleted. RWMutex.Lost reports
// that: it is closed when the current hold is gone, or may be gone, and at
// the latest when the send time of the last acknowledged keepalive plus the
// TTL minus a margin passes, which is before etcd can have expired the lease. Nothing can stop a paused
// holder from acting on a lock it no longer has, though: a resource that must
// never see two writers has to check a fencing token, such as
// RWMutex.Token, or be written through etcd transactions guarded by
// RWMutex.Guard.
//
// Safety against etcd's known pitfalls: a waiter re-reads its own key after
// its wait, so a waiter whose lease was revoked while it waited gets an error,
// never the lock (etcd issue 16221); a release is a transaction conditioned
// on the key's create revision, so a stale, retried release never deletes a
// newer hold (etcd issue 22082); each handle has a lease of its own, so two
// handles never share a key.
package etcdlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/semaphore"
)

// gateSize is the number of tokens of the in-process gate: a reader takes
// one, a writer all of them.
const gateSize = 1 << 30

// Defaults for the options.
const (
	// DefaultTTL is the lease TTL used without WithTTL.
	DefaultTTL = 10 * time.Second
	// DefaultOpTimeout is the operation timeout used without WithOpTimeout.
	DefaultOpTimeout = 5 * time.Second
)

var (
	// ErrLost is wrapped by errors reporting that a hold, or a waiter's key,
	// is gone or may be gone: the lease was revoked or expired, or the key
	// was deleted by someone else. LockContext and RLockContext return it
	// when the waiter's key vanished during the wait; UnlockContext when the
	// hold had been lost before it was released.
	ErrLost = errors.New("lock hold lost")

	// ErrLocked is returned (wrapped) by RWMutex.Close while a lock taken
	// through the handle is held or being acquired.
	ErrLocked = errors.New("lock is held or being acquired through this handle")

	// errWouldBlock is the internal result of a try that found contention.
	errWouldBlock = errors.New("would block")
)

// An Option changes how New sets up a handle.
type Option func(*config)

type config struct {
	ttl       time.Duration
	margin    time.Duration
	marginSet bool // else the default, TTL/5
	opTimeout time.Duration
}

// maxTTL is etcd's largest lease TTL (9,000,000,000 seconds).
const maxTTL = 9_000_000_000 * time.Second

// WithTTL sets the lease TTL, rounded up to whole seconds (etcd's unit); the
// default is DefaultTTL. A holder that is paused or cut off from etcd for
// longer loses its hold, and the lock is free for others that long after a
// holder crashed. etcd raises TTLs below its own minimum (about 1.5 times
// its election timeout, 2 s by default); the TTL etcd granted is the one
// used for Lost's deadline.
func WithTTL(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// WithLossMargin sets how long before the lease can have expired on the
// server Lost is closed when keepalives stop being acknowledged: Lost closes
// at the time the last acknowledged keepalive was sent plus the TTL minus
// the margin. The margin absorbs clock rate differences and scheduling
// delays; the default is a fifth of the TTL. It must be at least zero and
// less than half the TTL.
func WithLossMargin(d time.Duration) Option {
	return func(c *config) { c.margin, c.marginSet = d, true }
}

// WithOpTimeout bounds each single request to etcd (granting the lease, the
// transaction that queues a key, re-reading it, releasing it) and each whole
// TryLock, TryRLock, Unlock and RUnlock; the default is DefaultOpTimeout. It
// does not bound the wait for other holders, which LockContext's ctx does.
func WithOpTimeout(d time.Duration) Option { return func(c *config) { c.opTimeout = d } }

// An RWMutex is a handle on a distributed reader/writer lock kept in etcd.
// It may be used by any number of goroutines; as with sync.RWMutex, a lock
// is not tied to a goroutine. Unlock and RUnlock panic if the handle holds no
// lock of that kind, as sync.RWMutex does; recursive read locking is not
// allowed (a writer queued in between would deadlock it).
//
// Its method set is flock.RWMutex's context and try methods (LockContext,
// RLockContext, TryLock, TryRLock, Unlock, RUnlock, Close) plus
// UnlockContext, Lost, Token and Guard, so one consumer-side interface
// accepts both. It has no Lock and RLock: see the package documentation.
type RWMutex struct {
	client *clientv3.Client
	name   string
	prefix string // name + "/"
	cfg    config
	gate   *semaphore.Weighted

	sessMu sync.Mutex // serialises lease grants; guards sess
	sess   *session

	mu       sync.Mutex
	closed   bool
	inflight int        // goroutines inside an acquisition
	whold    *hold      // the write hold, if any
	rd       *readState // the shared read key, if any

	bg sync.WaitGroup // background goroutines: keepalives, read acquisitions
}

// New returns a handle on the lock called name, kept in etcd through client.
// It does no I/O: the handle's lease is granted by the first acquisition.
// The name is the key prefix: keys live under name + "/". It must be
// non-empty valid UTF-8 without control characters and must not end in "/".
// Names may nest ("jobs" and "jobs/nightly" are different locks).
// The client must stay open while the handle is used; Close the handle
// before closing the client.
func New(client *clientv3.Client, name string, opts ...Option) (*RWMutex, error) {
	if client == nil {
		return nil, errors.New("etcdlock.New: nil *clientv3.Client")
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	if client.Ctx().Err() != nil {
		return nil, fmt.Errorf("etcdlock.New %q: etcd client is closed: %w", name, client.Ctx().Err())
	}
	cfg := config{ttl: DefaultTTL, opTimeout: DefaultOpTimeout}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.ttl <= 0 || cfg.ttl > maxTTL {
		return nil, fmt.Errorf("etcdlock.New %q: TTL %v is not between 1s and etcd's largest, %v", name, cfg.ttl, maxTTL)
	}
	cfg.ttl = (cfg.ttl + time.Second - 1).Truncate(time.Second)
	switch {
	case !cfg.marginSet:
		cfg.margin = cfg.ttl / 5
	case cfg.margin < 0:
		return nil, fmt.Errorf("etcdlock.New %q: loss margin %v is negative", name, cfg.margin)
	}
	if cfg.margin >= cfg.ttl/2 {
		return nil, fmt.Errorf("etcdlock.New %q: loss margin %v is not less than half the TTL %v", name, cfg.margin, cfg.ttl)
	}
	if cfg.opTimeout <= 0 {
		return nil, fmt.Errorf("etcdlock.New %q: operation timeout %v is not positive", name, cfg.opTimeout)
	}
	return &RWMutex{
		client: client,
		name:   name,
		prefix: name + "/",
		cfg:    cfg,
		gate:   semaphore.NewWeighted(gateSize),
	}, nil
}

func checkName(name string) error {
	bad := func(why string) error { return fmt.Errorf("etcdlock.New: invalid lock name %q: %s", name, why) }
	switch {
	case name == "":
		return bad("empty")
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case strings.HasSuffix(name, "/"):
		return bad(`ends in "/"`)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return bad("contains a control character")
	}
	return nil
}

// Name returns the lock's name, as given to New.
func (m *RWMutex) Name() string { return m.name }

func (m *RWMutex) errf(op string, err error) error {
	return fmt.Errorf("etcdlock: %s %q: %w", op, m.name, err)
}

// enter registers an acquisition in progress, failing after Close.
func (m *RWMutex) enter(op string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return m.errf(op, os.ErrClosed)
	}
	m.inflight++
	return nil
}

func (m *RWMutex) leave() {
	m.mu.Lock()
	m.inflight--
	m.mu.Unlock()
}

// opCtx bounds one request by the operation timeout as well as by ctx.
func (m *RWMutex) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.cfg.opTimeout)
}

// LockContext locks m for writing, waiting until every earlier holder and
// waiter, in any process, is gone, or until ctx is done.
//
// If ctx ends first, it returns an error wrapping ctx.Err() and holds
// nothing: its waiter key has been deleted when it returns (or, if etcd
// could not be reached to delete it, the handle's lease is abandoned, so
// the key expires with it). It does not acquire if ctx is already done. Each
// request to etcd is also bounded by the operation timeout, and the wait
// fails with an error wrapping ErrLost if the handle's lease is lost
// meanwhile. A nil ctx is taken as one that never ends.
func (m *RWMutex) LockContext(ctx context.Context) error {
	_, err := m.lock(ctx, false)
	return err
}

// TryLock tries to lock m for writing without waiting for other holders.
// It returns true, nil if it acquired the lock; false, nil if the lock is
// held or waited for by another goroutine of the handle or by another
// handle; false and an error if etcd could not answer within the operation
// timeout, or for another reason.
func (m *RWMutex) TryLock() (bool, error) { return m.lock(nil, true) }

func (m *RWMutex) lock(ctx context.Context, try bool) (bool, error) {
	const op = "lock"
	if err := m.enter(op); err != nil {
		return false, err
	}
	defer m.leave()
	if try {
		if !m.gate.TryAcquire(gateSize) {
			return false, nil
		}
		var cancel context.CancelFunc
		ctx, cancel = m.opCtx(context.Background())
		defer cancel()
	} else {
		if ctx == nil {
			ctx = context.Background()
		}
		if err := ctx.Err(); err != nil {
			return false, m.errf(op, err)
		}
		if err := m.gate.Acquire(ctx, gateSize); err != nil {
			return false, m.errf(op, err)
		}
	}
	h, err := m.acquire(ctx, kindWrite, try)
	if err != nil {
		m.gate.Release(gateSize)
		if errors.Is(err, errWouldBlock) {
			return false, nil
		}
		return false, m.errf(op, err)
	}
	m.mu.Lock()
	m.whold = h
	m.mu.Unlock()
	return true, nil
}

// Unlock releases the write lock held through m. It panics if m holds no
// write lock. The release is best effort, bounded by the operation timeout:
// if etcd cannot be reached, the handle's lease is abandoned (no longer kept
// alive), and etcd releases the lock when it expires, at most the TTL later.
// Use UnlockContext to learn whether the release, and the hold, succeeded.
func (m *RWMutex) Unlock() { _ = m.unlock(context.Background()) }

// UnlockContext releases the write lock held through m, as Unlock does, and
// reports what happened: nil if the hold was intact until it was released;
// an error wrapping ErrLost if it had been lost before (Lost was closed, or
// the key was already gone: the critical section may not have been
// exclusive); another error if etcd could not be reached within ctx and the
// operation timeout (the lock is then released by lease expiry). It panics if
// m holds no write lock. Whatever it returns, m no longer holds the lock.
func (m *RWMutex) UnlockContext(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	return m.unlock(ctx)
}

func (m *RWMutex) unlock(ctx context.Context) error {
	m.mu.Lock()
	h := m.whold
	if h == nil {
		m.mu.Unlock()
		panic("etcdlock: Unlock of unlocked RWMutex")
	}
	m.whold = nil
	// The release is in progress until it returns: Close must not revoke
	// the lease under it (the release would find its key gone).
	m.inflight++
	m.mu.Unlock()
	err := m.release(ctx, h)
	m.leave()
	m.gate.Release(gateSize)
	if err != nil {
		return m.errf("unlock", err)
	}
	return nil
}

// Lost returns a channel that is closed when the current hold of m, write
// or read, is gone or may be gone: its key was deleted (for example the lease
// was revoked), the lease could no longer be kept alive, or no keepalive
// was acknowledged in time (closed at the send time of the last acknowledged
// keepalive plus the TTL minus the loss margin, before etcd can have expired
// the lease). It is also closed when the hold is released. With no hold it
// returns a closed channel. Call it after acquiring, once per hold.
func (m *RWMutex) Lost() <-chan struct{} {
	if h := m.current(); h != nil {
		return h.lost
	}
	return closedChan
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Token returns the fencing token of the current hold: the etcd create
// revision of its key. Tokens of successive write holds strictly increase,
// across all handles and processes and across losses; readers sharing a read
// key share its token. It returns 0 with no hold. Pass it to a resource that
// remembers the highest token it saw and refuses lower ones.
func (m *RWMutex) Token() int64 {
	if h := m.current(); h != nil {
		return h.rev
	}
	return 0
}

// Guard returns a comparison for an etcd transaction that is true only while
// the current hold's key exists with the create revision it was acquired
// with: put it in the If of a Txn that writes the protected data, and the
// write is refused by etcd itself once the hold is gone, whatever the holder
// believes. With no hold it returns a comparison that is always false.
func (m *RWMutex) Guard() clientv3.Cmp {
	if h := m.current(); h != nil {
		return clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)
	}
	return clientv3.Compare(clientv3.CreateRevision(m.prefix), "=", -1)
}

func (m *RWMutex) current() *hold {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.whold != nil {
		return m.whold
	}
	if m.rd != nil && m.rd.state == stateHeld {
		return m.rd.h
	}
	return nil
}

// Close releases the handle: it stops keeping its lease alive and revokes
// it (bounded by the operation timeout). It fails with an error wrapping
// ErrLocked, and changes nothing, while a lock taken through m is held or
// being acquired. After Close, acquisitions and Close fail with an error
// wrapping os.ErrClosed. Close does not close the client.
func (m *RWMutex) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return m.errf("close", os.ErrClosed)
	}
	if m.whold != nil || m.rd != nil || m.inflight > 0 {
		m.mu.Unlock()
		return m.errf("close", ErrLocked)
	}
	m.closed = true
	m.mu.Unlock()

	m.sessMu.Lock()
	s := m.sess
	m.sess = nil
	m.sessMu.Unlock()
	var err error
	if s != nil {
		err = s.close()
	}
	m.bg.Wait()
	if err != nil {
		return m.errf("close: revoke lease", err)
	}
	return nil
}
