//go:build unix

package flock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func init() {
	childRoles["remover"] = removerMain
}

func TestRemoveOnUnlock(t *testing.T) {
	p := lockPath(t)
	a, b := mustOpen(t, p, RemoveOnUnlock()), mustOpen(t, p, RemoveOnUnlock())
	first := a.rm.cur
	a.Lock()
	a.File().WriteAt([]byte("a"), 0)
	a.Unlock()
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock file after Unlock: %v; want it removed", err)
	}

	// b still refers to the removed file; its next lock moves to a new one.
	b.RLock()
	if b.rm.heldEntry() == first {
		t.Fatal("b holds a read lock on the removed file")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("lock file not re-created: %v", err)
	}
	b.RUnlock()
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("RUnlock removed the file: %v", err)
	}

	// A waiter admitted on a file that was removed under it moves on.
	a.Lock()
	got := make(chan *os.File)
	go func() { b.Lock(); got <- b.File() }()
	eventually(t, "b waits", func() bool { return a.rm.cur.queued() == 1 })
	held := a.File()
	a.Unlock()
	f := <-got
	if f == held {
		t.Fatal("b got the lock on the removed file")
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := f.Stat(); !os.SameFile(fi, st) {
		t.Fatal("b's file is not the one at the path")
	}
	b.Unlock()

	hammer(t, []*RWMutex{a, b}, 6, 300)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	registry.mu.Lock()
	n := len(registry.entries)
	registry.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d entries left in the registry", n)
	}
}

// removerMain locks, works and unlocks the file at FLOCK_TEST_PATH
// FLOCK_TEST_N times, checking with a witness directory (FLOCK_TEST_WITNESS)
// that no two holders meet: a writer creates it (mkdir fails if another
// writer is inside) and removes it before unlocking; a reader fails if it
// sees it. With FLOCK_TEST_OPTS=naive it removes the file the naive way
// (after unlocking, with a plain handle opened each time). It prints "done
// VIOLATIONS".
func removerMain() {
	path, witness := os.Getenv("FLOCK_TEST_PATH"), os.Getenv("FLOCK_TEST_WITNESS")
	n, _ := strconv.Atoi(os.Getenv("FLOCK_TEST_N"))
	naive := os.Getenv("FLOCK_TEST_OPTS") == "naive"
	var m *RWMutex
	var err error
	if !naive {
		if m, err = Open(path, RemoveOnUnlock()); err != nil {
			fmt.Println("err", err)
			os.Exit(1)
		}
	}
	fmt.Println("ready")
	violations := 0
	for i := 0; i < n; i++ {
		if naive {
			if m, err = Open(path); err != nil {
				fmt.Println("err", err)
				os.Exit(1)
			}
		}
		if i%4 == 3 {
			m.RLock()
			if _, err := os.Stat(witness); err == nil {
				violations++
			}
			m.RUnlock()
		} else {
			m.Lock()
			if err := os.Mkdir(witness, 0o755); err != nil {
				violations++
			} else if err := os.Remove(witness); err != nil {
				fmt.Println("err", err)
				os.Exit(1)
			}
			if naive {
				os.Remove(path)
			}
			m.Unlock()
		}
		if naive {
			m.Close()
		}
	}
	fmt.Println("done", violations)
}

// Many processes lock, remove and re-create one lock file in a tight loop:
// never two holders at once.
func TestRemoveOnUnlockProcesses(t *testing.T) {
	const procs, iterations = 4, 2500 // 10,000 lock sections in all
	dir := t.TempDir()
	run := func(opts string) int {
		p, witness := filepath.Join(dir, opts+"lock"), filepath.Join(dir, opts+"witness")
		var children []*child
		for i := 0; i < procs; i++ {
			children = append(children, startChildRole(t, "remover", p,
				"FLOCK_TEST_WITNESS="+witness, "FLOCK_TEST_N="+strconv.Itoa(iterations), "FLOCK_TEST_OPTS="+opts))
		}
		total := 0
		for _, c := range children {
			got := c.Recv()
			v, err := strconv.Atoi(strings.TrimPrefix(got, "done "))
			if err != nil {
				t.Fatalf("remover child: %s", got)
			}
			total += v
		}
		return total
	}
	if v := run(""); v != 0 {
		t.Errorf("RemoveOnUnlock: %d double holders in %d lock sections", v, procs*iterations)
	}
	// The naive way must show double holders, or the witness sees nothing
	// (it showed thousands in every run here).
	v := run("naive")
	t.Logf("naive unlink: %d double holders in %d lock sections", v, procs*iterations)
	if v == 0 {
		t.Error("the witness saw no double holder with naive unlinking: it cannot be trusted")
	}
}
