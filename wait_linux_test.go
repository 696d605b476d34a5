//go:build linux

package flock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A reader admitted while an abandoned writer's wait is still in the
// kernel (flock(2) cannot abandon it) must get the lock as soon as another
// process lets readers in: when that process converts its exclusive lock to
// shared, or leaves with other processes' readers already inside. The
// abandoned wait stays blocked in both cases, so only a wait for a shared
// lock sees the change.
func TestReaderBesideAbandonedWriterWait(t *testing.T) {
	if backendName != "flock" {
		t.Skipf("the %s backend never locks beside a wait in flight (documented)", backendName)
	}
	for _, tc := range []struct {
		name string
		// letReadersIn makes the holder h let readers in, the abandoned
		// writer's wait staying blocked; r is a second process.
		letReadersIn func(t *testing.T, h, r *child)
		// done undoes it.
		done func(t *testing.T, h, r *child)
	}{
		{"holder converts to shared",
			func(t *testing.T, h, r *child) { h.Must(t, "s") },
			func(t *testing.T, h, r *child) { h.Do("u") }},
		{"holder leaves, other readers inside",
			func(t *testing.T, h, r *child) {
				if err := r.Send("rlock"); err != nil { // blocks until h leaves
					t.Fatal(err)
				}
				h.Do("u")
				if got := r.Recv(); got != "ok" {
					t.Fatalf("reader process: %s", got)
				}
			},
			func(t *testing.T, h, r *child) { r.Must(t, "runlock") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := lockPath(t)
			m := mustOpen(t, p)
			h := startChildRole(t, "holder", p)
			r := startChild(t, p)
			h.Must(t, "l")

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			if err := m.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("LockContext = %v", err)
			}
			ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel2()
			waiting := make(chan error, 1)
			go func() { waiting <- m.RLockContext(ctx2) }()
			eventually(t, "the reader waits beside the abandoned writer's wait", func() bool {
				m.e.mu.Lock()
				defer m.e.mu.Unlock()
				return m.e.admittedReaders() == 1 && m.e.wake != nil
			})

			tc.letReadersIn(t, h, r)
			select {
			case err := <-waiting:
				if err != nil {
					t.Fatalf("the waiting reader: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the reader still waits 10 s after readers could go in")
			}
			m.RUnlock()
			tc.done(t, h, r)
			waitIdle(t, m.e)
		})
	}
}

// A writer that adopts an exclusive wait abandoned earlier (which let go
// of the writer-priority gate when it was abandoned) takes the gate again:
// otherwise no writer of the process has priority until that wait ends,
// and under overlapping readers it never does. The readers here follow the
// gate's protocol on descriptors of their own, hand over hand, so that the
// lock file is never free while they run.
func TestAdoptedWaitRetakesGate(t *testing.T) {
	if backendName != "flock" {
		t.Skipf("the readers use flock(2) directly; the %s backend does not see them", backendName)
	}
	p := lockPath(t)
	w := mustOpen(t, p, WriterPriority())
	stop := make(chan struct{})
	overlapping := make(chan struct{})
	var wg sync.WaitGroup
	handOverHand(t, p, stop, overlapping, &wg)
	defer wg.Wait()
	defer close(stop)
	<-overlapping

	// Leave an abandoned exclusive wait in the kernel, without the gate.
	for try := 0; ; try++ {
		if try == 100 {
			t.Fatal("no abandoned exclusive wait in the kernel after 100 tries")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Millisecond)
		err := w.LockContext(ctx)
		cancel()
		if err == nil {
			w.Unlock()
			continue
		}
		w.e.mu.Lock()
		c := w.e.inflight[exclusive]
		inKernel := c != nil && c.abandoned() && c.gateHeld == unlocked
		w.e.mu.Unlock()
		if inKernel {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := w.LockContext(ctx); err != nil {
		t.Fatalf("the writer adopting the abandoned wait got no priority: %v after %v", err, time.Since(start))
	}
	t.Logf("the adopting writer waited %v", time.Since(start))
	w.Unlock()
}

// handOverHand runs two readers of the lock file at p that follow the
// writer-priority protocol (gate exclusively, lock shared, gate released)
// on descriptors of their own, each holding until the other holds too, so
// that the lock file is never free; overlapping is closed when they first
// overlap.
func handOverHand(t *testing.T, p string, stop <-chan struct{}, overlapping chan<- struct{}, wg *sync.WaitGroup) {
	gp := gatePath(p)
	got := [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
	var once sync.Once
	for i := 0; i < 2; i++ {
		lf, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		gf, err := unix.Open(gp, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(i, lf, gf int) {
			defer wg.Done()
			defer unix.Close(lf)
			defer unix.Close(gf)
			if i == 1 {
				<-got[0]
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				unix.Flock(gf, unix.LOCK_EX)
				unix.Flock(lf, unix.LOCK_SH)
				unix.Flock(gf, unix.LOCK_UN)
				select {
				case got[i] <- struct{}{}:
				default: // the other has not taken the last one yet
				}
				select { // hold until the other holds too (or a writer keeps it out)
				case <-got[1-i]:
					once.Do(func() { close(overlapping) })
				case <-time.After(30 * time.Millisecond):
				case <-stop:
				}
				unix.Flock(lf, unix.LOCK_UN)
				time.Sleep(time.Millisecond) // the workload's pause
			}
		}(i, lf, gf)
	}
}
