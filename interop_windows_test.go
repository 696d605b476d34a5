package flock

// Which Windows locks exclude which: this package (one byte at 2^63-2),
// github.com/gofrs/flock (one byte at offset 0), and whole-file lockers
// (Rust std File::lock, cmd/go's lockedfile: LockFileEx over every byte
// from offset 0). The gofrs/flock side is a driver built from the bench
// module (bench/cmd/gofrsdriver), which .ci/windows.sh builds and names in
// FLOCK_GOFRS_DRIVER; the whole-file side is LockFileEx on a handle of the
// test's own. Pairs of one library are measured too: this package against
// a child process of the test, gofrs/flock against a second driver, and
// whole-file against another handle.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

// startGofrs starts the gofrs/flock driver on path.
func startGofrs(t *testing.T, exe, path string) *child {
	t.Helper()
	return startCommand(t, exec.Command(exe, path))
}

// winWholeFile locks every byte from offset 0 through a handle of its own,
// as Rust std's File::lock and cmd/go's lockedfile do. It reports whether
// the lock was granted; if so, release unlocks and closes.
func winWholeFile(t *testing.T, path string, excl bool) (bool, func()) {
	t.Helper()
	h, err := windows.CreateFile(winPtr(path), windows.GENERIC_READ, shareAll, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	flags := uint32(windows.LOCKFILE_FAIL_IMMEDIATELY)
	if excl {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	var ol windows.Overlapped
	switch err := windows.LockFileEx(h, flags, 0, ^uint32(0), ^uint32(0), &ol); err {
	case nil:
		return true, func() {
			var ol windows.Overlapped
			if err := windows.UnlockFileEx(h, 0, ^uint32(0), ^uint32(0), &ol); err != nil {
				t.Errorf("unlock the whole-file lock: %v", err)
			}
			windows.CloseHandle(h)
		}
	case windows.ERROR_LOCK_VIOLATION:
		windows.CloseHandle(h)
		return false, nil
	default:
		windows.CloseHandle(h)
		t.Fatalf("whole-file LockFileEx: %v", err)
		return false, nil
	}
}

// TestWindowsGofrsInterop measures which of the three kinds of lock exclude
// each other, for each pair and both modes, and checks the table the README
// states.
func TestWindowsGofrsInterop(t *testing.T) {
	exe := os.Getenv("FLOCK_GOFRS_DRIVER")
	if exe == "" {
		t.Skip("FLOCK_GOFRS_DRIVER does not name the gofrs/flock driver (.ci/windows.sh builds it from bench/cmd/gofrsdriver)")
	}
	path := filepath.Join(winTempDir(t), "lock")
	m := winOpen(t, path)
	g := startGofrs(t, exe, path)
	// The second of each library, for the pairs of one library: another
	// process each (this package's handles in one process share one
	// entry and so one OS lock).
	c := startChild(t, path)
	g2 := startGofrs(t, exe, path)

	type side struct {
		name string
		// hold takes the lock in mode (excl or not) and returns its
		// release, or nil if it was refused.
		hold func(excl bool) func()
	}
	ours := side{"go-flock", func(excl bool) func() {
		try, unlock := m.TryRLock, m.RUnlock
		if excl {
			try, unlock = m.TryLock, m.Unlock
		}
		if ok, err := try(); err != nil {
			t.Fatal(err)
		} else if !ok {
			return nil
		}
		return unlock
	}}
	// remote is a side in another process that answers the locker
	// protocol (a child of this test, or the gofrs/flock driver); unlock
	// and runlock name its release commands for the two modes.
	remote := func(name string, p *child, unlock, runlock string) side {
		return side{name, func(excl bool) func() {
			cmd, release := "tryrlock", runlock
			if excl {
				cmd, release = "trylock", unlock
			}
			switch got := p.Do(cmd); got {
			case "ok":
				return func() { p.Must(t, release) }
			case "held":
				return nil
			default:
				t.Fatalf("%s %s: %s", name, cmd, got)
				return nil
			}
		}}
	}
	gofrs := remote("gofrs/flock", g, "unlock", "unlock")
	// The contender of a pair of one library is its second instance.
	second := map[string]side{
		"go-flock":    remote("go-flock", c, "unlock", "runlock"),
		"gofrs/flock": remote("gofrs/flock", g2, "unlock", "unlock"),
	}
	whole := side{"whole-file", func(excl bool) func() {
		ok, release := winWholeFile(t, path, excl)
		if !ok {
			return nil
		}
		return release
	}}

	// excludes[holder][contender] for exclusive holder and contender; the
	// table's other modes (shared against exclusive) are checked to agree.
	want := map[[2]string]bool{
		{"go-flock", "go-flock"}:       true,
		{"gofrs/flock", "gofrs/flock"}: true,
		{"whole-file", "whole-file"}:   true,
		{"go-flock", "gofrs/flock"}:    false,
		{"gofrs/flock", "go-flock"}:    false,
		{"go-flock", "whole-file"}:     true,
		{"whole-file", "go-flock"}:     true,
		{"gofrs/flock", "whole-file"}:  true,
		{"whole-file", "gofrs/flock"}:  true,
	}
	var table strings.Builder
	fmt.Fprintf(&table, "holder (mode) | contender (mode) | contender granted\n")
	for _, holder := range []side{ours, gofrs, whole} {
		for _, contender := range []side{ours, gofrs, whole} {
			if s, ok := second[contender.name]; ok && holder.name == contender.name {
				contender = s
			}
			for _, modes := range [][2]bool{{true, true}, {true, false}, {false, true}, {false, false}} {
				release := holder.hold(modes[0])
				if release == nil {
					t.Fatalf("%s refused on a free file", holder.name)
				}
				got := contender.hold(modes[1])
				if got != nil {
					got()
				}
				release()
				fmt.Fprintf(&table, "%s (%s) | %s (%s) | %v\n", holder.name, winModeNameBool(modes[0]), contender.name, winModeNameBool(modes[1]), got != nil)
				excludes := want[[2]string{holder.name, contender.name}]
				shouldGrant := !excludes || !modes[0] && !modes[1]
				if (got != nil) != shouldGrant {
					t.Errorf("%s holding a %s lock, %s asking for a %s lock: granted %v, want %v",
						holder.name, winModeNameBool(modes[0]), contender.name, winModeNameBool(modes[1]), got != nil, shouldGrant)
				}
			}
		}
	}
	t.Logf("measured:\n%s", table.String())
	winRawFree(t, path, "at the end")
}

func winModeNameBool(excl bool) string {
	if excl {
		return "write"
	}
	return "read"
}
