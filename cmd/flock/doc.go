// Command flock holds a file lock while it runs a command, or locks a file
// descriptor that it inherited, in the manner of the flock(1) command of
// util-linux. It takes the same options and exits with the same statuses,
// and its locks are ordinary flock(2) locks on Linux, macOS and the BSDs, so
// it and util-linux flock(1) exclude each other. It is built on the
// github.com/go-flock/flock package, so it also runs on Windows.
//
// Install it with
//
//	go install github.com/go-flock/flock/cmd/flock@latest
//
// Usage:
//
//	flock [options] FILE|DIRECTORY COMMAND [ARGUMENT...]
//	flock [options] FILE|DIRECTORY -c COMMAND
//	flock [options] FD
//	flock -H FILE|DIRECTORY
//
// The first two forms open FILE, creating it (mode 0666 less the umask) if
// it does not exist, or DIRECTORY, take the lock, run COMMAND (with -c, the
// string COMMAND through "$SHELL -c", /bin/sh if SHELL is unset) and exit
// with the command's status. The command inherits the locked descriptor, so
// the lock is held until the command and every process it started that kept
// the descriptor have exited; -o prevents that. The third form locks the
// open descriptor number FD that the calling shell passed in (for example
// "exec 9>/var/lock/x; flock -n 9"); it exists only on the Unix systems that
// have flock(2).
//
// Options (long options may be abbreviated to any unambiguous prefix, and
// take their argument after "=" or as the next word; options end at the
// first word that is not an option, or after "--"):
//
//	-s, --shared             take a shared (read) lock
//	-x, -e, --exclusive      take an exclusive (write) lock; the default
//	-u, --unlock             release the lock (useful in the FD form)
//	-n, --nonblock, --nb     fail at once if the lock is held elsewhere
//	-w, --timeout, --wait SECONDS
//	                         fail if the lock is not acquired within SECONDS,
//	                         which may have a fraction; 0 means -n
//	-E, --conflict-exit-code N
//	                         exit status (0 to 255) when -n or -w gives up;
//	                         1 by default
//	-o, --close              the command does not inherit the lock: it is
//	                         held by flock itself while the command runs
//	-c, --command COMMAND    run COMMAND with "$SHELL -c"
//	-F, --no-fork            replace flock with the command instead of
//	                         running it as a child (Unix); not with -o
//	    --verbose            report how long the lock took, or why it failed
//	-H, --list-holders       list who holds the lock on FILE|DIRECTORY and
//	                         exit (not in util-linux flock; see below)
//	-h, --help               print a summary of the usage and exit
//	-V, --version            print the version and exit
//
// The last of -s, -x and -u wins, as does the last -w.
//
// Exit status: the command's own status; 128+N if it was killed by signal N;
// 1, or the -E value, if -n or -w gave up; otherwise the <sysexits.h> codes
// util-linux uses: 64 for a usage error, 65 if the lock call failed, 66 if
// the lock file cannot be opened (73 if it cannot be created because the
// file system is read-only or full, 71 if the process is out of memory or
// descriptors), 69 if the command cannot be executed (not found or not
// executable), 71 if the -w value is not a valid timer (negative, infinite).
// A SIGINT, SIGTERM or SIGHUP while flock waits for the lock or for the
// command ends flock by that signal, as it ends util-linux flock.
//
// With --verbose, flock prints "flock: getting lock took S seconds" and
// "flock: executing COMMAND" on standard output, and "flock: failed to get
// lock" or "flock: timeout while waiting to get lock" on standard error, as
// util-linux does. Beyond util-linux, when standard error is a terminal and
// the lock has not been acquired after a second, flock prints "flock:
// waiting for lock on PATH (held by pid 4242 backup.sh)..." there, once,
// naming the holders where the platform can tell (see below); cron jobs and
// other scripts whose standard error is a file or a pipe never see it.
//
// Who holds a lock: "flock -H FILE" (or --list-holders; util-linux flock(1)
// has no such option, and no option of util-linux 2.38 starts with -H or
// --l, so no command line util-linux accepts means something else here)
// takes no lock and runs no command. It prints one line per holder of the
// lock on FILE or DIRECTORY on standard output,
//
//	PID MODE KIND COMMAND
//
// for example "4242 exclusive FLOCK backup.sh": MODE is "exclusive" or
// "shared", KIND the kind of lock as the kernel names it (FLOCK for
// flock(2), as flock(1) takes; POSIX for fcntl(2) record locks; OFDLCK for
// Linux open-file-description locks), and COMMAND the holder's command name,
// which is the rest of the line and may contain spaces; an unknown KIND or
// COMMAND is "-", and an unknown PID is -1. In a Linux container (a pid
// namespace with its own /proc), holders outside the container are not
// listed: the kernel does not show their locks there. It exits 0 if the lock
// is free (printing nothing), 1 (or the -E value) if it is held, 66 if FILE
// cannot be opened (it is not created), 65 if the query fails, and 69 where
// holders cannot be listed. The other options are accepted and ignored,
// except -h and -V. On Linux every holder is listed, each reader of a shared
// lock included; on macOS and FreeBSD at most one, and a flock(2) lock with
// PID -1, as the kernel reports it; on AIX and Solaris at most one, with its
// pid; elsewhere (NetBSD, OpenBSD, DragonFly BSD, illumos, Windows) the
// query is not supported. The pid of a flock(2) lock is the process that
// took it: for "flock FILE COMMAND" that is flock, not COMMAND (which holds
// the lock too, through the descriptor it inherited). The answer is a
// snapshot: the lock may have changed hands by the time it is printed.
//
// Differences from util-linux flock(1):
//
//   - Only regular files and directories can be locked, not devices, FIFOs
//     or sockets (the flock package refuses them).
//   - The file is opened read-write where possible and read-only otherwise
//     (util-linux always opens it read-only); either way a lock on it is the
//     same flock(2) lock.
//   - The command inherits the locked descriptor at the number flock's own
//     descriptor has (3 unless the caller passed descriptors of its own),
//     as with util-linux.
//   - On Windows the lock cannot be inherited: the command runs while flock
//     holds the lock (flock ignores Ctrl-C meanwhile, and exits when the
//     command does), -o changes nothing, -F runs the command as a child and
//     the FD form is not supported; -c uses %ComSpec% /C when SHELL is unset.
//     Ctrl-C while waiting exits with STATUS_CONTROL_C_EXIT.
//   - In the FD form, a -w wait polls the descriptor (at most every 25 ms),
//     because a blocking flock(2) cannot be abandoned from Go; without -w
//     flock blocks in the kernel as util-linux does.
//   - SIGQUIT, SIGUSR1 and SIGUSR2 end flock with status 128+N instead of
//     killing it by the signal (the Go runtime reserves their default
//     action).
//   - The --verbose lines on standard output are written at once.
//     util-linux buffers them when standard output is not a terminal, so
//     they come after the command's own output, and with -F they are lost.
//   - If flock is started with standard input, output or error closed, the
//     Go runtime (since Go 1.22) opens /dev/null in its place, and the
//     command gets that; util-linux opens the lock file there.
package main
