//go:build linux

package main

import "testing"

// Scenario 7, uncontended: Semaphore Acquire(1)+Release(1) and
// TryAcquire(1)+Release(1) against RWMutex Lock+Unlock and a raw flock(2)
// pair, under names benchstat can compare across runs.
func BenchmarkSemaphore(b *testing.B) { runGroup(b, semaphoreGroups(b.TempDir()), "Semaphore") }
