//go:build unix

package flock

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

func init() {
	childRoles["flood"] = floodMain
}

// floodMain takes read locks over and over, holding each for 10 ms with a
// 1 ms pause, until its stdin closes. It says "flooding" once it holds the
// first one.
func floodMain() {
	m, err := Open(os.Getenv("FLOCK_TEST_PATH"), childOptions()...)
	if err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	stop := make(chan struct{})
	go func() {
		os.Stdin.Read(make([]byte, 1))
		close(stop)
	}()
	fmt.Println("ready")
	for i := 0; ; i++ {
		m.RLock()
		if i == 0 {
			fmt.Println("flooding")
		}
		time.Sleep(10 * time.Millisecond) // the reader's work
		m.RUnlock()
		select {
		case <-stop:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// Under a flood of overlapping readers from 4 other processes, a writer
// using WriterPriority gets the lock. (Without the option flock(2) may keep
// it out for good; bench/ measures both side by side.)
func TestWriterPriority(t *testing.T) {
	p := lockPath(t)
	var floods []*child
	for i := 0; i < 4; i++ {
		floods = append(floods, startChildRole(t, "flood", p, "FLOCK_TEST_OPTS=prio"))
	}
	for _, c := range floods {
		if got := c.Recv(); got != "flooding" {
			t.Fatalf("reader child: %s", got)
		}
	}
	w := mustOpen(t, p, WriterPriority())
	const limit = 30 * time.Second // a bound against hanging, not a timing claim
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	if err := w.LockContext(ctx); err != nil {
		t.Fatalf("with WriterPriority the writer did not get the lock in %v under 4 flooding reader processes: %v", limit, err)
	}
	t.Logf("writer waited %v under 4 flooding reader processes", time.Since(start))
	w.Unlock()
	for _, c := range floods {
		c.Stop()
	}
}

// Handles with WriterPriority keep every other guarantee: exclusion among
// goroutines and against other processes, with and without the option.
func TestWriterPriorityExcludes(t *testing.T) {
	p := lockPath(t)
	a, b := mustOpen(t, p, WriterPriority()), mustOpen(t, p)
	hammer(t, []*RWMutex{a, b}, 6, 500)
	if _, err := os.Stat(p + ".gate"); err != nil {
		t.Fatalf("gate file: %v", err)
	}
	c := startChildRole(t, "locker", p, "FLOCK_TEST_OPTS=prio")
	plain := startChild(t, p)
	a.RLock()
	if got := c.Do("tryrlock"); got != "ok" {
		t.Fatalf("child tryrlock while we read = %s", got)
	}
	c.Must(t, "runlock")
	if got := c.Do("trylock"); got != "held" {
		t.Fatalf("child trylock while we read = %s", got)
	}
	a.RUnlock()
	c.Must(t, "lock")
	// The child's writer holds the gate: our TryRLock fails, as does a
	// plain process's, and our wait ends when it unlocks.
	if ok, err := a.TryRLock(); ok || err != nil {
		t.Fatalf("TryRLock while a priority writer holds = %v, %v", ok, err)
	}
	if got := plain.Do("tryrlock"); got != "held" {
		t.Fatalf("plain child tryrlock while a priority writer holds = %s", got)
	}
	done := make(chan error)
	go func() { done <- a.RLockContext(context.Background()) }()
	c.Must(t, "unlock")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := c.Do("trylock"); got != "held" {
		t.Fatalf("child trylock while we read = %s", got)
	}
	a.RUnlock()
	if got := c.Do("trylock"); got != "ok" {
		t.Fatalf("child trylock after we left = %s", got)
	}
	c.Must(t, "unlock")
}
