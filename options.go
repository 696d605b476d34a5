package flock

// The options of Open (and of the functions that open lock files: Update,
// OpenSemaphore), and the errors of input that no file system gives.

import (
	"errors"
	"io/fs"
)

// An Option changes how [Open] opens a lock file or how the handle behaves.
type Option func(*config)

type config struct {
	perm           fs.FileMode
	noFollow       bool
	noCreate       bool
	syncOnUnlock   bool
	writerPriority bool
	removeOnUnlock bool
	forWriting     bool
	noReplace      bool // WriteFile only
}

// WithPerm sets the permission bits used when Open creates the lock file.
// The default is 0666, as os.Create and flock(1) use; the process umask
// applies in both cases. An existing file's permissions are never changed.
func WithPerm(perm fs.FileMode) Option {
	return func(c *config) { c.perm = perm.Perm() }
}

// NoFollow makes Open fail if the final element of the path is a symbolic
// link, instead of locking the file the link points to.
func NoFollow() Option {
	return func(c *config) { c.noFollow = true }
}

// ForWriting makes Open fail, with an error matching fs.ErrPermission that
// names the path and says the file can only be opened read-only, if the lock
// file cannot be opened for writing (a read-only file, file system or
// mount, a running executable, an immutable or append-only file, a
// directory), instead of opening it for reading only. Use it when the
// lock's holder writes through [RWMutex.File]; without it, such a file is
// still locked, read-only, as flock(1) locks it, and [RWMutex.Writable]
// tells.
func ForWriting() Option {
	return func(c *config) { c.forWriting = true }
}

// NoCreate makes Open fail with an error satisfying errors.Is(err,
// fs.ErrNotExist) if the lock file does not exist, instead of creating it.
func NoCreate() Option {
	return func(c *config) { c.noCreate = true }
}

// SyncOnUnlock makes [RWMutex.Unlock] flush the file to stable storage
// (fsync) before it releases the exclusive lock, so that a writer's content
// is durable before another process can see the lock free. Use it on network
// file systems or when the content written under the lock must survive a
// crash. Unlock cannot return an error; the first error from the flush is
// kept and returned by [RWMutex.Close]. On Windows a handle that could only
// be opened for reading is not flushed (FlushFileBuffers needs write
// access, and nothing can have been written through it).
func SyncOnUnlock() Option {
	return func(c *config) { c.syncOnUnlock = true }
}

// WriterPriority makes writers of other processes go before new readers:
// once a writer of any process that uses the option on the same lock file
// waits, readers of those processes that do not already hold the lock wait
// behind it, so a flood of overlapping readers in other processes cannot
// keep the writer out. flock(2) alone lets new readers in while a writer
// waits.
//
// It works through a second lock file, the gate, named after the lock file
// with ".gate" appended (after resolving symbolic links) and created beside
// it with the lock file's permission bits and, where the process may, its
// owner and group, so that nobody who cannot open the lock file can open
// the gate; an existing gate is used as it is (a symbolic link there is
// refused), and it is not removed. Each OS acquisition then costs the
// gate's lock and unlock as well. A wait whose caller gave up lets go of
// the gate at once. On fcntl platforms, a gate that can only be opened for
// reading lets readers through (with a shared lock on it), and a writer
// that finds the lock taken fails with an error matching fs.ErrPermission
// that names the gate. A writer that finds the lock free takes it without
// the gate, so an uncontended Lock costs no more than without the option. Every process that should take
// part must use the option; others (flock(1), other libraries) are still
// excluded by the lock but not ordered by the gate. Readers that join a
// read lock their own process already holds do not pass the gate, so a
// process whose readers overlap without a pause keeps its read lock until
// they pause.
func WriterPriority() Option {
	return func(c *config) { c.writerPriority = true }
}

// RemoveOnUnlock makes Unlock remove the lock file, safely: the path is
// removed while the exclusive lock is still held, and every lock taken
// through a handle with the option checks, once granted, that its file is
// still the one at the path; if it is not (the file was removed or
// replaced), it lets that lock go, opens the path again, creating the file,
// and retries. So whoever holds the file now at the path holds the lock,
// and a waiter that was granted the lock on a removed file never believes
// it holds it.
//
// Every handle, in every process, that locks the path must use the option,
// and the same path: a handle without it, or one reaching the file through
// another hard link, keeps locking the removed file. The option implies
// NoFollow: removing a symbolic link would remove the link and keep the
// lock file, so Open refuses a final symbolic link (directories above may
// be links). Open refuses NoCreate with it (the error matches
// fs.ErrInvalid): the removed file could not be locked again. Each lock
// through the handle costs a stat of the path, and read locks do not take
// the fast path that handles without the option have. RUnlock does not
// remove the file. An error removing the file (such as permission on the
// directory) is kept and returned by Close; the lock is released all the
// same, and the file, still at the path, stays the one every handle of the
// process on the path locks.
//
// On Windows the file is removed with POSIX semantics, and Open refuses
// the option (with an error matching errors.ErrUnsupported) on volumes that
// cannot delete that way, where a removed file would keep its name while
// any handle has it open and could not be created again.
func RemoveOnUnlock() Option {
	return func(c *config) { c.removeOnUnlock = true }
}

// writeRefusedError is the error of an Open with ForWriting of a file that
// can only be opened for reading; it unwraps to the OS's reason.
type writeRefusedError struct{ err error }

func (e writeRefusedError) Error() string {
	return "can only be opened read-only (ForWriting): " + e.err.Error()
}

func (e writeRefusedError) Unwrap() error { return e.err }

func (e writeRefusedError) Is(target error) bool { return target == fs.ErrPermission }

// invalidError is an input error that also matches fs.ErrInvalid.
type invalidError string

func wrapInvalid(s string) error { return invalidError(s) }

func (e invalidError) Error() string { return string(e) }

func (e invalidError) Is(target error) bool { return target == fs.ErrInvalid }

// unsupportedError is an OS error saying the file system cannot lock; it
// matches errors.ErrUnsupported and unwraps to the OS error.
type unsupportedError struct{ err error }

func (e unsupportedError) Error() string { return e.err.Error() + " (file locking unsupported here)" }

func (e unsupportedError) Unwrap() error { return e.err }

func (e unsupportedError) Is(target error) bool { return target == errors.ErrUnsupported }
