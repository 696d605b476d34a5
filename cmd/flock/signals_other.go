//go:build !unix

package main

import (
	"os"
	"os/signal"
	"runtime"
)

// terminating lists the signals on which flock gives up: Ctrl-C.
var terminating = []os.Signal{os.Interrupt}

// die exits with the status of a process that Ctrl-C ended: on Windows
// STATUS_CONTROL_C_EXIT, elsewhere the 130 that a POSIX shell shows for
// SIGINT.
func die(os.Signal) {
	if runtime.GOOS == "windows" {
		status := uint32(0xC000013A)
		os.Exit(int(int32(status)))
	}
	os.Exit(130)
}

// commandStarts is called once the lock is held, just before the command
// starts. The command cannot inherit the lock here, so flock must outlive
// it to keep the lock: from now on it ignores Ctrl-C (which the command
// gets too) and exits when the command does.
func (s *signals) commandStarts() {
	signal.Ignore(terminating...)
}
