//go:build !flock_fcntl

package flock

// The flock(2) backend on Linux: which file systems take the calls that do
// not wait without ever sleeping, so that they can be made as raw system
// calls.

import "golang.org/x/sys/unix"

// locksNeverSleep reports whether fd's file is on a file system whose
// flock(2) calls that do not wait (LOCK_NB, LOCK_UN) never sleep in the
// kernel: a local one with no lock operations of its own, whose locks the
// kernel's generic code keeps in memory. Such a call then needs none of
// the Go runtime's bookkeeping for a system call that may block (which
// lets another thread run the caller's goroutines meanwhile): on this
// package's development machine that bookkeeping costs as much as the
// gate's own work in an uncontended Lock+Unlock (BenchmarkRawFlock).
// Network and FUSE file systems (NFS, SMB, Ceph, 9p, FUSE, ...) lock
// through their own operations, which may wait for a server, and an
// unknown file system is taken to: their calls take the ordinary path.
func locksNeverSleep(fd int) bool {
	var st unix.Statfs_t
	for {
		switch err := unix.Fstatfs(fd, &st); err {
		case nil:
			return neverSleepingFS(uint32(st.Type))
		case unix.EINTR:
		default:
			return false
		}
	}
}

// neverSleepingFS reports whether the file system of statfs(2) type magic
// is one that locksNeverSleep accepts. Overlayfs is not among them: the
// lower layer of its files may be a network file system.
func neverSleepingFS(magic uint32) bool {
	switch magic {
	case unix.EXT4_SUPER_MAGIC, // also ext2 and ext3
		unix.XFS_SUPER_MAGIC,
		unix.BTRFS_SUPER_MAGIC,
		unix.F2FS_SUPER_MAGIC,
		unix.TMPFS_MAGIC,
		unix.RAMFS_MAGIC:
		return true
	}
	return false
}

// flockDirect is flock(2) as a raw system call: only for calls that never
// sleep (see locksNeverSleep). A raw call that slept would hold its thread
// and the scheduler's processor with it, and hold up the garbage
// collector's stops.
func flockDirect(fd, how int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_FLOCK, uintptr(fd), uintptr(how), 0); e != 0 {
		return e
	}
	return nil
}
