package integration

// The lock's semantics against real servers: exclusion and reader/writer
// order, cancellation, revoked waiters (etcd 16221), stale unlocks (etcd
// 22082), Lost() on a revoke, fencing. One file (over the usual length):
// each test runs against every server kind through the same helpers.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-flock/flock"
	"github.com/go-flock/flock/etcdlock"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
)

// Locker is what a consumer that must work with a local file lock and a
// distributed lock alike can ask for.
type Locker interface {
	LockContext(ctx context.Context) error
	RLockContext(ctx context.Context) error
	TryLock() (bool, error)
	TryRLock() (bool, error)
	Unlock()
	RUnlock()
	Close() error
}

// Both lock types satisfy the one consumer-side interface.
var (
	_ Locker = (*flock.RWMutex)(nil)
	_ Locker = (*etcdlock.RWMutex)(nil)
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newMutex(t testing.TB, cli *clientv3.Client, name string, opts ...etcdlock.Option) *etcdlock.RWMutex {
	t.Helper()
	m, err := etcdlock.New(cli, name, append([]etcdlock.Option{etcdlock.WithTTL(2 * time.Second), etcdlock.WithOpTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// keys lists the lock keys under name.
func keys(t testing.TB, cli *clientv3.Client, name string) []string {
	t.Helper()
	resp, err := cli.Get(ctxT(t, 5*time.Second), name+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, kv := range resp.Kvs {
		ks = append(ks, string(kv.Key))
	}
	return ks
}

// waitKeys waits, through a watch (not polling), until name has n keys.
func waitKeys(t testing.TB, cli *clientv3.Client, name string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, name+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, kv := range resp.Kvs {
		set[string(kv.Key)] = true
	}
	wch := cli.Watch(ctx, name+"/", clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for len(set) != n {
		wr, ok := <-wch
		if !ok {
			t.Fatalf("waiting for %d keys under %s: have %v: %v", n, name, set, ctx.Err())
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut {
				set[string(ev.Kv.Key)] = true
			} else {
				delete(set, string(ev.Kv.Key))
			}
		}
	}
	var ks []string
	for k := range set {
		ks = append(ks, k)
	}
	return ks
}

// leaseOf returns the lease of a lock key (its last element, in hex).
func leaseOf(t testing.TB, key string) clientv3.LeaseID {
	t.Helper()
	id, err := strconv.ParseUint(key[strings.LastIndexByte(key, '/')+1:], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return clientv3.LeaseID(id)
}

func leakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		// Cleanups run last-in first-out: this one runs after every
		// mutex and client registered later has been closed.
		if err := goleak.Find(ignore); err != nil {
			t.Error(err)
		}
	})
}

// TestExclusionGoroutines: 8 goroutines on one handle and 4 on a second
// handle (another lease, as another process would have) doing random reads
// and writes: one writer or many readers at any instant.
func TestExclusionGoroutines(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		a, b := newMutex(t, cli, "excl"), newMutex(t, cli, "excl")
		var writers, readers, violations, maxReaders atomic.Int32
		var wg sync.WaitGroup
		deadline := time.Now().Add(3 * time.Second)
		for g := 0; g < 12; g++ {
			m := a
			if g >= 8 {
				m = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					if rand.IntN(3) == 0 {
						if err := m.LockContext(ctx); err != nil {
							t.Error(err)
							cancel()
							return
						}
						if writers.Add(1) != 1 || readers.Load() != 0 {
							violations.Add(1)
						}
						writers.Add(-1)
						m.Unlock()
					} else {
						if err := m.RLockContext(ctx); err != nil {
							t.Error(err)
							cancel()
							return
						}
						r := readers.Add(1)
						for {
							old := maxReaders.Load()
							if r <= old || maxReaders.CompareAndSwap(old, r) {
								break
							}
						}
						if writers.Load() != 0 {
							violations.Add(1)
						}
						time.Sleep(200 * time.Microsecond) // work
						readers.Add(-1)
						m.RUnlock()
					}
					cancel()
				}
			}()
		}
		within(t, 30*time.Second, "workers", wg.Wait)
		if v := violations.Load(); v != 0 {
			t.Fatalf("%d exclusion violations", v)
		}
		t.Logf("max concurrent readers %d", maxReaders.Load())
		if n := len(keys(t, cli, "excl")); n != 0 {
			t.Fatalf("%d keys left", n)
		}
	})
}

// TestReadersShareKey: 8 readers of one handle hold the lock together
// through one key; a second handle's reader adds one key.
func TestReadersShareKey(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		a, b := newMutex(t, cli, "share"), newMutex(t, cli, "share")
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := a.RLockContext(ctxT(t, 10*time.Second)); err != nil {
					t.Error(err)
				}
			}()
		}
		within(t, 10*time.Second, "8 readers", wg.Wait)
		if ks := keys(t, cli, "share"); len(ks) != 1 || !strings.Contains(ks[0], "/r/") {
			t.Fatalf("8 readers of a handle: keys %v, want one read key", ks)
		}
		tok := a.Token()
		if err := b.RLockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := len(keys(t, cli, "share")); n != 2 {
			t.Fatalf("readers of two handles: %d keys, want 2", n)
		}
		if ok, err := b.TryLock(); ok || err != nil {
			t.Fatalf("TryLock while read-held: %v, %v", ok, err)
		}
		b.RUnlock()
		for i := 0; i < 8; i++ {
			if a.Token() != tok {
				t.Fatal("token changed while readers share the key")
			}
			a.RUnlock()
		}
		if n := len(keys(t, cli, "share")); n != 0 {
			t.Fatalf("%d keys after all readers left", n)
		}
	})
}

// TestWriterBlocksLaterReaders: with a read hold in place, a writer of
// another handle queues; a reader arriving after it (a third handle) waits
// for the writer, which gets the lock first.
func TestWriterBlocksLaterReaders(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		a, w, r := newMutex(t, cli, "order"), newMutex(t, cli, "order"), newMutex(t, cli, "order")
		if err := a.RLockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		order := make(chan string, 2)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := w.LockContext(ctxT(t, 20*time.Second)); err != nil {
				t.Error(err)
				return
			}
			order <- "writer"
			w.Unlock()
		}()
		waitKeys(t, cli, "order", 2)
		go func() {
			defer wg.Done()
			if err := r.RLockContext(ctxT(t, 20*time.Second)); err != nil {
				t.Error(err)
				return
			}
			order <- "reader"
			r.RUnlock()
		}()
		waitKeys(t, cli, "order", 3)
		if ok, err := r.TryRLock(); ok || err != nil {
			t.Fatalf("TryRLock behind a waiting writer: %v, %v", ok, err)
		}
		a.RUnlock()
		within(t, 20*time.Second, "writer and reader", wg.Wait)
		close(order)
		var got []string
		for s := range order {
			got = append(got, s)
		}
		if fmt.Sprint(got) != "[writer reader]" {
			t.Fatalf("order %v, want writer first", got)
		}
	})
}

// TestCrossProcess: a child process holds the write lock; this process
// cannot get it until the child unlocks, then gets it at once.
func TestCrossProcess(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		m := newMutex(t, cli, "xproc")
		ch := startChild(t, "holder", "ETCD_ENDPOINTS="+strings.Join(c.endpoints(), ","), "LOCK_NAME=xproc")
		ch.expect("ready", 10*time.Second)
		ch.send("lock")
		ch.expect("locked", 10*time.Second)
		if ok, err := m.TryLock(); ok || err != nil {
			t.Fatalf("TryLock while a child holds: %v, %v", ok, err)
		}
		if ok, err := m.TryRLock(); ok || err != nil {
			t.Fatalf("TryRLock while a child holds: %v, %v", ok, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := m.RLockContext(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("RLockContext while a child holds: %v", err)
		}
		got := make(chan error, 1)
		go func() { got <- m.LockContext(ctxT(t, 10*time.Second)) }()
		waitKeys(t, cli, "xproc", 2)
		ch.send("unlock")
		ch.expect("unlocked <nil>", 5*time.Second)
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		m.Unlock()
		ch.send("exit")
	})
}

// TestCancel: a waiter cancelled behind a holder returns within a few ms,
// its key is gone, no goroutine is left, and the waiter behind it gets the
// lock as soon as the holder releases.
func TestCancel(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		h, w, next := newMutex(t, cli, "cancel"), newMutex(t, cli, "cancel"), newMutex(t, cli, "cancel")
		if err := h.LockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		for _, read := range []bool{false, true} {
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			var returned time.Time
			go func() {
				var err error
				if read {
					err = w.RLockContext(ctx)
				} else {
					err = w.LockContext(ctx)
				}
				returned = time.Now()
				errc <- err
			}()
			waitKeys(t, cli, "cancel", 2)
			start := time.Now()
			cancel()
			var err error
			within(t, 5*time.Second, "cancelled LockContext", func() { err = <-errc })
			took := returned.Sub(start)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled wait (read=%v): %v", read, err)
			}
			t.Logf("cancelled wait (read=%v) returned after %v", read, took)
			if took > 100*time.Millisecond {
				t.Errorf("cancelled wait took %v", took)
			}
			if ks := keys(t, cli, "cancel"); len(ks) != 1 {
				t.Fatalf("after cancel: keys %v, want only the holder's", ks)
			}
		}
		// A waiter queued behind a cancelled one is not delayed by it.
		ctx, cancel := context.WithCancel(context.Background())
		cerr := make(chan error, 1)
		go func() { cerr <- w.LockContext(ctx) }()
		waitKeys(t, cli, "cancel", 2)
		got := make(chan time.Time, 1)
		go func() {
			if err := next.LockContext(ctxT(t, 10*time.Second)); err != nil {
				t.Error(err)
			}
			got <- time.Now()
		}()
		waitKeys(t, cli, "cancel", 3)
		cancel()
		<-cerr
		released := time.Now()
		h.Unlock()
		var at time.Time
		within(t, 5*time.Second, "next waiter", func() { at = <-got })
		t.Logf("next waiter acquired %v after the holder's Unlock began", at.Sub(released))
		if d := at.Sub(released); d > 500*time.Millisecond {
			t.Errorf("next waiter took %v", d)
		}
		next.Unlock()
	})
}

// TestRevokedWaiter is the etcd 16221 scenario: a waiter whose lease is
// revoked while it waits must get an error, never the lock, and the waiter
// behind it gets the lock alone.
func TestRevokedWaiter(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		h, w2, w3 := newMutex(t, cli, "revoke"), newMutex(t, cli, "revoke"), newMutex(t, cli, "revoke")
		if err := h.LockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		e2 := make(chan error, 1)
		go func() { e2 <- w2.LockContext(ctxT(t, 20*time.Second)) }()
		ks := waitKeys(t, cli, "revoke", 2)
		var w2key string
		for _, key := range ks {
			if key != guardKey(h) {
				w2key = key
			}
		}
		e3 := make(chan error, 1)
		go func() { e3 <- w3.LockContext(ctxT(t, 20*time.Second)) }()
		waitKeys(t, cli, "revoke", 3)
		if _, err := cli.Revoke(ctxT(t, 5*time.Second), leaseOf(t, w2key)); err != nil {
			t.Fatal(err)
		}
		h.Unlock()
		var err2, err3 error
		within(t, 10*time.Second, "waiters", func() { err2, err3 = <-e2, <-e3 })
		if err2 == nil {
			t.Fatal("waiter whose lease was revoked got the lock")
		}
		if !errors.Is(err2, etcdlock.ErrLost) {
			t.Errorf("revoked waiter: %v, want ErrLost", err2)
		}
		t.Logf("revoked waiter: %v", err2)
		if err3 != nil {
			t.Fatalf("next waiter: %v", err3)
		}
		w3.Unlock()
		// The revoked handle recovers with a new lease.
		if err := w2.LockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatalf("handle after its lease was revoked: %v", err)
		}
		w2.Unlock()
	})
}

// TestStaleUnlock is the etcd 22082 scenario: a release of an old hold
// that arrives late never deletes a newer hold, even one of the same lease
// (the same key name); and an Unlock after a loss does not delete the new
// holder's key.
func TestStaleUnlock(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		m, o := newMutex(t, cli, "stale"), newMutex(t, cli, "stale")
		if err := m.LockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		old := m.Guard()
		m.Unlock()
		if err := m.LockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if guardKey(m) != string(old.KeyBytes()) {
			t.Fatalf("expected the same key name on the same lease: %s vs %s", guardKey(m), old.KeyBytes())
		}
		// The release transaction of the first hold, replayed late.
		resp, err := cli.Txn(ctxT(t, 5*time.Second)).If(old).Then(clientv3.OpDelete(string(old.KeyBytes()))).Commit()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Succeeded {
			t.Fatal("a stale release deleted the newer hold")
		}
		if n := len(keys(t, cli, "stale")); n != 1 {
			t.Fatalf("%d keys, want the newer hold's", n)
		}
		// Lose the hold (key deleted by an operator), let another take it,
		// then Unlock: it must not touch the new holder.
		if _, err := cli.Delete(ctxT(t, 5*time.Second), string(old.KeyBytes())); err != nil {
			t.Fatal(err)
		}
		if err := o.LockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		err = m.UnlockContext(ctxT(t, 5*time.Second))
		if !errors.Is(err, etcdlock.ErrLost) {
			t.Fatalf("UnlockContext of a lost hold: %v, want ErrLost", err)
		}
		ks := keys(t, cli, "stale")
		if len(ks) != 1 || ks[0] != guardKey(o) {
			t.Fatalf("keys %v, want only the new holder's", ks)
		}
		o.Unlock()
	})
}

// guardKey returns the key that m's Guard compares.
func guardKey(m *etcdlock.RWMutex) string {
	g := m.Guard()
	return string(g.KeyBytes())
}

// TestRemoteWriterNotStarved: readers of one handle that overlap without a
// pause would keep its read key forever; once a writer of another handle
// queues behind the key, new readers stop joining it, so the writer gets the
// lock while the readers keep trying.
func TestRemoteWriterNotStarved(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		r, w := newMutex(t, cli, "starve"), newMutex(t, cli, "starve")
		if err := r.RLockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var reads atomic.Int64
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := r.RLockContext(ctxT(t, 20*time.Second)); err != nil {
						t.Error(err)
						return
					}
					reads.Add(1)
					time.Sleep(time.Duration(2+rand.IntN(8)) * time.Millisecond) // work
					r.RUnlock()
				}
			}()
		}
		// The first reader lets go once the others overlap it.
		r.RUnlock()
		start := time.Now()
		if err := w.LockContext(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("writer behind overlapping readers of another handle: %v", err)
		}
		t.Logf("writer acquired after %v while readers kept coming (%d reads)", time.Since(start).Round(time.Millisecond), reads.Load())
		w.Unlock()
		close(stop)
		within(t, 20*time.Second, "readers", wg.Wait)
	})
}

// TestClientClosedUnderHandle: closing the client while a hold exists
// closes Lost; later acquisitions fail at once with a clear error; no
// goroutine is left.
func TestClientClosedUnderHandle(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints(), DialTimeout: 5 * time.Second, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		m, err := etcdlock.New(cli, "closed", etcdlock.WithTTL(2*time.Second), etcdlock.WithOpTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.LockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		lost := m.Lost()
		cli.Close()
		within(t, 5*time.Second, "Lost after the client closed", func() { <-lost })
		m.Unlock()
		start := time.Now()
		err = m.LockContext(ctxT(t, 5*time.Second))
		if err == nil || !strings.Contains(err.Error(), "client is closed") {
			t.Fatalf("LockContext on a closed client: %v", err)
		}
		if ok, err := m.TryLock(); ok || err == nil {
			t.Fatalf("TryLock on a closed client: %v, %v", ok, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("closed client reported after %v", d)
		}
		_ = m.Close()
	})
}

// TestWaitedReaderSeesQueuedWriter: a reader that had to wait for its read
// key learns of the writers of other handles that queued behind it while it
// waited, so the handle's new readers stop joining its key at once.
func TestWaitedReaderSeesQueuedWriter(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		a, r, w := newMutex(t, cli, "queued"), newMutex(t, cli, "queued"), newMutex(t, cli, "queued")
		if err := a.LockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		rdone := make(chan error, 1)
		go func() { rdone <- r.RLockContext(ctxT(t, 10*time.Second)) }()
		waitKeys(t, cli, "queued", 2) // a's write key, r's read key
		wdone := make(chan error, 1)
		go func() { wdone <- w.LockContext(ctxT(t, 10*time.Second)) }()
		waitKeys(t, cli, "queued", 3) // and w's, behind r's
		a.Unlock()
		if err := <-rdone; err != nil {
			t.Fatal(err)
		}
		if ok, err := r.TryRLock(); ok || err != nil {
			if ok {
				r.RUnlock()
			}
			t.Fatalf("TryRLock on the reader's handle with a writer queued behind its key = %v, %v; want false, nil", ok, err)
		}
		r.RUnlock()
		if err := <-wdone; err != nil {
			t.Fatal(err)
		}
		w.Unlock()
	})
}

// TestReaderJoinsNoCancelledAcquisition: a reader that arrives while the
// handle's read key is being given up by readers whose contexts ended does
// not get their cancellation as its own error.
func TestReaderJoinsNoCancelledAcquisition(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		hold, r := newMutex(t, cli, "joincancel"), newMutex(t, cli, "joincancel")
		if err := hold.LockContext(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		spurious := 0
		for i := 0; i < 20; i++ {
			short, cancel := context.WithCancel(context.Background())
			first := make(chan error, 1)
			go func() { first <- r.RLockContext(short) }()
			waitKeys(t, cli, "joincancel", 2)
			cancel()
			// A second reader with a live context arrives while the first
			// gives the key up (at moments spread over that window: the
			// scenario, not a synchronisation); it must not fail with
			// context.Canceled.
			time.Sleep(time.Duration(i%10) * 300 * time.Microsecond)
			live, liveCancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			err := r.RLockContext(live)
			liveCancel()
			if err == nil {
				r.RUnlock()
				t.Fatal("RLockContext succeeded while a writer holds")
			}
			if errors.Is(err, context.Canceled) {
				spurious++
			}
			if err := <-first; !errors.Is(err, context.Canceled) {
				t.Fatalf("the cancelled reader: %v", err)
			}
		}
		if spurious > 0 {
			t.Fatalf("%d of 20 readers with a live context got context.Canceled", spurious)
		}
		hold.Unlock()
	})
}

// TestCloseWaitsForUnlock: Close during an UnlockContext in progress
// refuses (ErrLocked) instead of revoking the lease under the release,
// which would then report a false ErrLost.
func TestCloseWaitsForUnlock(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		for i := 0; i < 10; i++ {
			m, err := etcdlock.New(cli, "closeunlock")
			if err != nil {
				t.Fatal(err)
			}
			if err := m.LockContext(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			unlocked := make(chan error, 1)
			go func() { unlocked <- m.UnlockContext(ctxT(t, 5*time.Second)) }()
			for {
				err := m.Close()
				if err == nil {
					break
				}
				if !errors.Is(err, etcdlock.ErrLocked) {
					t.Fatal(err)
				}
			}
			if err := <-unlocked; err != nil {
				t.Fatalf("UnlockContext with Close retried beside it: %v; want nil", err)
			}
		}
	})
}
