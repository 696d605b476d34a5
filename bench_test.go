package flock

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sync/semaphore"
)

// Uncontended costs. Compare with BenchmarkRawFlock (the OS floor) and
// BenchmarkSyncRWMutex (the in-process floor), measured in the same run.

func BenchmarkLockUnlock(b *testing.B) {
	m := mustOpen(b, lockPath(b))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Lock()
		m.Unlock()
	}
}

func BenchmarkLockContextUnlock(b *testing.B) {
	m := mustOpen(b, lockPath(b))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.LockContext(ctx); err != nil {
			b.Fatal(err)
		}
		m.Unlock()
	}
}

func BenchmarkRLockRUnlock(b *testing.B) {
	m := mustOpen(b, lockPath(b))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.RLock()
		m.RUnlock()
	}
}

// BenchmarkRLockRUnlockOtherHandles is BenchmarkRLockRUnlock with other
// handles open on the same file in the process, idle. Each RLock here
// takes the OS shared lock and opens the reader fast path, and each
// RUnlock releases it and closes it, which marks the word of every handle
// that follows the fast path (see follower): with "following" every other
// handle asks to (overlapReaders), and maxFollowers of them do; without,
// none does.
func BenchmarkRLockRUnlockOtherHandles(b *testing.B) {
	for _, others := range []int{0, 100, 10000} {
		for _, following := range []bool{false, true} {
			if others == 0 && following {
				continue
			}
			name := fmt.Sprintf("others=%d", others)
			if following {
				name += "/following"
			}
			b.Run(name, func(b *testing.B) {
				path := lockPath(b)
				m := mustOpen(b, path)
				for i := 0; i < others; i++ {
					h := mustOpen(b, path)
					if following {
						overlapReaders(h)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					m.RLock()
					m.RUnlock()
				}
			})
		}
	}
}

func BenchmarkTryLockUnlock(b *testing.B) {
	m := mustOpen(b, lockPath(b))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, err := m.TryLock(); !ok || err != nil {
			b.Fatal(ok, err)
		}
		m.Unlock()
	}
}

func BenchmarkSyncRWMutex(b *testing.B) {
	var m sync.RWMutex
	b.Run("Lock", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			m.Lock()
			m.Unlock()
		}
	})
	// Through method values, as BenchmarkRLockParallel calls the
	// package's: a direct call would be inlined, which a call through a
	// sync.Locker or a func never is.
	b.Run("RLockParallel", func(b *testing.B) { parallel(b, m.RLock, m.RUnlock) })
}

// parallelReaders makes RunParallel use 8 goroutines in all, whatever
// GOMAXPROCS is (at least one per P).
func parallelReaders(b *testing.B) int {
	p := 8 / runtime.GOMAXPROCS(0)
	if p < 1 {
		p = 1
	}
	return p
}

// 8 goroutines take and release read locks while another goroutine of the
// process holds one: readers join without a system call.
func BenchmarkRLockParallel(b *testing.B) {
	m := mustOpen(b, lockPath(b))
	m.RLock()
	defer m.RUnlock()
	parallel(b, m.RLock, m.RUnlock)
}

// BenchmarkRLockParallelBesideFollowers is BenchmarkRLockParallel with
// the entry's places for followers all taken, by idle handles whose
// readers overlapped once: the shared handle takes one of their places.
func BenchmarkRLockParallelBesideFollowers(b *testing.B) {
	path := lockPath(b)
	for i := 0; i < maxFollowers; i++ {
		overlapReaders(mustOpen(b, path))
	}
	m := mustOpen(b, path)
	m.RLock()
	defer m.RUnlock()
	parallel(b, m.RLock, m.RUnlock)
}

// BenchmarkRLockParallelHandles is BenchmarkRLockParallel with a handle
// per goroutine: every RLock takes an admission from the file's entry.
func BenchmarkRLockParallelHandles(b *testing.B) {
	path := lockPath(b)
	m := mustOpen(b, path)
	m.RLock()
	defer m.RUnlock()
	var next atomic.Int32
	handles := make([]*RWMutex, parallelReaders(b)*runtime.GOMAXPROCS(0)) // one per RunParallel goroutine
	for i := range handles {
		handles[i] = mustOpen(b, path)
	}
	b.ReportAllocs()
	b.SetParallelism(parallelReaders(b))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		h := handles[next.Add(1)-1]
		for pb.Next() {
			h.RLock()
			h.RUnlock()
		}
	})
}

// BenchmarkAdmissionFloor is the floor of BenchmarkRLockParallelHandles's
// design, with no lock at all: the atomic operations a reader alone on its
// handle makes, beside readers of other handles, on a word of its own (a
// handle's state, on a cache line of its own) and a word they all share
// (the entry's readers): RLock adds its count, takes an admission from the
// shared word (compare-and-swap) and installs it (compare-and-swap);
// RUnlock removes its count, clears the admission (compare-and-swap) and
// gives it back to the shared word. sync.RWMutex makes only the two on the
// shared word.
func BenchmarkAdmissionFloor(b *testing.B) {
	type paddedWord struct {
		atomic.Int64
		_ [56]byte
	}
	var shared paddedWord
	shared.Store(1) // the standing reader
	own := make([]paddedWord, parallelReaders(b)*runtime.GOMAXPROCS(0))
	var next atomic.Int32
	b.SetParallelism(parallelReaders(b))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &own[next.Add(1)-1]
		for pb.Next() {
			w.Add(readUnit)
			for n := shared.Load(); !shared.CompareAndSwap(n, n+1); n = shared.Load() {
			}
			w.CompareAndSwap(readUnit, readUnit|admittedBit)
			w.Add(-readUnit)
			w.CompareAndSwap(admittedBit, 0)
			shared.Add(-1)
		}
	})
}

// BenchmarkJoinFloor is the floor of BenchmarkRLockParallel's design, with
// no lock at all: what a reader joining the read admission of its handle
// does. As in sync.RWMutex, RLock and RUnlock each make one addition and
// test its result: RLock's says whether the handle is admitted and the
// entry's fast path open (the entry mirrors that in every handle's word,
// see follower), RUnlock's is compared with the handle's floor, which it
// loads. Run with -cpu 1,2: on one CPU no core fights another over the
// word, and what differs from sync.RWMutex is that load and a wider test.
func BenchmarkJoinFloor(b *testing.B) {
	type handleWords struct {
		state     atomic.Int64
		_         [64 - 8]byte
		readFloor int64
	}
	h := &handleWords{readFloor: readUnit}
	h.state.Store(readUnit | admittedBit) // the standing reader's count and the admission
	lock := func() {
		if n := h.state.Add(readUnit); n&joinMask != admittedBit {
			panic("not joined")
		}
	}
	unlock := func() {
		if n := h.state.Add(-readUnit); n < h.readFloor {
			panic("last reader")
		}
	}
	parallel(b, lock, unlock)
}

// BenchmarkWeightedGateParallel is the reader join of
// BenchmarkRLockParallel on the gate the Semaphore and etcdlock use in
// process, x/sync/semaphore.Weighted (readers take one of N tokens, as
// etcdlock's do), with no file at all: why the package's own gate, whose
// readers join with one atomic addition while the fast path is open, is
// not that one (see the README's Design section).
func BenchmarkWeightedGateParallel(b *testing.B) {
	const tokens = 1 << 20
	w := semaphore.NewWeighted(tokens)
	ctx := context.Background()
	w.Acquire(ctx, 1) // the standing reader
	defer w.Release(1)
	parallel(b, func() { w.Acquire(ctx, 1) }, func() { w.Release(1) })
}

// 8 goroutines take and release read locks with nobody else holding: the
// OS shared lock is taken and dropped whenever the count passes zero.
func BenchmarkRLockParallelStandingStart(b *testing.B) {
	m := mustOpen(b, lockPath(b))
	parallel(b, m.RLock, m.RUnlock)
}

// 8 goroutines, writers only, on one handle.
func BenchmarkLockParallel(b *testing.B) {
	m := mustOpen(b, lockPath(b))
	parallel(b, m.Lock, m.Unlock)
}

// parallel runs lock and unlock in a loop in 8 goroutines.
func parallel(b *testing.B, lock, unlock func()) {
	b.ReportAllocs()
	b.SetParallelism(parallelReaders(b))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			lock()
			unlock()
		}
	})
}

// BenchmarkLockUnlockRemoveOnUnlock is Lock+Unlock of a handle that
// removes the file at every Unlock: each Lock creates it again.
func BenchmarkLockUnlockRemoveOnUnlock(b *testing.B) {
	m := mustOpen(b, lockPath(b), RemoveOnUnlock())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Lock()
		m.Unlock()
	}
}
