//go:build !flock_fcntl

package flock

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNeverSleepingFS checks which file systems' lock calls go to the
// kernel directly: local ones whose locks the kernel's generic code keeps,
// and no file system that locks through operations of its own.
func TestNeverSleepingFS(t *testing.T) {
	for _, c := range []struct {
		name  string
		magic uint32
		want  bool
	}{
		{"ext4", unix.EXT4_SUPER_MAGIC, true},
		{"xfs", unix.XFS_SUPER_MAGIC, true},
		{"btrfs", unix.BTRFS_SUPER_MAGIC, true},
		{"f2fs", unix.F2FS_SUPER_MAGIC, true},
		{"tmpfs", unix.TMPFS_MAGIC, true},
		{"ramfs", unix.RAMFS_MAGIC, true},
		{"nfs", unix.NFS_SUPER_MAGIC, false},
		{"cifs", unix.CIFS_SUPER_MAGIC, false},
		{"smb2", unix.SMB2_SUPER_MAGIC, false},
		{"ceph", unix.CEPH_SUPER_MAGIC, false},
		{"9p", unix.V9FS_MAGIC, false},
		{"fuse", unix.FUSE_SUPER_MAGIC, false},
		{"overlayfs", unix.OVERLAYFS_SUPER_MAGIC, false},
		{"procfs", unix.PROC_SUPER_MAGIC, false},
		{"unknown", 0, false},
	} {
		if got := neverSleepingFS(c.magic); got != c.want {
			t.Errorf("neverSleepingFS(%s %#x) = %v, want %v", c.name, c.magic, got, c.want)
		}
	}
}

// TestLockCallsDirect checks that a handle's lock calls go to the kernel
// directly on a file system that allows it, and the ordinary way on one
// that does not, and that both lock and unlock.
func TestLockCallsDirect(t *testing.T) {
	for _, c := range []struct {
		name, path string
	}{
		{"temp dir", lockPath(t)},
		{"/dev/shm", "/dev/shm/flock-test-" + t.Name()},
		{"procfs", "/proc/self/status"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Dir(c.path)
			var st unix.Statfs_t
			if err := unix.Statfs(dir, &st); err != nil {
				t.Skipf("no %s here: %v", dir, err)
			}
			want := ordinaryCalls
			if neverSleepingFS(uint32(st.Type)) {
				want = directCalls
			}
			if c.name == "procfs" && want != ordinaryCalls {
				t.Fatalf("procfs taken for a file system whose lock calls never sleep")
			}
			created := false
			if _, err := os.Stat(c.path); os.IsNotExist(err) {
				created = true
			}
			m := mustOpen(t, c.path)
			if created {
				t.Cleanup(func() { os.Remove(c.path) })
			}
			m.RLock()
			m.RUnlock()
			if got := m.e.fd.direct; got != askNextTime {
				t.Errorf("%s: after the first lock, direct = %d, want %d (asked at the second lock)", c.path, got, askNextTime)
			}
			m.RLock()
			m.RUnlock()
			if got := m.e.fd.direct; got != want {
				t.Errorf("%s (statfs type %#x): direct = %d, want %d", c.path, uint32(st.Type), got, want)
			}
			if c.name == "temp dir" && want != directCalls {
				t.Logf("the temp dir's file system (statfs type %#x) is not one whose lock calls never sleep: its calls take the ordinary path", uint32(st.Type))
			}
			if !m.Writable() {
				t.Logf("%s is not writable here: the write lock's exclusion is not checked on it", c.path)
				return
			}
			m.Lock()
			if ok, err := tryFlockOther(c.path); err != nil || ok {
				t.Errorf("another descriptor got LOCK_EX beside the handle's write lock: %v, %v", ok, err)
			}
			m.Unlock()
			if ok, err := tryFlockOther(c.path); err != nil || !ok {
				t.Errorf("another descriptor could not get LOCK_EX after Unlock: %v, %v", ok, err)
			}
		})
	}
}

// tryFlockOther reports whether a descriptor of its own gets LOCK_EX on
// path at once, releasing it if so.
func tryFlockOther(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	switch err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err {
	case nil:
		return true, unix.Flock(int(f.Fd()), unix.LOCK_UN)
	case unix.EWOULDBLOCK:
		return false, nil
	default:
		return false, err
	}
}

// BenchmarkRawFlock is the floor for one lock/unlock pair: flock(2)
// LOCK_EX (LOCK_SH) with LOCK_NB, then LOCK_UN, on a descriptor kept open,
// through unix.Flock as any Go program makes them. The -direct cases make
// the same calls as the package makes them on a file system whose lock
// calls never sleep: as raw system calls, without the Go runtime's
// bookkeeping for a call that may block. Lock+Unlock less LOCK_EX-direct
// is the gate's own cost.
func BenchmarkRawFlock(b *testing.B) {
	fd := rawLockFD(b)
	for _, c := range []struct {
		name   string
		how    int
		direct bool
	}{
		{"LOCK_EX", unix.LOCK_EX, false},
		{"LOCK_SH", unix.LOCK_SH, false},
		{"LOCK_EX-direct", unix.LOCK_EX, true},
		{"LOCK_SH-direct", unix.LOCK_SH, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			// Called directly, not through a function value, as the
			// package calls them.
			if c.direct {
				for i := 0; i < b.N; i++ {
					flockDirect(fd, c.how|unix.LOCK_NB)
					flockDirect(fd, unix.LOCK_UN)
				}
				return
			}
			for i := 0; i < b.N; i++ {
				unix.Flock(fd, c.how|unix.LOCK_NB)
				unix.Flock(fd, unix.LOCK_UN)
			}
		})
	}
}
