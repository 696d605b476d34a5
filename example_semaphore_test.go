package flock_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"
	"sync/atomic"

	"github.com/go-flock/flock"
)

// At most 2 heavy jobs at once on this machine, whichever processes run
// them: every process opens the same semaphore (here in a temporary
// directory; use a directory all of them share, such as os.TempDir()).
func ExampleSemaphore() {
	dir, err := os.MkdirTemp("", "jobs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	sem, err := flock.OpenSemaphore(dir, "heavy-jobs", 2)
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()

	var running, most atomic.Int64
	var wg sync.WaitGroup
	for job := 0; job < 6; job++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sem.Acquire(context.Background(), 1); err != nil {
				log.Print(err)
				return
			}
			defer sem.Release(1)
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			// ... the heavy job ...
			running.Add(-1)
		}()
	}
	wg.Wait()
	fmt.Println("at most 2 at once:", most.Load() <= 2)
	// Output: at most 2 at once: true
}
