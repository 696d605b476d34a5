//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// terminating lists the signals whose default action ends util-linux flock
// (which installs no handlers) and that a user or a supervisor sends.
var terminating = []os.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
}

// die ends the process by sig where the Go runtime allows it: once sig is
// no longer relayed to a channel, the runtime kills the process with
// SIGHUP, SIGINT and SIGTERM. For the others (the runtime dumps goroutines
// on SIGQUIT and ignores SIGUSR1 and SIGUSR2) flock exits with 128+sig, the
// status a shell shows for death by sig.
func die(sig os.Signal) {
	s, _ := sig.(syscall.Signal)
	switch s {
	case syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM:
		signal.Reset(s)
		syscall.Kill(syscall.Getpid(), s)
		time.Sleep(time.Second) // delivery is asynchronous
	}
	os.Exit(128 + int(s))
}

// commandStarts is called once the lock is held, just before the command
// starts. Nothing changes: as util-linux flock, flock dies by a terminating
// signal while the command runs, and the command keeps the lock if it
// inherited it.
func (s *signals) commandStarts() {}
