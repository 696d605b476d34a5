//go:build unix && !aix && !(solaris && !illumos)

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/go-flock/flock"
)

// listable reports whether this platform lists holders, and if it lists
// every one with its pid (Linux) or at most one without (macOS, FreeBSD).
func listable() (ok, full bool) {
	switch runtime.GOOS {
	case "linux", "android":
		return true, true
	case "darwin", "ios", "freebsd":
		return true, false
	}
	return false, false
}

// wantLine is the line -H prints for a holder that flock(1) (pid) took.
func wantLine(pid int, exclusive, full bool) string {
	mode := "shared"
	if exclusive {
		mode = "exclusive"
	}
	if !full {
		return "-1 " + mode + " FLOCK -"
	}
	return fmt.Sprintf("%d %s FLOCK flock", pid, mode)
}

// flock -H lists the holders of a lock taken by util-linux flock(1), and
// by ours, with flock's pid, the mode, FLOCK and the command name "flock",
// and exits 1 (or -E's value); a free lock lists nobody and exits 0.
func TestListHolders(t *testing.T) {
	ok, full := listable()
	if !ok {
		t.Skipf("holders cannot be listed on %s", runtime.GOOS)
	}
	forEach(t, func(t *testing.T, holder string) {
		f := filepath.Join(testDir(t), "lock")
		if r := run(t, oursBin, "-H", f); r.code != 66 || r.stdout != "" {
			t.Fatalf("flock -H on a missing file: %v, stdout %q; want exit 66, nothing", r, r.stdout)
		}
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Fatalf("flock -H created the lock file: %v", err)
		}

		h := hold(t, holder, f)
		want := wantLine(h.cmd.Process.Pid, true, full) + "\n"
		if r := run(t, oursBin, "-H", f); r.code != 1 || r.stdout != want || r.stderr != "" {
			t.Errorf("flock -H with %s holding: %v, stdout %q; want exit 1, %q", holder, r, r.stdout, want)
		}
		if r := run(t, oursBin, "--list", "-E", "7", f); r.code != 7 || r.stdout != want {
			t.Errorf("flock --list -E 7 with %s holding: %v, stdout %q; want exit 7, %q", holder, r, r.stdout, want)
		}
		h.release()

		if r := run(t, oursBin, "--list-holders", f); r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("flock --list-holders on a free lock: %v, stdout %q; want exit 0, nothing", r, r.stdout)
		}
	})
}

// Two readers, util-linux's and ours, are both listed (where the platform
// lists them all).
func TestListHoldersReaders(t *testing.T) {
	ok, full := listable()
	if !ok || !full {
		t.Skipf("all the holders of a shared lock cannot be listed on %s", runtime.GOOS)
	}
	if utilBin == "" {
		t.Skip("util-linux flock not available: " + utilWhy)
	}
	f := filepath.Join(testDir(t), "lock")
	h1 := hold(t, utilBin, "-s", f)
	h2 := hold(t, oursBin, "-s", f)
	r := run(t, oursBin, "-H", f)
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	want := []string{wantLine(h1.cmd.Process.Pid, false, true), wantLine(h2.cmd.Process.Pid, false, true)}
	slices.Sort(got)
	slices.Sort(want)
	if r.code != 1 || !slices.Equal(got, want) {
		t.Errorf("flock -H with two readers: %v, stdout %q; want exit 1, lines %q", r, r.stdout, want)
	}
	h1.release()
	h2.release()
}

// A command after the file is a usage error; the other lock options are
// ignored.
func TestListHoldersUsage(t *testing.T) {
	f := filepath.Join(testDir(t), "lock")
	if err := os.WriteFile(f, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	r := run(t, oursBin, "-H", f, "true")
	if r.code != 64 || r.stderr != "flock: --list-holders takes one file or directory and no command\n" {
		t.Errorf("flock -H FILE true: %v; want a usage error", r)
	}
	if ok, _ := listable(); ok {
		if r := run(t, oursBin, "-s", "-n", "-w", "1", "-H", f); r.code != 0 || r.stdout != "" {
			t.Errorf("flock -s -n -w 1 -H on a free lock: %v, stdout %q; want exit 0, nothing", r, r.stdout)
		}
	} else if r := run(t, oursBin, "-H", f); r.code != 69 {
		t.Errorf("flock -H where holders cannot be listed: %v; want exit 69", r)
	}
}

// The new option changes nothing util-linux accepts: "--h" is still
// --help, for both.
func TestListHoldersAbbreviations(t *testing.T) {
	forEach(t, func(t *testing.T, bin string) {
		r := run(t, bin, "--h")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%s --h: %v, stdout %q; want the help", bin, r, r.stdout)
		}
	})
}

func TestHolderLine(t *testing.T) {
	for _, tt := range []struct {
		h    flock.Holder
		want string
	}{
		{flock.Holder{PID: 4242, Exclusive: true, Kind: "FLOCK", Command: "backup.sh"}, "4242 exclusive FLOCK backup.sh"},
		{flock.Holder{PID: 7, Kind: "POSIX", Command: "my prog"}, "7 shared POSIX my prog"},
		{flock.Holder{PID: -1, Exclusive: true, Kind: "FLOCK"}, "-1 exclusive FLOCK -"},
		{flock.Holder{PID: 0}, "0 shared - -"},
	} {
		if got := holderLine(tt.h); got != tt.want {
			t.Errorf("holderLine(%+v) = %q; want %q", tt.h, got, tt.want)
		}
	}
}

// The waiting notice's part naming the holders.
func TestHeldBy(t *testing.T) {
	ok, full := listable()
	if !ok {
		t.Skipf("holders cannot be listed on %s", runtime.GOOS)
	}
	f := filepath.Join(testDir(t), "lock")
	h := hold(t, oursBin, f)
	m, err := flock.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := " (held by pid unknown)"
	if full {
		want = fmt.Sprintf(" (held by pid %d flock)", h.cmd.Process.Pid)
	}
	if got := heldBy(m); got != want {
		t.Errorf("heldBy = %q; want %q", got, want)
	}
	h.release()
	if got := heldBy(m); got != "" {
		t.Errorf("heldBy of a free lock = %q; want \"\"", got)
	}
}
