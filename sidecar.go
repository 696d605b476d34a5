package flock

// Sidecar lock files: WriterPriority's gate, the Semaphore's gate, Update's
// NAME.lock. Each is created as accessible as the file it serves (invariant
// 7: nobody who may not open that file can block its users through the
// sidecar), by a descriptor the process then keeps: on fcntl platforms
// closing it could drop a lock that another goroutine took meanwhile
// through a descriptor of its own.

import (
	"errors"
	"io/fs"
)

// sidecarPerm returns the permission bits of a sidecar of like: like's,
// less any execute bits.
func sidecarPerm(like fs.FileInfo) fs.FileMode { return like.Mode().Perm() & 0o666 }

// openSidecar opens the sidecar lock file path with Open's options, first
// creating it, if nothing is there, with the permission bits perm and
// like's owner (see createSidecar); the descriptor that created it becomes
// the lock file's. It is never created any other way: if it is removed
// between that attempt and the Open, it is created again (unless the
// options say RemoveOnUnlock, whose handles create it as they go).
func openSidecar(path string, like fs.FileInfo, perm fs.FileMode, opts ...Option) (*RWMutex, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if !c.removeOnUnlock {
		opts = append(opts[:len(opts):len(opts)], NoCreate())
	}
	for tries := 0; ; tries++ {
		f, id, err := createSidecar(path, like, perm)
		if err != nil {
			return nil, err
		}
		if f != nil {
			// Registered, Open finds it; the extra reference goes after.
			e := registry.register(f, id)
			m, err := Open(path, opts...)
			registry.release(e)
			return m, err
		}
		m, err := Open(path, opts...)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || tries == 3 {
			return m, err
		}
	}
}
