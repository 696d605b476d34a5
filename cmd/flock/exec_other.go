//go:build !unix

package main

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
)

var (
	errInvalidTimer = errors.New("Invalid argument")
	errNoSuchFile   = errors.New("No such file or directory")
	errRange        = errors.New("Numerical result out of range")
)

// openStatus is the exit status for a lock file that cannot be opened.
func openStatus(error) int { return exitNoInput }

// shellCommand returns the argument vector that runs command through the
// user's shell: $SHELL -c, else %ComSpec% /C on Windows.
func shellCommand(command string) []string {
	if sh := os.Getenv("SHELL"); sh != "" {
		return []string{sh, "-c", command}
	}
	if runtime.GOOS == "windows" {
		cs := os.Getenv("ComSpec")
		if cs == "" {
			cs = "cmd.exe"
		}
		return []string{cs, "/C", command}
	}
	return []string{"/bin/sh", "-c", command}
}

// firstFreeFD has no descriptor numbers to predict here.
func firstFreeFD() int { return -1 }

// execute runs argv as a child and returns its exit status. A lock cannot
// be handed to a child here (Windows locks belong to the process that took
// them), so flock holds it while the command runs, whatever inherit and
// noFork say.
func (c *cli) execute(argv []string, inherit *os.File, first int, noFork bool) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return c.fail(exitUnavailable, "failed to execute %s: %s", argv[0], errText(err))
	}
	proc, err := os.StartProcess(path, argv, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		return c.fail(exitUnavailable, "failed to execute %s: %s", argv[0], errText(err))
	}
	state, err := proc.Wait()
	if err != nil {
		return c.fail(exitOSErr, "waiting for %s: %s", argv[0], errText(err))
	}
	return exitStatus(state.ExitCode())
}
