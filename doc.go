// Package flock provides a file lock that behaves like [sync.RWMutex]
// between the goroutines of one process and between processes.
//
// An [RWMutex] is a handle on a lock file. It may be shared by any number of
// goroutines, exactly like a sync.RWMutex: one writer or any number of
// readers hold it at a time, whichever process and whichever handle they
// use. Handles opened on the same file through different paths, symbolic
// links or hard links exclude each other, because the package keys its
// in-process state by file identity (device and inode), never by path.
//
// Operating-system file locks know nothing about goroutines: flock(2) locks
// belong to an open file, POSIX fcntl locks to a whole process, and Windows
// locks to a handle. This package puts an in-process, first-in-first-out
// reader/writer gate in front of a single OS lock per file per process: all
// readers of the process share one OS shared lock, and a writer takes the OS
// exclusive lock only once it holds the in-process gate. Other processes
// (including flock(1) and other languages' flock-based locks on the same
// file) see an ordinary file lock.
//
// Waits can be cancelled: [RWMutex.LockContext] waits in the kernel, so a
// release by another process is seen at once, yet it returns as soon as its
// context ends, holding nothing.
//
// # Platforms
//
// Linux, Android, macOS, iOS, the BSDs and illumos use flock(2); AIX and
// Solaris use fcntl(2) record locks over the whole file; Windows uses
// LockFileEx on one byte far past any data, so that the mandatory Windows
// lock never blocks reading or writing the file's content. On js, wasip1
// and plan9 [Open] returns an error for which errors.Is(err,
// errors.ErrUnsupported) holds.
//
// On fcntl platforms, closing any descriptor of the lock file anywhere in
// the process releases the process's lock on it: do not open the lock file
// with other APIs there; read and write it through [RWMutex.File].
package flock
