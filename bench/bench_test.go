//go:build linux

package main

// Go benchmarks for scenarios 1 and 2, with stable names that benchstat
// can compare across runs: BenchmarkLockUnlock/ours, /gofrs, /raw, /sync
// and so on. For example, before and after a change to the core package:
//
//	go test -run '^$' -bench . -count 10 > old.txt
//	(change the core)
//	go test -run '^$' -bench . -count 10 > new.txt
//	benchstat old.txt new.txt
//
// The driver (go run .) runs the same functions and prints the
// implementations side by side, with ratios from the same run.

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		runChild(role)
	}
	os.Exit(m.Run())
}

func runGroup(b *testing.B, groups []benchGroup, name string) {
	for _, g := range groups {
		if g.name != name {
			continue
		}
		for _, c := range g.cases {
			b.Run(c.name, c.fn)
		}
		return
	}
	b.Fatalf("no benchmark group %s", name)
}

// Scenario 1: uncontended.

func BenchmarkLockUnlock(b *testing.B)   { runGroup(b, uncontendedGroups(b.TempDir()), "LockUnlock") }
func BenchmarkRLockRUnlock(b *testing.B) { runGroup(b, uncontendedGroups(b.TempDir()), "RLockRUnlock") }
func BenchmarkTryLockUnlock(b *testing.B) {
	runGroup(b, uncontendedGroups(b.TempDir()), "TryLockUnlock")
}

// Scenario 2: 8 goroutines on one file; the ops/s metric is all of them
// together.

func BenchmarkWriters8(b *testing.B) { runGroup(b, contentionGroups(b.TempDir()), "Writers8") }
func BenchmarkReaders8(b *testing.B) { runGroup(b, contentionGroups(b.TempDir()), "Readers8") }
func BenchmarkReadersJoining8(b *testing.B) {
	runGroup(b, contentionGroups(b.TempDir()), "ReadersJoining8")
}
func BenchmarkMixed90Readers8(b *testing.B) {
	runGroup(b, contentionGroups(b.TempDir()), "Mixed90Readers8")
}
