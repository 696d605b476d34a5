package etcdlock_test

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-flock/flock/etcdlock"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// These tests need no etcd server; the server-backed suite is the
// integration module (etcdlock/integration).

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// unreachable returns a loopback address on which nothing listens.
func unreachable(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func client(t *testing.T, ep string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

func TestNewBadInput(t *testing.T) {
	if _, err := etcdlock.New(nil, "x"); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("nil client: %v", err)
	}
	cli := client(t, unreachable(t))
	defer cli.Close()
	for _, name := range []string{"", "a/", "a\x00b", "a\nb", "\xff\xfe"} {
		if _, err := etcdlock.New(cli, name); err == nil || !strings.Contains(err.Error(), "invalid lock name") {
			t.Errorf("name %q: %v", name, err)
		}
	}
	for _, name := range []string{"a", "jobs/nightly", "ünï cødé"} {
		if _, err := etcdlock.New(cli, name); err != nil {
			t.Errorf("name %q: %v", name, err)
		}
	}
	for _, opts := range [][]etcdlock.Option{
		{etcdlock.WithTTL(0)},
		{etcdlock.WithTTL(-time.Second)},
		{etcdlock.WithTTL(2 * time.Second), etcdlock.WithLossMargin(time.Second)},
		{etcdlock.WithOpTimeout(0)},
		{etcdlock.WithTTL(time.Duration(math.MaxInt64))}, // beyond etcd's largest TTL
		{etcdlock.WithLossMargin(-time.Hour)},
	} {
		if _, err := etcdlock.New(cli, "x", opts...); err == nil {
			t.Errorf("options %d accepted", len(opts))
		}
	}
}

// A nil Option is skipped, as flock.Open skips one.
func TestNilOption(t *testing.T) {
	cli := client(t, unreachable(t))
	defer cli.Close()
	if _, err := etcdlock.New(cli, "x", nil, etcdlock.WithTTL(5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestClosedClient(t *testing.T) {
	cli := client(t, unreachable(t))
	m, err := etcdlock.New(cli, "x", etcdlock.WithOpTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if _, err := etcdlock.New(cli, "x"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("New on a closed client: %v", err)
	}
	start := time.Now()
	err = m.LockContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "client is closed") {
		t.Errorf("LockContext on a closed client: %v", err)
	}
	if ok, err := m.TryRLock(); ok || err == nil {
		t.Errorf("TryRLock on a closed client: %v, %v", ok, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("closed client took %v to report", d)
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}
}

// TestUnreachable: every acquisition against endpoints where nothing
// listens fails with an error naming the lock within the operation
// timeout, and leaves no goroutine behind (TestMain checks).
func TestUnreachable(t *testing.T) {
	cli := client(t, unreachable(t))
	defer cli.Close()
	const opTimeout = 300 * time.Millisecond
	m, err := etcdlock.New(cli, "unreachable", etcdlock.WithOpTimeout(opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"LockContext":  func() error { return m.LockContext(context.Background()) },
		"RLockContext": func() error { return m.RLockContext(context.Background()) },
		"TryLock": func() error {
			ok, err := m.TryLock()
			if ok {
				return errors.New("acquired")
			}
			return err
		},
		"TryRLock": func() error {
			ok, err := m.TryRLock()
			if ok {
				return errors.New("acquired")
			}
			return err
		},
	} {
		start := time.Now()
		err := f()
		d := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), `"unreachable"`) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v", name, err)
		}
		if d > opTimeout+500*time.Millisecond {
			t.Errorf("%s took %v, operation timeout %v", name, d, opTimeout)
		}
		t.Logf("%s: %v after %v", name, err, d.Round(time.Millisecond))
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}
	if err := m.LockContext(context.Background()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestNoHold(t *testing.T) {
	cli := client(t, unreachable(t))
	defer cli.Close()
	m, err := etcdlock.New(cli, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	select {
	case <-m.Lost():
	default:
		t.Error("Lost open with no hold")
	}
	if m.Token() != 0 {
		t.Error("Token with no hold")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.LockContext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("LockContext with a done ctx: %v", err)
	}
	for name, f := range map[string]func(){"Unlock": m.Unlock, "RUnlock": m.RUnlock} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "unlocked") {
					t.Errorf("%s of unlocked: %v", name, r)
				}
			}()
			f()
		}()
	}
}
