//go:build unix

package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/go-flock/flock"
)

// The stall and violation reports name the lock's holders through the
// package's Holders: pid, the worker whose pid it is, and the mode; nobody
// once it is free; in path mode, only the files somebody holds.
func TestReportHolders(t *testing.T) {
	dir := t.TempDir()
	m, err := createShm(filepath.Join(dir, "witness"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	self := os.Getpid()
	m.slot(1).pid.Store(int64(self)) // this process plays worker 1
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	p := &parent{cfg: defaultConfig(), lockPath: a, m: m}

	if got := p.holders(); !strings.Contains(got, "no such file") {
		t.Errorf("holders of a missing lock file = %q; want the open error", got)
	}
	if _, err := os.Stat(a); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("holders created the lock file: %v", err)
	}
	h, err := flock.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Holders(); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("Holders is not supported on %s: %v", runtime.GOOS, err)
	}
	h.Lock()
	got := p.holders()
	h.Unlock()
	want := " [pid " + strconv.Itoa(self)
	if !strings.HasPrefix(got, want) || !strings.Contains(got, " (worker 1) (the parent) exclusive ") {
		t.Errorf("holders with this process writing = %q; want %q..., worker 1, the parent, exclusive", got, want)
	}
	if got := p.holders(); got != " [none]" {
		t.Errorf("holders of a free lock = %q; want \" [none]\"", got)
	}

	// Path mode: b is held, a is not.
	p.cfg.Files, p.paths = 2, []string{a, b}
	hb, err := flock.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	hb.RLock()
	got = p.holders()
	hb.RUnlock()
	if !strings.HasPrefix(got, " b: [pid "+strconv.Itoa(self)) || strings.Contains(got, " a:") || !strings.Contains(got, " shared ") {
		t.Errorf("path-mode holders with b read-locked = %q; want b's reader only", got)
	}
	if got := p.holders(); got != " [none of the lock files is held]" {
		t.Errorf("path-mode holders, all free = %q", got)
	}
}
