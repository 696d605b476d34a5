package flock

import (
	"context"
	"runtime"
	"sync"
	"testing"
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
	b.Run("RLockParallel", func(b *testing.B) {
		b.SetParallelism(parallelReaders(b))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.RLock()
				m.RUnlock()
			}
		})
	})
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
