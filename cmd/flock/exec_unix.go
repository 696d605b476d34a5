//go:build unix

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

var (
	errInvalidTimer error = unix.EINVAL
	errNoSuchFile   error = unix.ENOENT
	errRange        error = unix.ERANGE
)

// openStatus is the exit status for a lock file that cannot be opened.
func openStatus(err error) int {
	switch {
	case errors.Is(err, unix.ENOMEM), errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
		return exitOSErr
	case errors.Is(err, unix.EROFS), errors.Is(err, unix.ENOSPC):
		return exitCantCreat
	}
	return exitNoInput
}

// shellCommand returns the argument vector that runs command through the
// user's shell.
func shellCommand(command string) []string {
	sh := os.Getenv("SHELL")
	if sh == "" {
		sh = "/bin/sh"
	}
	return []string{sh, "-c", command}
}

// execute runs argv, looked up as execvp(3) does, and returns the status
// flock exits with: the command's, or 128+N if signal N killed it. If
// inherit is not nil the command inherits its open file, which carries
// the lock, at descriptor first if that is the lock file's own descriptor
// (see firstFreeFD), else at inherit's number. With noFork the command
// replaces flock and execute returns only if it could not be executed.
func (c *cli) execute(argv []string, inherit *os.File, first int, noFork bool) error {
	if inherit != nil {
		if err := setInheritable(inherit, first); err != nil {
			return c.fail(exitOSErr, "%s: %s", inherit.Name(), errText(err))
		}
	}
	run := func(path string, argv []string) (*os.Process, error) {
		if noFork {
			return nil, syscall.Exec(path, argv, os.Environ())
		}
		return os.StartProcess(path, argv, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	}

	var proc *os.Process
	var err error
	sawEACCES := false
search:
	for _, path := range candidates(argv[0]) {
		if _, serr := os.Stat(path); serr != nil {
			err = serr // what execve would say, without forking for it
		} else {
			proc, err = run(path, argv)
			if err == nil {
				break
			}
		}
		var errno syscall.Errno
		errors.As(err, &errno)
		switch errno {
		case unix.ENOEXEC:
			// Not a binary and no #! line: a shell script, as execvp runs it.
			script := append([]string{"/bin/sh", path}, argv[1:]...)
			proc, err = run("/bin/sh", script)
			break search
		case unix.EACCES:
			sawEACCES = true
		case unix.ENOENT, unix.ENOTDIR, unix.ESTALE, unix.ENODEV, unix.ETIMEDOUT:
		default:
			break search
		}
	}
	if proc == nil {
		var errno syscall.Errno
		if err == nil || (errors.As(err, &errno) && sawEACCES && errno != unix.EACCES && errno != unix.ENOEXEC) {
			if sawEACCES {
				err = unix.EACCES
			} else {
				err = unix.ENOENT
			}
		}
		code := exitUnavailable
		if errors.Is(err, unix.ENOMEM) {
			code = exitOSErr
		}
		return c.fail(code, "failed to execute %s: %s", argv[0], errText(err))
	}

	state, err := proc.Wait()
	if err != nil {
		return c.fail(exitOSErr, "waitpid failed: %s", errText(err))
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitStatus(128 + int(ws.Signal()))
	}
	return exitStatus(state.ExitCode())
}

// candidates lists the paths execvp(3) tries for name: name itself if it
// has a slash, else name in each directory of $PATH ("/bin:/usr/bin" if
// PATH is unset; an empty entry is the current directory).
func candidates(name string) []string {
	if name == "" {
		return nil
	}
	if strings.Contains(name, "/") {
		return []string{name}
	}
	path, ok := os.LookupEnv("PATH")
	if !ok {
		path = "/bin:/usr/bin"
	}
	var list []string
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			list = append(list, name)
		} else {
			list = append(list, filepath.Join(dir, name))
		}
	}
	return list
}

// setInheritable clears close-on-exec on descriptor first if it is of f's
// file (the lock file's own descriptor, which shares f's open file), else
// on f, so that the command inherits the locked open file. The package
// opens both close-on-exec.
func setInheritable(f *os.File, first int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	cerr := rc.Control(func(fd uintptr) {
		if first >= 0 && sameFile(int(fd), first) {
			fd = uintptr(first)
		}
		_, err = unix.FcntlInt(fd, unix.F_SETFD, 0)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// firstFreeFD returns the descriptor number the next open gets: the one
// util-linux's flock(1) locks through, and at which its command inherits
// the lock. The package's Open of the lock file, which comes next, gets it
// too; File then returns a descriptor of its own, at another number, of
// the same open file (the one that carries the lock, once it is held), so
// the command can inherit the lock at the number util-linux would give.
func firstFreeFD() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	unix.Close(fd)
	return fd
}

// sameFile reports whether descriptors a and b are open on the same file.
func sameFile(a, b int) bool {
	var sa, sb unix.Stat_t
	return unix.Fstat(a, &sa) == nil && unix.Fstat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
