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
	"sync/atomic"
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

// A server handler waits for the lock no longer than its request allows.
// Its own deadline passing means the lock is busy: 503 with Retry-After.
// The client going away is no server error: nothing is written. Any other
// error is logged, and the client gets a 500 without the server's details
// (the error names a file path of the server).
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
			switch {
			case r.Context().Err() != nil:
				// The client is gone: nobody reads an answer.
			case errors.Is(err, context.DeadlineExceeded):
				w.Header().Set("Retry-After", "1")
				http.Error(w, "busy, try again", http.StatusServiceUnavailable)
			default:
				log.Printf("rebuild: %v", err)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
			return
		}
		defer m.Unlock()
		fmt.Fprintln(w, "rebuilt")
	}

	call := func(r *http.Request) {
		rec := httptest.NewRecorder()
		rebuild(rec, r)
		if rec.Body.Len() == 0 {
			fmt.Println("nothing written")
			return
		}
		fmt.Print(rec.Code, " ", rec.Header().Get("Retry-After"), " ", rec.Body.String())
	}
	call(httptest.NewRequest("POST", "/rebuild", nil))

	// While someone else (here: another handle, as another process would)
	// holds the lock, the request times out instead of hanging.
	other, _ := flock.Open(filepath.Join(dir, "cache.lock"))
	defer other.Close()
	other.RLock()
	call(httptest.NewRequest("POST", "/rebuild", nil))

	// A client that went away.
	gone, hangUp := context.WithCancel(context.Background())
	hangUp()
	call(httptest.NewRequest("POST", "/rebuild", nil).WithContext(gone))
	other.RUnlock()
	// Output:
	// 200  rebuilt
	// 503 1 busy, try again
	// nothing written
}

// The goroutines of an errgroup pipeline share one handle: the first error
// cancels the group, and the goroutines waiting for the lock give up at
// once, holding nothing.
func ExampleRWMutex_LockContext_errgroup() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "journal")
	m, err := flock.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// Another process (here: another handle) holds the journal, so the
	// appenders wait.
	other, _ := flock.Open(path)
	defer other.Close()
	other.Lock()

	g, ctx := errgroup.WithContext(context.Background())
	var gaveUp atomic.Int32
	for i := 0; i < 8; i++ {
		g.Go(func() error {
			if err := m.LockContext(ctx); err != nil {
				gaveUp.Add(1)
				return err
			}
			defer m.Unlock()
			_, err := m.File().WriteAt([]byte("entry\n"), 0)
			return err
		})
	}
	g.Go(func() error { return errors.New("input is malformed") })
	err = g.Wait()
	fmt.Println("first error:", err)
	fmt.Println("appenders that gave up:", gaveUp.Load())
	other.Unlock()
	ok, _ := m.TryLock() // nothing of the appenders is left waiting or held
	fmt.Println("free once the other handle lets go:", ok)
	if ok {
		m.Unlock()
	}
	// Output:
	// first error: input is malformed
	// appenders that gave up: 8
	// free once the other handle lets go: true
}

// Read-modify-write of the lock file's content under the lock, with ReadAt
// and WriteAt (all handles of a process share one *os.File and its offset,
// so offsets are given, never kept).
func ExampleRWMutex_File() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	m, err := flock.Open(filepath.Join(dir, "counter"))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	for i := 0; i < 3; i++ {
		m.Lock()
		buf := make([]byte, 20)
		n, _ := m.File().ReadAt(buf, 0)
		count, _ := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
		count++
		m.File().WriteAt([]byte(fmt.Sprintf("%-20d", count)), 0)
		m.Unlock()
	}
	b, _ := os.ReadFile(filepath.Join(dir, "counter"))
	fmt.Println("count:", strings.TrimSpace(string(b)))
	// Output: count: 3
}

// Close refuses, and changes nothing, while the handle holds a lock: a
// deferred Close whose error is dropped would leave the lock held.
// Unlock first.
func ExampleRWMutex_Close() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	m, err := flock.Open(filepath.Join(dir, "lock"))
	if err != nil {
		log.Fatal(err)
	}
	m.Lock()
	err = m.Close()
	fmt.Println("Close while locked is ErrLocked:", errors.Is(err, flock.ErrLocked))
	m.Unlock()
	fmt.Println("Close after Unlock:", m.Close())
	_, err = m.TryLock()
	fmt.Println("TryLock after Close is ErrClosed:", errors.Is(err, os.ErrClosed))
	// Output:
	// Close while locked is ErrLocked: true
	// Close after Unlock: <nil>
	// TryLock after Close is ErrClosed: true
}

// Options: a lock file only its owner may open, writers that go before new
// readers of every process that uses the option, and a file that goes away
// when the writer is done with it.
func ExampleOpen_options() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "job.lock")
	m, err := flock.Open(path, flock.WithPerm(0o600), flock.WriterPriority(), flock.RemoveOnUnlock())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	m.Lock()
	fi, _ := os.Stat(path)
	fmt.Println("while held:", fi.Mode().Perm())
	m.Unlock()
	_, err = os.Stat(path)
	fmt.Println("after Unlock, removed:", errors.Is(err, os.ErrNotExist))
	// Output:
	// while held: -rw-------
	// after Unlock, removed: true
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
