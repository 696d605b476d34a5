package flock

// Safe removal of lock files (option RemoveOnUnlock).
//
// Removing a lock file when unlocking breaks exclusion if done naively: a
// process waiting on the old file gets the lock on a file that no longer
// has a name, while a newcomer creates and locks a new file at the path,
// and both hold "the" lock. With the option, the path is removed only by
// the holder of the exclusive lock, before it unlocks, and every acquisition
// checks, once the lock is granted, that its file is still the one at the
// path; if not, it releases that lock, opens the path again (creating the
// file) and retries. Only the holder of the file at the path holds the
// lock.
//
// A handle with the option therefore moves from entry to entry as the file
// is removed and re-created. It pins the entry each lock is taken on until
// that lock is released, so an entry it moved away from stays open while
// a lock on it is held, and is dropped after. An entry stays registered as
// long as it is open, removed or not: its open file pins the identity, so
// no other file can be found under it, and a file whose removal failed is
// still found by the next Open of its path, which must not open a second
// descriptor of it.
//
// The path is never followed through a symbolic link (the option implies
// NoFollow): removing the path would remove the link and leave the lock
// file, and a process using the link and one using the target would then
// each hold "the" lock.

import (
	"context"
	"errors"
	"io/fs"
	"sync"
)

// removal is the state of a handle opened with RemoveOnUnlock.
type removal struct {
	cfg config

	mu     sync.Mutex
	cur    *entry         // the entry this handle opens locks on; the handle's reference
	writer *entry         // the entry of the write lock held through the handle
	reads  map[*entry]int // the entries of the read locks held through the handle
	// removed is whether the handle removed cur's file itself: the next
	// lock then moves on at once instead of locking a file it knows is
	// gone.
	removed bool
}

// removeFile removes the lock file (removeLockFile of the backend); a
// variable so that tests can make it fail.
var removeFile = removeLockFile

// atPath reports whether e's file is still the one at path.
func atPath(e *entry, path string, c *config) bool {
	id, err := statFile(path, c.noFollow)
	return err == nil && id == e.id
}

// lock acquires through the file now at path.
func (r *removal) lock(path string, ctx context.Context, mode lockMode, wait bool) (bool, error) {
	for {
		r.mu.Lock()
		removed, cur := r.removed, r.cur
		r.mu.Unlock()
		if removed {
			if err := r.advance(cur, path); err != nil {
				return false, err
			}
		}
		e := r.pin()
		ok, err := e.lock(ctx, mode, wait)
		if !ok {
			registry.release(e)
			return false, err
		}
		if atPath(e, path, &r.cfg) {
			r.mu.Lock()
			if mode == exclusive {
				r.writer = e
			} else {
				r.reads[e]++
			}
			r.mu.Unlock()
			return true, nil
		}
		// The file was removed or replaced after e was opened: nobody
		// can meet us on it any more.
		e.unlock(mode)
		err = r.advance(e, path)
		registry.release(e)
		if err != nil {
			return false, err
		}
	}
}

// pin returns the current entry with a reference taken for one lock.
func (r *removal) pin() *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	registry.mu.Lock()
	defer registry.mu.Unlock()
	r.cur.refs++
	return r.cur
}

// advance moves the handle from the stale entry old to the file now at
// path, unless another goroutine already has.
func (r *removal) advance(old *entry, path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != old {
		return nil
	}
	open := registry.open
	if r.removed {
		// The handle removed the file itself: the path most likely names
		// nothing, and a stat to find an entry would be wasted.
		open = registry.openAfterRemoval
	}
	e, err := open(path, &r.cfg)
	if err != nil {
		return err
	}
	r.cur, r.removed = e, false
	return registry.release(old)
}

// unlock releases a lock taken through the handle; a write lock's file is
// removed first, while it is still held. It returns the error of the
// removal apart from the error of the release.
func (r *removal) unlock(mode lockMode, path string) (removeErr, err error) {
	r.mu.Lock()
	var e *entry
	if mode == exclusive {
		e, r.writer = r.writer, nil
	} else {
		for e = range r.reads {
			break
		}
		if r.reads[e]--; r.reads[e] == 0 {
			delete(r.reads, e)
		}
	}
	r.mu.Unlock()
	if mode == exclusive && atPath(e, path, &r.cfg) {
		if err := removeFile(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			removeErr = err
		} else if err == nil {
			r.mu.Lock()
			r.removed = r.removed || r.cur == e
			r.mu.Unlock()
		}
	}
	err = e.unlock(mode)
	return removeErr, errors.Join(err, registry.release(e))
}

// heldEntry returns the entry of a lock held through the handle, or the current
// entry if none is.
func (r *removal) heldEntry() *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.writer != nil {
		return r.writer
	}
	for e := range r.reads {
		return e
	}
	return r.cur
}
