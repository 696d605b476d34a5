package etcdlock

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A session is one lease of a handle and the goroutine that keeps it alive.
// It is lost (lost is closed) when etcd says the lease is gone, when no
// keepalive was acknowledged before the deadline, or when the handle
// abandons it because the outcome of a request on it is unknown. A lost
// session is never used again: the next acquisition grants a new lease.
type session struct {
	id      clientv3.LeaseID
	ttl     time.Duration
	lost    chan struct{}
	once    sync.Once
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	revoked error // result of the final revoke, read after done
}

func (s *session) isLost() bool {
	select {
	case <-s.lost:
		return true
	default:
		return false
	}
}

func (s *session) markLost() { s.once.Do(func() { close(s.lost) }) }

// abandon gives the session up: it is lost at once, keepalives stop and the
// lease is revoked in the background (or expires).
func (s *session) abandon() {
	s.markLost()
	s.cancel()
}

// close abandons the session and waits for the revoke.
func (s *session) close() error {
	s.abandon()
	<-s.done
	return s.revoked
}

// session returns the handle's live session, granting a new lease if there
// is none or the last one was lost.
func (m *RWMutex) session(ctx context.Context) (*session, error) {
	m.sessMu.Lock()
	defer m.sessMu.Unlock()
	if s := m.sess; s != nil && !s.isLost() {
		return s, nil
	}
	if err := m.client.Ctx().Err(); err != nil {
		return nil, errors.New("etcd client is closed")
	}
	octx, cancel := m.opCtx(ctx)
	defer cancel()
	sent := time.Now()
	resp, err := m.client.Grant(octx, int64(m.cfg.ttl/time.Second))
	if err != nil {
		return nil, &opError{"grant lease", err}
	}
	s := &session{
		id:   resp.ID,
		ttl:  time.Duration(resp.TTL) * time.Second,
		lost: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	m.sess = s
	m.bg.Add(1)
	go m.keepAlive(s, sent.Add(s.ttl-m.cfg.margin))
	return s, nil
}

// keepAlive renews the lease every third of its TTL with one keepalive
// request at a time, and moves the loss deadline to the send time of each
// acknowledged request plus the TTL minus the margin: etcd refreshed the
// lease after that request was sent, so it cannot expire before then.
// etcd's own KeepAlive stream hides the send times, hence KeepAliveOnce.
func (m *RWMutex) keepAlive(s *session, deadline time.Time) {
	defer m.bg.Done()
	defer close(s.done)
	dl := time.NewTimer(time.Until(deadline))
	defer dl.Stop()
	interval := s.ttl / 3
	next := time.NewTimer(interval)
	defer next.Stop()
	for {
		select {
		case <-s.ctx.Done():
			s.revoke(m)
			return
		case <-dl.C:
			s.markLost()
			s.revoke(m)
			return
		case <-next.C:
		}
		sent := time.Now()
		kctx, cancel := context.WithDeadline(s.ctx, deadline)
		resp, err := m.client.KeepAliveOnce(kctx, s.id)
		cancel()
		switch {
		case err == nil:
			deadline = sent.Add(time.Duration(resp.TTL)*time.Second - m.cfg.margin)
			dl.Reset(time.Until(deadline))
			next.Reset(interval)
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			s.markLost()
			s.cancel()
			return
		case m.client.Ctx().Err() != nil:
			// The client was closed under the handle: nothing can
			// renew or revoke the lease any more.
			s.markLost()
			s.cancel()
			return
		default:
			// The deadline passed or the session was abandoned: the
			// select above decides. Retry soon otherwise.
			next.Reset(min(interval, 100*time.Millisecond))
		}
	}
}

func (s *session) revoke(m *RWMutex) {
	s.markLost()
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.opTimeout)
	defer cancel()
	if _, err := m.client.Revoke(ctx, s.id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		s.revoked = err
	}
}

// opError names the request that failed.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }
