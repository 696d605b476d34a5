package flock

import (
	"context"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-flock/flock/internal/witness"
)

// semTempDir returns a directory for a test's slot files: t.TempDir,
// except under Wine (see semaphore_windows_test.go).
var semTempDir = func(t testing.TB) string { return t.TempDir() }

func mustOpenSemaphore(t testing.TB, dir, name string, capacity int64) *Semaphore {
	t.Helper()
	s, err := OpenSemaphore(dir, name, capacity)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// mustPanic runs f and returns the message it panicked with, failing t if
// it did not panic.
func mustPanic(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("did not panic")
		}
		msg, _ = r.(string)
	}()
	f()
	return ""
}

func TestSemaphoreBadInput(t *testing.T) {
	dir := semTempDir(t)
	for _, tc := range []struct {
		name     string
		dir      string
		semName  string
		capacity int64
		opts     []Option
		is       error
		inErr    string // must appear in the message
	}{
		{"zero capacity", dir, "s", 0, nil, fs.ErrInvalid, "capacity 0"},
		{"negative capacity", dir, "s", -3, nil, fs.ErrInvalid, "capacity -3"},
		{"empty name", dir, "", 2, nil, fs.ErrInvalid, "empty"},
		{"slash in name", dir, "a/b", 2, nil, fs.ErrInvalid, "path separator"},
		{"NUL in name", dir, "a\x00b", 2, nil, fs.ErrInvalid, "NUL"},
		{"missing directory", filepath.Join(dir, "missing"), "s", 2, nil, fs.ErrNotExist, filepath.Join(dir, "missing")},
		{"RemoveOnUnlock", dir, "s", 2, []Option{RemoveOnUnlock()}, fs.ErrInvalid, "RemoveOnUnlock"},
		{"WriterPriority", dir, "s", 2, []Option{WriterPriority()}, fs.ErrInvalid, "WriterPriority"},
	} {
		s, err := OpenSemaphore(tc.dir, tc.semName, tc.capacity, tc.opts...)
		if err == nil {
			s.Close()
			t.Errorf("%s: OpenSemaphore succeeded", tc.name)
			continue
		}
		var pe *fs.PathError
		if !errors.As(err, &pe) || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.inErr) {
			t.Errorf("%s: OpenSemaphore error %q (%T), want an *fs.PathError matching %v and saying %q", tc.name, err, err, tc.is, tc.inErr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed OpenSemaphore calls left files behind: %v", ents)
	}

	s := mustOpenSemaphore(t, dir, "s", 3)
	ctx := context.Background()
	for _, n := range []int64{0, -1, 4} {
		start := time.Now()
		if err := s.Acquire(ctx, n); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Acquire(%d) = %v, want an error matching fs.ErrInvalid", n, err)
		}
		if time.Since(start) > time.Second {
			t.Errorf("Acquire(%d) did not fail at once", n)
		}
		if ok, err := s.TryAcquire(n); ok || !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("TryAcquire(%d) = %v, %v, want false and an error matching fs.ErrInvalid", n, ok, err)
		}
	}
	if msg := mustPanic(t, func() { s.Release(1) }); !strings.Contains(msg, "released more than held") {
		t.Errorf("Release without Acquire panicked with %q", msg)
	}
	if msg := mustPanic(t, func() { s.Release(0) }); !strings.Contains(msg, "positive") {
		t.Errorf("Release(0) panicked with %q", msg)
	}
	if err := s.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if msg := mustPanic(t, func() { s.Release(3) }); !strings.Contains(msg, "(2 held)") {
		t.Errorf("Release(3) holding 2 panicked with %q", msg)
	}
	if err := s.Close(); !errors.Is(err, ErrLocked) {
		t.Errorf("Close while holding = %v, want ErrLocked", err)
	}
	s.Release(2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Acquire(ctx, 1); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Acquire after Close = %v, want os.ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close = %v, want os.ErrClosed", err)
	}
	var zero Semaphore
	if msg := mustPanic(t, func() { zero.TryAcquire(1) }); !strings.Contains(msg, "OpenSemaphore") {
		t.Errorf("zero Semaphore panicked with %q", msg)
	}
}

// The slot files are portalocker's: name.NN.lock, NN as %02d formats it.
func TestSemaphoreSlotFiles(t *testing.T) {
	dir := semTempDir(t)
	mustOpenSemaphore(t, dir, "jobs", 101)
	for _, n := range []string{"jobs.00.lock", "jobs.07.lock", "jobs.99.lock", "jobs.100.lock", "jobs.gate.lock"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Error(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 102 {
		t.Errorf("%d files, want 101 slots and the gate", len(ents))
	}
	// A capacity of one needs no gate.
	mustOpenSemaphore(t, dir, "one", 1)
	if _, err := os.Stat(filepath.Join(dir, "one.gate.lock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("gate of a capacity-1 semaphore: %v", err)
	}
}

// Goroutines of one process sharing a handle, and two handles on the same
// slots, never hold more than the capacity together, with random weights
// and cancellations.
func TestSemaphoreInProcess(t *testing.T) {
	dir := semTempDir(t)
	const capacity = 4
	handles := []*Semaphore{mustOpenSemaphore(t, dir, "s", capacity), mustOpenSemaphore(t, dir, "s", capacity)}
	var now, max, acquired, cancelled atomic.Int64
	g := witness.NewGauge(&now, &max)
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := handles[i%2]
			r := rand.New(rand.NewSource(int64(i)))
			for j := 0; j < 200; j++ {
				n := int64(1 + r.Intn(3))
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.Intn(200))*time.Microsecond)
				err := s.Acquire(ctx, n)
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Acquire: %v", err)
						return
					}
					cancelled.Add(1)
					continue
				}
				if v := g.Enter(n); v > capacity {
					t.Errorf("%d units held at once, capacity %d", v, capacity)
				}
				acquired.Add(1)
				g.Leave(n)
				s.Release(n)
			}
		}(i)
	}
	wg.Wait()
	t.Logf("acquired %d, cancelled %d, most units held at once %d", acquired.Load(), cancelled.Load(), max.Load())
	if acquired.Load() == 0 {
		t.Fatal("nothing acquired")
	}
	// Everything is free again. Acquire, not TryAcquire: the slot waiters
	// of the last cancelled calls may still be winding down, and a wait
	// is adopted where a try would fail.
	for _, s := range handles {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Acquire(ctx, capacity)
		cancel()
		if err != nil {
			t.Fatalf("Acquire(all) at the end: %v: something is still held", err)
		}
		s.Release(capacity)
	}
}

// A large request is not passed by small ones of the same process, and a
// cancelled wait leaves nothing held.
func TestSemaphoreFIFOAndCancel(t *testing.T) {
	s := mustOpenSemaphore(t, semTempDir(t), "s", 3)
	ctx := context.Background()
	if err := s.Acquire(ctx, 1); err != nil {
		t.Fatal(err)
	}
	big := make(chan error)
	go func() { big <- s.Acquire(ctx, 3) }()
	// Until the big request waits, TryAcquire(1) may still succeed; once
	// it waits it must fail. Wait for that without sleeping: a failing
	// TryAcquire is the sign.
	for {
		ok, err := s.TryAcquire(1)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		s.Release(1)
	}
	s.Release(1)
	if err := <-big; err != nil {
		t.Fatal(err)
	}
	// All three are held: an Acquire with a deadline fails, holding nothing.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := s.Acquire(cctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire while full = %v, want DeadlineExceeded", err)
	}
	s.Release(3)
	// An Acquire with a context already done acquires nothing, even free.
	dead, cancel2 := context.WithCancel(ctx)
	cancel2()
	if err := s.Acquire(dead, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a done context = %v, want Canceled", err)
	}
	if ok, err := s.TryAcquire(3); !ok || err != nil {
		t.Fatalf("TryAcquire(3) after cancellations = %v, %v", ok, err)
	}
	s.Release(3)
}

// Uncontended Acquire(1)+Release(1): one flock(2) pair on a slot file kept
// open, plus the stat(2) that checks the slot file is still at its path.
func BenchmarkSemaphoreAcquireRelease(b *testing.B) {
	s := mustOpenSemaphore(b, semTempDir(b), "s", 4)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := s.Acquire(ctx, 1); err != nil {
			b.Fatal(err)
		}
		s.Release(1)
	}
}

func BenchmarkSemaphoreTryAcquireRelease(b *testing.B) {
	s := mustOpenSemaphore(b, semTempDir(b), "s", 4)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if ok, err := s.TryAcquire(1); !ok || err != nil {
			b.Fatal(ok, err)
		}
		s.Release(1)
	}
}

// Handles that disagree on the capacity each bound only their own slots:
// capacities 2 and 3 on one name share slots 00 and 01, and together hold
// at most 3 units.
func TestSemaphoreCapacityDisagreement(t *testing.T) {
	dir := semTempDir(t)
	two, three := mustOpenSemaphore(t, dir, "c", 2), mustOpenSemaphore(t, dir, "c", 3)
	if ok, err := three.TryAcquire(3); !ok || err != nil {
		t.Fatalf("capacity 3: TryAcquire(3) = %v, %v", ok, err)
	}
	if ok, err := two.TryAcquire(1); ok || err != nil {
		t.Fatalf("capacity 2: TryAcquire(1) while the other holds slots 00-02 = %v, %v", ok, err)
	}
	three.Release(3)
	if ok, err := two.TryAcquire(2); !ok || err != nil {
		t.Fatalf("capacity 2: TryAcquire(2) = %v, %v", ok, err)
	}
	if ok, err := three.TryAcquire(1); !ok || err != nil {
		t.Fatalf("capacity 3: TryAcquire(1) of the slot the other does not use = %v, %v", ok, err)
	}
	if ok, err := three.TryAcquire(1); ok || err != nil {
		t.Fatalf("capacity 3: a fourth unit = %v, %v", ok, err)
	}
	two.Release(2)
	three.Release(1)
}
