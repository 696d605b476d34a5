package flock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-flock/flock"
	"golang.org/x/sync/errgroup"
)

// A cron job that must not overlap with another copy of itself, and that
// keeps a run counter in the lock file.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	m, err := flock.Open(filepath.Join(dir, "job.lock"))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	ok, err := m.TryLock()
	if err != nil {
		log.Fatal(err)
	}
	if !ok {
		fmt.Println("another run is in progress")
		return
	}
	defer m.Unlock()

	// The holder may read and write the file's content.
	buf := make([]byte, 16)
	n, _ := m.File().ReadAt(buf, 0)
	runs, _ := strconv.Atoi(string(buf[:n]))
	runs++
	m.File().Truncate(0)
	m.File().WriteAt([]byte(strconv.Itoa(runs)), 0)
	fmt.Println("run", runs)
	// Output: run 1
}

// Lock and Unlock make an RWMutex a sync.Locker, shared by goroutines and
// processes alike.
func ExampleRWMutex_Lock() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	m, err := flock.Open(filepath.Join(dir, "state.lock"))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	m.Lock()
	fmt.Println("exclusive")
	m.Unlock()

	m.RLock()
	m.RLock() // readers share
	fmt.Println("shared twice")
	m.RUnlock()
	m.RUnlock()
	// Output:
	// exclusive
	// shared twice
}

// A server handler waits for the lock no longer than its request allows,
// and gives up cleanly when the deadline passes or the client goes away.
func ExampleRWMutex_LockContext() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	m, err := flock.Open(filepath.Join(dir, "cache.lock"))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	rebuild := func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 50*time.Millisecond)
		defer cancel()
		if err := m.LockContext(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				http.Error(w, "busy, try again", http.StatusServiceUnavailable)
				return
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer m.Unlock()
		fmt.Fprintln(w, "rebuilt")
	}

	call := func() {
		rec := httptest.NewRecorder()
		rebuild(rec, httptest.NewRequest("POST", "/rebuild", nil))
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	call()

	// While someone else (here: another handle, as another process would)
	// holds the lock, the request times out instead of hanging.
	other, _ := flock.Open(filepath.Join(dir, "cache.lock"))
	defer other.Close()
	other.RLock()
	call()
	other.RUnlock()
	// Output:
	// 200 rebuilt
	// 503 busy, try again
}

// The goroutines of an errgroup pipeline share one handle; the first error
// cancels the group, and goroutines waiting for the lock return at once.
func ExampleRWMutex_LockContext_errgroup() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	m, err := flock.Open(filepath.Join(dir, "journal"))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	g, ctx := errgroup.WithContext(context.Background())
	for i := 0; i < 8; i++ {
		g.Go(func() error {
			if err := m.LockContext(ctx); err != nil {
				return err
			}
			defer m.Unlock()
			// Append a line under the lock.
			f := m.File()
			end, err := f.Seek(0, 2)
			if err != nil {
				return err
			}
			_, err = f.WriteAt([]byte("entry\n"), end)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "journal"))
	fmt.Println(strings.Count(string(b), "entry"), "entries")
	// Output: 8 entries
}

// RLocker adapts the read side to code that takes a sync.Locker.
func ExampleRWMutex_RLocker() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	m, err := flock.Open(filepath.Join(dir, "lock"))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	l := m.RLocker()
	l.Lock()
	ok, _ := m.TryLock()
	fmt.Println("writer got in while reading:", ok)
	l.Unlock()
	// Output: writer got in while reading: false
}
