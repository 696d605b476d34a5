package etcdlock

// Holding a key: acquire (create the key, wait for the keys ahead of it,
// re-read it after every wait), the watch that reports its loss, and its
// release. One file (just over the usual length): each step re-checks
// what the one before left, and they are read together.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	kindWrite = 'w'
	kindRead  = 'r'
)

// A hold is one key of the handle: a write hold, or the read key shared by
// the handle's readers.
type hold struct {
	key  string
	rev  int64 // the key's create revision: the fencing token
	sess *session

	lost     chan struct{}
	lostOnce sync.Once
	lostErr  error // why it was lost before release, under lostOnce

	stop context.CancelFunc // stops the watcher
	done chan struct{}      // closed when the watcher has returned

	mu      sync.Mutex
	writers map[string]bool // read key: writers of other handles queued behind it
}

// markLost closes lost; why is nil for a release.
func (h *hold) markLost(why error) {
	h.lostOnce.Do(func() {
		h.lostErr = why
		close(h.lost)
	})
}

func (h *hold) joinable() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.lost:
		return false
	default:
	}
	return len(h.writers) == 0
}

// errClientClosed is the error of a wait whose client was closed under it.
var errClientClosed = errors.New("etcd client closed")

// ownKey reports whether key is a lock key of this name (not of a nested
// name) and its kind.
func (m *RWMutex) ownKey(key []byte) (byte, bool) {
	if len(key) != len(m.prefix)+2+16 || string(key[:len(m.prefix)]) != m.prefix {
		return 0, false
	}
	rest := key[len(m.prefix):]
	if (rest[0] != kindWrite && rest[0] != kindRead) || rest[1] != '/' {
		return 0, false
	}
	for _, c := range rest[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, false
		}
	}
	return rest[0], true
}

// blockers returns the keys among kvs that a key of kind created at rev
// waits for: every older key for a writer, every older writer key for a
// reader.
func (m *RWMutex) blockers(kvs []*mvccpb.KeyValue, kind byte, rev int64) map[string]bool {
	b := make(map[string]bool)
	for _, kv := range kvs {
		k, ok := m.ownKey(kv.Key)
		if !ok || kv.CreateRevision >= rev {
			continue
		}
		if kind == kindWrite || k == kindWrite {
			b[string(kv.Key)] = true
		}
	}
	return b
}

func (m *RWMutex) rangeOpts() []clientv3.OpOption {
	return []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)}
}

// acquire queues a key of kind and waits until it holds the lock (or, with
// try, gives up at once with errWouldBlock if it does not hold it at once).
// On any error the key is gone, or the session was abandoned so the key
// expires with the lease.
func (m *RWMutex) acquire(ctx context.Context, kind byte, try bool) (*hold, error) {
	h, err := m.acquireOnce(ctx, kind, try)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) && ctx.Err() == nil {
		// The lease was revoked or expired before the handle noticed:
		// the session is lost now; try once more on a new lease.
		h, err = m.acquireOnce(ctx, kind, try)
	}
	return h, err
}

func (m *RWMutex) acquireOnce(ctx context.Context, kind byte, try bool) (*hold, error) {
	if err := m.client.Ctx().Err(); err != nil {
		return nil, errors.New("etcd client is closed")
	}
	s, err := m.session(ctx)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s%c/%016x", m.prefix, kind, int64(s.id))
	octx, cancel := m.opCtx(ctx)
	resp, err := m.client.Txn(octx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, "", clientv3.WithLease(s.id)), clientv3.OpGet(m.prefix, m.rangeOpts()...)).
		Commit()
	cancel()
	if err != nil {
		// The put may have been applied (or may still be): give the
		// lease up. Revoking it deletes the key, and a put still in
		// flight fails once the lease is gone. If the caller's ctx
		// ended, wait for the revoke (bounded by the operation
		// timeout), so that no waiter key is left when it returns. (If etcd says the lease is gone, the session is lost
		// all the same.)
		s.abandon()
		if ctx.Err() != nil && !try {
			<-s.done
		}
		return nil, &opError{"queue key", err}
	}
	if !resp.Succeeded {
		s.abandon()
		return nil, fmt.Errorf("queue key: %s already exists (lease reused)", key)
	}
	h := &hold{key: key, rev: resp.Header.Revision, sess: s, lost: make(chan struct{}), done: make(chan struct{})}
	blockers := m.blockers(resp.Responses[1].GetResponseRange().Kvs, kind, h.rev)
	if len(blockers) == 0 {
		// The transaction itself put the key, at this revision: no
		// re-read is needed.
		m.watchHold(h, kind, resp.Header.Revision+1)
		return h, nil
	}
	if try {
		m.drop(h)
		return nil, errWouldBlock
	}
	if err := m.wait(ctx, h, kind, blockers, resp.Header.Revision+1); err != nil {
		m.drop(h)
		if errors.Is(err, ErrLost) {
			// The key vanished: most likely the lease is gone too.
			// Nothing else of the handle uses the session now (the
			// gate), so start afresh on a new lease next time.
			s.abandon()
		}
		return nil, err
	}
	// Re-read the own key: a waiter whose key vanished during the wait
	// (its lease was revoked or expired) must not believe it holds the
	// lock (etcd issue 16221).
	octx, cancel = m.opCtx(ctx)
	from, present, err := m.recheck(octx, h, kind)
	cancel()
	if err != nil {
		m.drop(h)
		return nil, &opError{"re-read own key", err}
	}
	if !present {
		s.abandon()
		return nil, fmt.Errorf("own key %s vanished while waiting: %w", key, ErrLost)
	}
	if s.isLost() {
		m.drop(h)
		return nil, fmt.Errorf("lease lost while waiting: %w", ErrLost)
	}
	m.watchHold(h, kind, from)
	return h, nil
}

// recheck reads whether h's key is still there, in its incarnation, and
// returns the revision to watch from after that read. For a read key it
// reads the whole prefix, and records the writers of other handles queued
// behind the key (created after it) as they are now: the watch that notes
// them from then on cannot see those queued before it started (while the
// reader waited, or while a broken watch was down).
func (m *RWMutex) recheck(ctx context.Context, h *hold, kind byte) (from int64, present bool, err error) {
	if kind == kindWrite {
		g, err := m.client.Get(ctx, h.key)
		if err != nil {
			return 0, false, err
		}
		return g.Header.Revision + 1, len(g.Kvs) == 1 && g.Kvs[0].CreateRevision == h.rev, nil
	}
	g, err := m.client.Get(ctx, m.prefix, m.rangeOpts()...)
	if err != nil {
		return 0, false, err
	}
	writers := make(map[string]bool)
	for _, kv := range g.Kvs {
		if string(kv.Key) == h.key {
			present = kv.CreateRevision == h.rev
			continue
		}
		if k, ok := m.ownKey(kv.Key); ok && k == kindWrite && kv.CreateRevision > h.rev {
			writers[string(kv.Key)] = true
		}
	}
	h.mu.Lock()
	h.writers = writers
	h.mu.Unlock()
	return g.Header.Revision + 1, present, nil
}

// wait returns when every key in blockers is deleted, from a watch of the
// prefix from revision from on.
func (m *RWMutex) wait(ctx context.Context, h *hold, kind byte, blockers map[string]bool, from int64) error {
	for {
		err := m.watchDeletes(ctx, h, blockers, from)
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrLost) || errors.Is(err, errClientClosed) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		// The watch failed (compaction, or a broken stream): take the
		// state again and watch from there.
		octx, cancel := m.opCtx(ctx)
		resp, gerr := m.client.Get(octx, m.prefix, m.rangeOpts()...)
		cancel()
		if gerr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if h.sess.isLost() {
				return fmt.Errorf("lease lost while waiting: %w", ErrLost)
			}
			if !pause(ctx) {
				return ctx.Err()
			}
			continue
		}
		found := false
		for _, kv := range resp.Kvs {
			if string(kv.Key) == h.key && kv.CreateRevision == h.rev {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("own key %s vanished while waiting: %w", h.key, ErrLost)
		}
		blockers = m.blockers(resp.Kvs, kind, h.rev)
		if len(blockers) == 0 {
			return nil
		}
		from = resp.Header.Revision + 1
	}
}

func (m *RWMutex) watchDeletes(ctx context.Context, h *hold, blockers map[string]bool, from int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := m.client.Watch(wctx, m.prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
	for {
		select {
		case <-h.sess.lost:
			return fmt.Errorf("lease lost while waiting: %w", ErrLost)
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				if m.client.Ctx().Err() != nil {
					// Nothing more can be asked of a closed client
					// (its requests retry for seconds): give up now.
					return errClientClosed
				}
				if !ok {
					return errors.New("watch closed")
				}
				return wr.Err()
			}
			for _, ev := range wr.Events {
				if ev.Type != mvccpb.DELETE {
					continue
				}
				k := string(ev.Kv.Key)
				if k == h.key {
					return fmt.Errorf("own key %s deleted while waiting: %w", h.key, ErrLost)
				}
				delete(blockers, k)
			}
			if len(blockers) == 0 {
				return nil
			}
		}
	}
}

// watchHold starts the goroutine that closes h.lost when the key is
// deleted or the session is lost, and that notes writers queueing behind a
// read key.
func (m *RWMutex) watchHold(h *hold, kind byte, from int64) {
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		defer close(h.done)
		for {
			err := m.watchHoldOnce(ctx, h, kind, from)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				h.markLost(err)
				return
			}
			// The watch broke: check the key is still there (and,
			// for a read key, which writers queue behind it now) and
			// watch again from the revision of that check.
			for {
				octx, ocancel := m.opCtx(ctx)
				next, present, gerr := m.recheck(octx, h, kind)
				ocancel()
				if ctx.Err() != nil {
					return
				}
				if gerr == nil {
					if !present {
						h.markLost(fmt.Errorf("key %s deleted: %w", h.key, ErrLost))
						return
					}
					from = next
					break
				}
				if h.sess.isLost() {
					h.markLost(fmt.Errorf("lease lost: %w", ErrLost))
					return
				}
				if !pause(ctx) {
					return
				}
			}
		}
	}()
}

// watchHoldOnce returns nil if the watch broke and may be restarted, an
// error if the hold is lost.
func (m *RWMutex) watchHoldOnce(ctx context.Context, h *hold, kind byte, from int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wch clientv3.WatchChan
	if kind == kindWrite {
		wch = m.client.Watch(wctx, h.key, clientv3.WithRev(from))
	} else {
		wch = m.client.Watch(wctx, m.prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.sess.lost:
			return fmt.Errorf("lease lost: %w", ErrLost)
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				if m.client.Ctx().Err() != nil {
					return errClientClosed
				}
				return nil
			}
			for _, ev := range wr.Events {
				if string(ev.Kv.Key) == h.key {
					if ev.Type == mvccpb.DELETE {
						return fmt.Errorf("key %s deleted: %w", h.key, ErrLost)
					}
					continue
				}
				if k, ok := m.ownKey(ev.Kv.Key); ok && k == kindWrite {
					// A writer queued after the read key: new readers
					// of the handle stop joining until it is gone.
					h.mu.Lock()
					if ev.Type == mvccpb.PUT && ev.Kv.CreateRevision > h.rev {
						if h.writers == nil {
							h.writers = make(map[string]bool)
						}
						h.writers[string(ev.Kv.Key)] = true
					} else if ev.Type == mvccpb.DELETE {
						delete(h.writers, string(ev.Kv.Key))
					}
					h.mu.Unlock()
				}
			}
		}
	}
}

// release deletes the hold's key if it is still the same incarnation
// (etcd issue 22082: never by name alone) and reports whether the hold was
// intact.
func (m *RWMutex) release(ctx context.Context, h *hold) error {
	h.stop()
	<-h.done
	h.markLost(nil)
	octx, cancel := m.opCtx(ctx)
	defer cancel()
	resp, err := m.client.Txn(octx).
		If(clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)).
		Then(clientv3.OpDelete(h.key)).
		Commit()
	if err != nil {
		h.sess.abandon()
		return &opError{"delete key (the lease is abandoned: the key expires with it)", err}
	}
	if !resp.Succeeded {
		return fmt.Errorf("key %s was already gone: %w", h.key, ErrLost)
	}
	if h.lostErr != nil {
		return fmt.Errorf("hold was lost before release (%v): %w", h.lostErr, ErrLost)
	}
	return nil
}

// drop deletes the key of a waiter that gives up, with a context of its
// own (the caller's may be done); if etcd cannot be reached it abandons the
// session.
func (m *RWMutex) drop(h *hold) {
	if m.client.Ctx().Err() != nil {
		// A closed client cannot delete anything: the key goes with the
		// lease.
		h.sess.abandon()
		return
	}
	ctx, cancel := m.opCtx(context.Background())
	defer cancel()
	_, err := m.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)).
		Then(clientv3.OpDelete(h.key)).
		Commit()
	if err != nil {
		h.sess.abandon()
	}
}

// pause waits a little before a request is retried; false if ctx ended.
func pause(ctx context.Context) bool {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
