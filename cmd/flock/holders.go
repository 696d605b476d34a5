package main

// The -H, --list-holders form: who holds the lock on a file. util-linux
// flock(1) has no such option; lslocks(8) answers it on Linux for every
// file at once.

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/go-flock/flock"
)

// listHolders prints the holders of the lock on the one FILE|DIRECTORY
// argument, one line each, and exits 0 if there are none, cfg.conflict (1
// unless -E) if there are.
func (c *cli) listHolders(cfg *config) error {
	if len(cfg.args) != 1 {
		return c.fail(exitUsage, "--list-holders takes one file or directory and no command")
	}
	path := cfg.args[0]
	m, err := flock.Open(path, flock.NoCreate())
	if err != nil {
		if path == "" {
			err = errNoSuchFile
		}
		return c.fail(openStatus(err), "cannot open lock file %s: %s", path, errText(err))
	}
	defer m.Close()
	hs, err := m.Holders()
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return c.fail(exitUnavailable, "%s: listing the holders of a lock is not supported on %s", path, runtime.GOOS)
	case err != nil:
		return c.fail(exitDataErr, "%s: %s", path, errText(err))
	}
	for _, h := range hs {
		fmt.Fprintln(c.stdout, holderLine(h))
	}
	if len(hs) > 0 {
		return exitStatus(cfg.conflict)
	}
	return nil
}

// holderLine is the line -H prints for h: "PID MODE KIND COMMAND", with
// MODE "exclusive" or "shared", "-" for an unknown KIND or COMMAND, and
// COMMAND the rest of the line.
func holderLine(h flock.Holder) string {
	mode := "shared"
	if h.Exclusive {
		mode = "exclusive"
	}
	return strconv.Itoa(h.PID) + " " + mode + " " + orDash(h.Kind) + " " + orDash(h.Command)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// heldBy says who holds m's lock, for the waiting notice: " (held by pid
// 4242 backup.sh)", or "" if that cannot be told.
func heldBy(m *flock.RWMutex) string {
	hs, err := m.Holders()
	if err != nil || len(hs) == 0 {
		return ""
	}
	const most = 3
	var who []string
	for i, h := range hs {
		if i == most {
			who = append(who, fmt.Sprintf("and %d more", len(hs)-most))
			break
		}
		s := "pid " + strconv.Itoa(h.PID)
		if h.PID <= 0 {
			s = "pid unknown"
		}
		if h.Command != "" {
			s += " " + h.Command
		}
		who = append(who, s)
	}
	return " (held by " + strings.Join(who, ", ") + ")"
}
