//go:build unix && !aix && !(solaris && !illumos)

package main

// The conformance table: every scenario runs with our flock and with
// util-linux flock(1), which must agree. One file (over the usual length)
// because the table is one list.

import (
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A scenario runs one flock command, optionally while the same flock holds
// a lock, and checks its exit status and standard error. In args, stderr and
// hold, {f} is a lock file path (not created beforehand), {d} the test's
// directory and {bin} the flock under test. After the command has ended,
// the lock state must be the holder's (or free without a holder): the
// command neither took the holder's lock away nor left one behind.
type scenario struct {
	name   string
	setup  func(t *testing.T, dir string)
	hold   []string
	args   []string
	code   int
	stderr string
	check  func(t *testing.T, dir string)
}

const tryHelp = "Try 'flock --help' for more information.\n"

var scenarios = []scenario{
	// Conflicts, -n, -w, -E.
	{name: "exclusive vs exclusive -n", hold: []string{"{f}"}, args: []string{"-n", "{f}", "true"}, code: 1},
	{name: "exclusive vs exclusive --nonblock", hold: []string{"-x", "{f}"}, args: []string{"--nonblock", "{f}", "true"}, code: 1},
	{name: "-E sets the conflict status", hold: []string{"{f}"}, args: []string{"-n", "-E", "7", "{f}", "true"}, code: 7},
	{name: "-E 0", hold: []string{"{f}"}, args: []string{"-n", "--conflict-exit-code=0", "{f}", "true"}, code: 0},
	{name: "--verbose conflict", hold: []string{"{f}"}, args: []string{"--verbose", "-n", "{f}", "true"}, code: 1, stderr: "flock: failed to get lock\n"},
	{name: "-w expires", hold: []string{"{f}"}, args: []string{"-w", "0.2", "--verbose", "{f}", "true"}, code: 1, stderr: "flock: timeout while waiting to get lock\n"},
	{name: "-w expires with -E", hold: []string{"{f}"}, args: []string{"-w", ".1", "-E", "3", "{f}", "true"}, code: 3},
	{name: "-w hexadecimal", hold: []string{"{f}"}, args: []string{"--timeout=0x1p-3", "{f}", "true"}, code: 1},
	{name: "-w 0 means -n", hold: []string{"{f}"}, args: []string{"--verbose", "-w", "0", "{f}", "true"}, code: 1, stderr: "flock: failed to get lock\n"},
	{name: "-w below a microsecond means -n", hold: []string{"{f}"}, args: []string{"--verbose", "-w", "0.000001", "{f}", "true"}, code: 1, stderr: "flock: failed to get lock\n"},
	{name: "-n stands with -w", hold: []string{"{f}"}, args: []string{"--verbose", "-n", "-w", "5", "{f}", "true"}, code: 1, stderr: "flock: failed to get lock\n"},
	{name: "last -w wins", hold: []string{"{f}"}, args: []string{"--verbose", "-w", "0", "-w", "0.1", "{f}", "true"}, code: 1, stderr: "flock: timeout while waiting to get lock\n"},
	{name: "tiny -w on a free lock", args: []string{"-w", "0.0000015", "{f}", "true"}, code: 0},
	{name: "shared vs shared", hold: []string{"-s", "{f}"}, args: []string{"-s", "-n", "{f}", "true"}, code: 0},
	{name: "shared vs shared, long options", hold: []string{"--shared", "{f}"}, args: []string{"--shared", "--nb", "{f}", "true"}, code: 0},
	{name: "exclusive vs shared", hold: []string{"-s", "{f}"}, args: []string{"-n", "{f}", "true"}, code: 1},
	{name: "shared vs exclusive", hold: []string{"-e", "{f}"}, args: []string{"-s", "-n", "{f}", "true"}, code: 1},
	{name: "last mode wins: -x", hold: []string{"-s", "{f}"}, args: []string{"-s", "-x", "-n", "{f}", "true"}, code: 1},
	{name: "last mode wins: -s", hold: []string{"-s", "{f}"}, args: []string{"-x", "-s", "-n", "{f}", "true"}, code: 0},
	{name: "combined short options", hold: []string{"-s", "{f}"}, args: []string{"-sn", "{f}", "true"}, code: 0},
	{name: "-w argument attached", hold: []string{"{f}"}, args: []string{"-nw0.1", "{f}", "true"}, code: 1},
	{name: "--wait abbreviated", hold: []string{"{f}"}, args: []string{"--wai", "0.1", "{f}", "true"}, code: 1},
	{name: "-u takes no lock", hold: []string{"{f}"}, args: []string{"-u", "-n", "{f}", "true"}, code: 0},

	// The lock while the command runs.
	{name: "held while the command runs", args: []string{"{f}", "{bin}", "-n", "{f}", "true"}, code: 1},
	{name: "shared while the command runs", args: []string{"-s", "{f}", "{bin}", "-s", "-n", "{f}", "true"}, code: 0},
	{name: "-o: held by flock while the command runs", args: []string{"-o", "{f}", "{bin}", "-n", "{f}", "true"}, code: 1},
	{name: "the command inherits the lock on fd 3", args: []string{"{f}", "sh", "-c", "{bin} -u 3 && {bin} -n {f} true"}, code: 0},
	{name: "-o: the command does not inherit it", args: []string{"-o", "{f}", "sh", "-c", "{bin} 3"}, code: 65, stderr: "flock: 3: Bad file descriptor\n"},
	{name: "-F keeps the lock across exec", args: []string{"-F", "{f}", "{bin}", "-n", "{f}", "true"}, code: 1},
	{name: "-F exit status", args: []string{"--no-fork", "{f}", "sh", "-c", "exit 4"}, code: 4},

	// Commands and their statuses.
	{name: "exit status", args: []string{"{f}", "sh", "-c", "exit 42"}, code: 42},
	{name: "child killed by SIGTERM", args: []string{"{f}", "sh", "-c", "kill -TERM $$"}, code: 128 + 15},
	{name: "child killed by SIGKILL", args: []string{"{f}", "sh", "-c", "kill -KILL $$"}, code: 128 + 9},
	{name: "-c", args: []string{"{f}", "-c", "exit 5"}, code: 5},
	{name: "--command", args: []string{"{f}", "--command", "test $# = 0 && exit 6"}, code: 6},
	{name: "options end at the file", args: []string{"{f}", "-n", "true"}, code: 69, stderr: "flock: failed to execute -n: No such file or directory\n"},
	{name: "-- ends the options", args: []string{"--", "{f}", "true"}, code: 0},
	{name: "command not found", args: []string{"{f}", "{d}/nonexistent"}, code: 69, stderr: "flock: failed to execute {d}/nonexistent: No such file or directory\n"},
	{name: "command not found in PATH", args: []string{"{f}", "flock-test-no-such-command"}, code: 69, stderr: "flock: failed to execute flock-test-no-such-command: No such file or directory\n"},
	{name: "command not executable", setup: writeFile("noexec", 0o644, "exit 0\n"), args: []string{"{f}", "{d}/noexec"}, code: 69, stderr: "flock: failed to execute {d}/noexec: Permission denied\n"},
	{name: "command is a directory", args: []string{"{f}", "{d}"}, code: 69, stderr: "flock: failed to execute {d}: Permission denied\n"},
	{name: "script without #! runs with sh", setup: writeFile("script", 0o755, "exit 9\n"), args: []string{"{f}", "{d}/script"}, code: 9},
	{name: "-F script without #!", setup: writeFile("script", 0o755, "exit 9\n"), args: []string{"-F", "{f}", "{d}/script"}, code: 9},
	{name: "-F command not found", args: []string{"-F", "{f}", "{d}/nonexistent"}, code: 69, stderr: "flock: failed to execute {d}/nonexistent: No such file or directory\n"},

	// Lock files and directories.
	{name: "missing file is created", args: []string{"{d}/new", "true"}, code: 0, check: func(t *testing.T, dir string) {
		fi, err := os.Stat(filepath.Join(dir, "new"))
		if err != nil {
			t.Fatal(err)
		}
		if want := fs.FileMode(0o666 &^ umask); fi.Mode() != want {
			t.Errorf("created with mode %v, want %v", fi.Mode(), want)
		}
	}},
	{name: "dangling symlink: target is created", setup: func(t *testing.T, dir string) {
		if err := os.Symlink("target", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
	}, args: []string{"{d}/link", "true"}, code: 0, check: func(t *testing.T, dir string) {
		if _, err := os.Stat(filepath.Join(dir, "target")); err != nil {
			t.Error(err)
		}
	}},
	{name: "missing directory", args: []string{"{d}/no/such", "true"}, code: 66, stderr: "flock: cannot open lock file {d}/no/such: No such file or directory\n"},
	{name: "path through a file", setup: writeFile("file", 0o644, ""), args: []string{"{d}/file/x", "true"}, code: 66, stderr: "flock: cannot open lock file {d}/file/x: Not a directory\n"},
	{name: "empty path", args: []string{"", "true"}, code: 66, stderr: "flock: cannot open lock file : No such file or directory\n"},
	{name: "directory", hold: []string{"{d}"}, args: []string{"-n", "{d}", "true"}, code: 1},
	{name: "directory, shared", hold: []string{"-s", "{d}"}, args: []string{"-s", "-n", "{d}", "true"}, code: 0},
	{name: "directory, free", args: []string{"{d}", "true"}, code: 0},

	// Usage errors.
	{name: "no arguments", args: []string{}, code: 64, stderr: "flock: not enough arguments\n" + tryHelp},
	{name: "options only", args: []string{"-n"}, code: 64, stderr: "flock: requires file descriptor, file or directory\n"},
	{name: "unknown option", args: []string{"-Z", "{f}", "true"}, code: 64, stderr: "flock: invalid option -- 'Z'\n" + tryHelp},
	{name: "unknown option in a group", args: []string{"-nZ", "{f}", "true"}, code: 64, stderr: "flock: invalid option -- 'Z'\n" + tryHelp},
	{name: "-?", args: []string{"-?"}, code: 64, stderr: tryHelp},
	{name: "-c is not an option", args: []string{"-c", "true"}, code: 64, stderr: "flock: invalid option -- 'c'\n" + tryHelp},
	{name: "unknown long option", args: []string{"--bogus=1", "{f}", "true"}, code: 64, stderr: "flock: unrecognized option '--bogus=1'\n" + tryHelp},
	{name: "ambiguous long option", args: []string{"--n", "{f}", "true"}, code: 64, stderr: "flock: option '--n' is ambiguous; possibilities: '--nonblocking' '--no-fork'\n" + tryHelp},
	{name: "ambiguous --ver", args: []string{"--ver"}, code: 64, stderr: "flock: option '--ver' is ambiguous; possibilities: '--verbose' '--version'\n" + tryHelp},
	{name: "argument to a flag", args: []string{"--sh=1", "{f}", "true"}, code: 64, stderr: "flock: option '--shared' doesn't allow an argument\n" + tryHelp},
	{name: "-w without value", args: []string{"-w"}, code: 64, stderr: "flock: option requires an argument -- 'w'\n" + tryHelp},
	{name: "--timeout without value", args: []string{"--timeout"}, code: 64, stderr: "flock: option '--timeout' requires an argument\n" + tryHelp},
	{name: "bad -w", args: []string{"-w", "1s", "{f}", "true"}, code: 64, stderr: "flock: invalid timeout value: '1s'\n"},
	{name: "empty -w", args: []string{"--wait=", "{f}", "true"}, code: 64, stderr: "flock: invalid timeout value: ''\n"},
	{name: "-w out of range", args: []string{"-w", "1e5000", "{f}", "true"}, code: 64, stderr: "flock: invalid timeout value: '1e5000': Numerical result out of range\n"},
	{name: "negative -w", args: []string{"-w", "-1", "{f}", "true"}, code: 71, stderr: "flock: cannot set up timer: Invalid argument\n"},
	{name: "infinite -w", args: []string{"-w", "inf", "{f}", "true"}, code: 71, stderr: "flock: cannot set up timer: Invalid argument\n"},
	{name: "-E out of range", args: []string{"-E", "256", "{f}", "true"}, code: 64, stderr: "flock: exit code out of range (expected 0 to 255)\n"},
	{name: "bad -E", args: []string{"-E", "1x", "{f}", "true"}, code: 64, stderr: "flock: invalid exit code: '1x'\n"},
	{name: "-E overflow", args: []string{"-E", "99999999999", "{f}", "true"}, code: 64, stderr: "flock: invalid exit code: '99999999999': Numerical result out of range\n"},
	{name: "-o with -F", args: []string{"-o", "-F", "{f}", "true"}, code: 64, stderr: "flock: the --no-fork and --close options are incompatible\n"},
	{name: "-c without command", args: []string{"{f}", "-c"}, code: 64, stderr: "flock: -c requires exactly one command argument\n"},
	{name: "-c with two commands", args: []string{"{f}", "-c", "true", "true"}, code: 64, stderr: "flock: -c requires exactly one command argument\n"},
	{name: "FD not a number", args: []string{"{f}"}, code: 64, stderr: "flock: bad file descriptor: '{f}'\n"},
	{name: "FD out of range", args: []string{"2147483648"}, code: 64, stderr: "flock: bad file descriptor: '2147483648': Numerical result out of range\n"},
	{name: "FD not open", args: []string{"99"}, code: 65, stderr: "flock: 99: Bad file descriptor\n"},
	{name: "-h", args: []string{"-h", "-Z"}, code: 0},
	{name: "--version", args: []string{"--version"}, code: 0},
	{name: "error before -h", args: []string{"-Z", "-h"}, code: 64, stderr: "flock: invalid option -- 'Z'\n" + tryHelp},
}

func writeFile(name string, perm fs.FileMode, content string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), perm); err != nil {
			t.Fatal(err)
		}
	}
}

func expand(s, dir, bin string) string {
	return strings.NewReplacer("{f}", filepath.Join(dir, "lock"), "{d}", dir, "{bin}", bin).Replace(s)
}

func expandAll(list []string, dir, bin string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = expand(s, dir, bin)
	}
	return out
}

func TestConformance(t *testing.T) {
	for _, sc := range scenarios {
		sc := sc
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			forEach(t, func(t *testing.T, bin string) {
				dir := testDir(t)
				if sc.setup != nil {
					sc.setup(t, dir)
				}
				lockPath := filepath.Join(dir, "lock")
				state := "free"
				if sc.hold != nil {
					h := hold(t, bin, expandAll(sc.hold, dir, bin)...)
					defer h.release()
					lockPath = expand(sc.hold[len(sc.hold)-1], dir, bin)
					state = "exclusive"
					if slices.Contains(sc.hold, "-s") || slices.Contains(sc.hold, "--shared") {
						state = "shared"
					}
				}
				r := run(t, bin, expandAll(sc.args, dir, bin)...)
				if want := expand(sc.stderr, dir, bin); r.code != sc.code || r.stderr != want {
					t.Errorf("got %v, want exit %d (stderr %q)", r, sc.code, want)
				}
				if _, err := os.Stat(lockPath); err == nil {
					if got := probe(t, lockPath); got != state {
						t.Errorf("afterwards the lock is %s, want %s", got, state)
					}
				}
				if sc.check != nil {
					sc.check(t, dir)
				}
			})
		})
	}
}

// TestVerboseSuccess checks what --verbose prints when the lock is taken.
func TestVerboseSuccess(t *testing.T) {
	want := regexp.MustCompile(`^flock: getting lock took [0-9]+\.[0-9]{6} seconds\nflock: executing true\n$`)
	forEach(t, func(t *testing.T, bin string) {
		dir := testDir(t)
		r := run(t, bin, "--verbose", filepath.Join(dir, "lock"), "true")
		if r.code != 0 || r.stderr != "" || !want.MatchString(r.stdout) {
			t.Errorf("got %v, stdout %q", r, r.stdout)
		}
		// The FD form reports the time only.
		r = run(t, "sh", "-c", `exec 9>>"$1"; exec "$2" --verbose 9`, "sh", filepath.Join(dir, "lock"), bin)
		if r.code != 0 || !regexp.MustCompile(`^flock: getting lock took [0-9.]+ seconds\n$`).MatchString(r.stdout) {
			t.Errorf("FD form: got %v, stdout %q", r, r.stdout)
		}
	})
}

// TestWaitSucceeds checks that a waiting flock (without and with -w) gets
// the lock when the holder releases it, and runs the command.
func TestWaitSucceeds(t *testing.T) {
	for _, opts := range [][]string{{}, {"-w", "30"}, {"-s"}} {
		opts := opts
		t.Run(strings.Join(append([]string{"flock"}, opts...), " "), func(t *testing.T) {
			t.Parallel()
			forEach(t, func(t *testing.T, bin string) {
				lock := filepath.Join(testDir(t), "lock")
				h := hold(t, bin, lock)
				argv := append(append([]string{bin}, opts...), lock, "echo", "got it")
				c := start(t, argv...)
				waitBlocked(t, lock)
				h.release()
				c.expect("got it")
				if r := c.wait(); r.code != 0 {
					t.Errorf("waiter: %v", r)
				}
				if got := probe(t, lock); got != "free" {
					t.Errorf("afterwards the lock is %s", got)
				}
			})
		})
	}
}

// TestSignalWhileWaiting checks that SIGINT, SIGTERM and SIGHUP end a
// waiting flock by that signal, as they end util-linux flock, and that it
// leaves nothing behind.
func TestSignalWhileWaiting(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		for _, opts := range [][]string{{}, {"-w", "30"}} {
			sig, opts := sig, opts
			name := strings.Join(append([]string{sig.String()}, opts...), " ")
			t.Run(name, func(t *testing.T) {
				if signal.Ignored(sig) {
					t.Skipf("%v is ignored by this test, and so by the processes it starts", sig)
				}
				t.Parallel()
				forEach(t, func(t *testing.T, bin string) {
					lock := filepath.Join(testDir(t), "lock")
					h := hold(t, bin, "-s", lock)
					argv := append(append([]string{bin}, opts...), lock, "echo", "got it")
					c := start(t, argv...)
					waitBlocked(t, lock)
					c.signal(sig)
					if r := c.wait(); r.code != -1 || r.sig != sig || r.stdout != "" {
						t.Errorf("waiter: %v, stdout %q; want killed by %v", r, r.stdout, sig)
					}
					if got := probe(t, lock); got != "shared" {
						t.Errorf("after the waiter died the lock is %s, want shared", got)
					}
					h.release()
					if got := probe(t, lock); got != "free" {
						t.Errorf("afterwards the lock is %s", got)
					}
				})
			})
		}
	}
}

// TestSignalWhileRunning checks that a SIGTERM to flock while the command
// runs kills flock by it and leaves the command running: with the lock if
// it inherited it, without it with -o.
func TestSignalWhileRunning(t *testing.T) {
	for _, closeFD := range []bool{false, true} {
		closeFD := closeFD
		name, want := "inherited", "exclusive"
		if closeFD {
			name, want = "-o", "free"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			forEach(t, func(t *testing.T, bin string) {
				lock := filepath.Join(testDir(t), "lock")
				argv := []string{bin, lock}
				if closeFD {
					argv = []string{bin, "-o", lock}
				}
				c := start(t, append(argv, "sh", "-c", "echo ready; read x; echo done")...)
				c.expect("ready")
				c.signal(syscall.SIGTERM)
				if st := c.waitProcess(); !st.Signaled() || st.Signal() != syscall.SIGTERM {
					t.Errorf("flock ended with %v, want killed by SIGTERM", st)
				}
				if got := probe(t, lock); got != want {
					t.Errorf("with flock dead and the command running, the lock is %s, want %s", got, want)
				}
				c.CloseStdin() // ends the command
				c.expect("done")
				waitFree(t, lock)
			})
		})
	}
}

// TestCloseBackgroundChild checks -o with a command that leaves a
// background process behind: without -o the background process keeps the
// lock after flock exits; with -o the lock goes with flock.
func TestCloseBackgroundChild(t *testing.T) {
	for _, closeFD := range []bool{false, true} {
		closeFD := closeFD
		name, want := "inherited", "exclusive"
		if closeFD {
			name, want = "-o", "free"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			forEach(t, func(t *testing.T, bin string) {
				lock := filepath.Join(testDir(t), "lock")
				argv := []string{bin, lock}
				if closeFD {
					argv = []string{bin, "-o", lock}
				}
				// cat runs in the background until the test closes its
				// standard input; sh exits at once, and so does flock.
				c := start(t, append(argv, "sh", "-c", "exec 7<&0; cat <&7 >/dev/null 2>&1 & echo started")...)
				c.expect("started")
				if st := c.waitProcess(); st.ExitStatus() != 0 {
					t.Fatalf("flock: %v", st)
				}
				if got := probe(t, lock); got != want {
					t.Errorf("after flock exited, with its command's background child running, the lock is %s, want %s", got, want)
				}
				c.CloseStdin() // ends cat
				waitFree(t, lock)
			})
		})
	}
}

// TestNoFork checks that -F replaces flock with the command, which holds
// the lock.
func TestNoFork(t *testing.T) {
	forEach(t, func(t *testing.T, bin string) {
		lock := filepath.Join(testDir(t), "lock")
		c := start(t, bin, "-F", lock, "sh", "-c", "echo $$; read x; exit 0")
		if pid := c.line(); pid != strconv.Itoa(c.cmd.Process.Pid) {
			t.Errorf("command runs as pid %s, flock was %d", pid, c.cmd.Process.Pid)
		}
		if got := probe(t, lock); got != "exclusive" {
			t.Errorf("while the command runs the lock is %s", got)
		}
		if r := c.wait(); r.code != 0 {
			t.Errorf("%v", r)
		}
		if got := probe(t, lock); got != "free" {
			t.Errorf("afterwards the lock is %s", got)
		}
	})
}

// TestFDForm checks the form that locks a descriptor inherited from a shell.
func TestFDForm(t *testing.T) {
	if !fdLockSupported {
		t.Skip("the FD form is not supported here")
	}
	forEach(t, func(t *testing.T, bin string) {
		lock := filepath.Join(testDir(t), "lock")
		sh := func(script string) result {
			return run(t, "sh", "-c", script, "sh", lock, bin)
		}
		// Held as long as the shell keeps the descriptor.
		h := start(t, "sh", "-c", `exec 9>>"$1"; "$2" -n 9 || exit 99; echo ready; read x; exit 0`, "sh", lock, bin)
		h.expect("ready")
		if got := probe(t, lock); got != "exclusive" {
			t.Errorf("while the shell holds fd 9 the lock is %s", got)
		}
		if r := sh(`exec 9>>"$1"; "$2" -n 9`); r.code != 1 {
			t.Errorf("-n on a held lock: %v", r)
		}
		if r := sh(`exec 9>>"$1"; "$2" -n -E 5 -s 9`); r.code != 5 {
			t.Errorf("-n -E 5 -s on a held lock: %v", r)
		}
		if r := sh(`exec 9>>"$1"; "$2" -w 0.1 --verbose 9`); r.code != 1 || r.stderr != "flock: timeout while waiting to get lock\n" {
			t.Errorf("-w 0.1 on a held lock: %v", r)
		}
		h.release()
		if got := probe(t, lock); got != "free" {
			t.Errorf("after the shell exited the lock is %s", got)
		}

		// -s, and -u releases.
		if r := sh(`exec 9<"$1"; "$2" -s 9 && "$2" -n "$1" true; echo $?; "$2" -u 9 && "$2" -n "$1" true`); r.code != 0 || r.stdout != "1\n" {
			t.Errorf("-s then -u: %v, stdout %q", r, r.stdout)
		}
		// A -w wait that succeeds.
		h = hold(t, bin, lock)
		c := start(t, "sh", "-c", `exec 9>>"$1"; "$2" -w 30 9 && echo got it`, "sh", lock, bin)
		h.release()
		c.expect("got it")
		if r := c.wait(); r.code != 0 {
			t.Errorf("-w 30: %v", r)
		}
	})
}

// TestReadOnlyFile checks that a file the user may only read is locked, as
// flock(1) locks it. As root, the flocks run as nobody.
func TestReadOnlyFile(t *testing.T) {
	var prefix []string
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("running as root without setpriv(1) to drop privileges")
		}
		prefix = []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}
	}
	forEach(t, func(t *testing.T, bin string) {
		dir := testDir(t)
		lock := filepath.Join(dir, "lock")
		if err := os.WriteFile(lock, nil, 0o444); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"-x", "-s"} {
			argv := append(append(slices.Clone(prefix), bin, mode, lock), heldCommand...)
			h := start(t, argv...)
			h.expect("ready")
			want := map[string]string{"-x": "exclusive", "-s": "shared"}[mode]
			if got := probe(t, lock); got != want {
				t.Errorf("%s on a read-only file: the lock is %s", mode, got)
			}
			h.release()
		}
		// Nor is it created where the user may not write.
		if prefix != nil {
			r := start(t, append(slices.Clone(prefix), bin, filepath.Join(dir, "new"), "true")...).wait()
			if r.code != 66 || !strings.HasSuffix(r.stderr, ": Permission denied\n") {
				t.Errorf("creating in a directory the user cannot write: %v", r)
			}
		}
	})
}

// TestInterop checks that ours and util-linux flock exclude each other.
func TestInterop(t *testing.T) {
	pairs(t, func(t *testing.T, holder, contender string) {
		lock := filepath.Join(testDir(t), "lock")
		h := hold(t, holder, lock)
		for _, c := range []struct {
			args []string
			code int
		}{
			{[]string{"-n", lock, "true"}, 1},
			{[]string{"-s", "-n", lock, "true"}, 1},
			{[]string{"-w", "0.1", lock, "true"}, 1},
			{[]string{"-u", "-n", lock, "true"}, 0},
		} {
			if r := run(t, contender, c.args...); r.code != c.code {
				t.Errorf("%q while the other holds an exclusive lock: %v, want exit %d", c.args, r, c.code)
			}
		}
		w := start(t, contender, "-w", "30", lock, "echo", "got it")
		waitBlocked(t, lock)
		h.release()
		w.expect("got it")
		if r := w.wait(); r.code != 0 {
			t.Errorf("waiter: %v", r)
		}

		h = hold(t, holder, "-s", lock)
		if r := run(t, contender, "-s", "-n", lock, "true"); r.code != 0 {
			t.Errorf("shared while the other holds a shared lock: %v", r)
		}
		if r := run(t, contender, "-n", lock, "true"); r.code != 1 {
			t.Errorf("exclusive while the other holds a shared lock: %v", r)
		}
		h.release()

		// The FD form of one against the file form of the other.
		if fdLockSupported {
			h = start(t, "sh", "-c", `exec 9>>"$1"; "$2" 9 || exit 99; echo ready; read x; exit 0`, "sh", lock, holder)
			h.expect("ready")
			if r := run(t, contender, "-n", lock, "true"); r.code != 1 {
				t.Errorf("while the other holds it through a descriptor: %v", r)
			}
			h.release()
		}
		if got := probe(t, lock); got != "free" {
			t.Errorf("afterwards the lock is %s", got)
		}
	})
}

// TestWaitNoticeOnlyOnTerminal checks that the "waiting for lock" notice is
// not printed when standard error is not a terminal.
func TestWaitNoticeOnlyOnTerminal(t *testing.T) {
	t.Parallel()
	lock := filepath.Join(testDir(t), "lock")
	h := hold(t, oursBin, lock)
	defer h.release()
	if r := run(t, oursBin, "-w", "1.2", lock, "true"); r.code != 1 || r.stderr != "" {
		t.Errorf("got %v, want exit 1 and nothing on stderr", r)
	}
}
