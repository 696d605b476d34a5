package flock

// The process-wide registry of lock files, keyed by file identity: one
// entry (one open file, one OS lock) per file per process, found by stat
// and verified once pinned.

import (
	"errors"
	"io/fs"
	"os"
	"sync"
)

// registry maps file identity to the process's one entry for that file, so
// that every handle on a file, whatever path it was opened by, shares one
// open file, one in-process gate and one OS lock.
var registry = registryState{entries: make(map[fileID]*entry)}

type registryState struct {
	mu      sync.Mutex
	entries map[fileID]*entry
}

// open returns the entry for the file at path, with a reference taken for
// the caller's handle, and with the writer-priority gate if c asks for it.
func (r *registryState) open(path string, c *config) (*entry, error) {
	e, err := r.find(path, c)
	if err != nil {
		return nil, err
	}
	if c.writerPriority {
		if err := r.addGate(e, path); err != nil {
			r.release(e)
			return nil, err
		}
	}
	return e, nil
}

// openAfterRemoval is open for a path whose file the caller has just
// removed: it opens the path (creating the file) without the stat by which
// find looks for an entry first. That is safe: if another Open of the
// process got to the new file first, register keeps this descriptor as a
// spare of its entry, never closing it while that entry may hold a lock.
func (r *registryState) openAfterRemoval(path string, c *config) (*entry, error) {
	f, id, err := openFile(path, c)
	if err != nil {
		return nil, err
	}
	e := r.register(f, id)
	if c.writerPriority {
		if err := r.addGate(e, path); err != nil {
			r.release(e)
			return nil, err
		}
	}
	return e, nil
}

// find returns the entry of the file at path, opening the file if no entry
// has it, with a reference taken.
//
// The identity is looked up by stat before anything is opened, so that no
// second descriptor of a file the process already holds is opened and
// closed: on fcntl platforms closing any descriptor of a file drops the
// process's lock on it. But a stat is only a guess: between it and the
// lookup the file may be removed and its inode number reused at once by
// another lock file that has an entry (ext4 and tmpfs do reuse them at
// once). Once a reference is taken, the entry's open file pins its inode,
// so a second stat that still finds the same identity proves the path names
// the entry's file; otherwise the reference goes back and find starts over.
func (r *registryState) find(path string, c *config) (*entry, error) {
	for {
		id, err := statFile(path, c.noFollow)
		if testHookStatted != nil {
			testHookStatted(path)
		}
		switch {
		case err == nil:
			e := r.ref(id)
			if e == nil {
				break // not open in this process: open it below
			}
			if again, err := statFile(path, c.noFollow); err == nil && again == id {
				return e, nil
			}
			// Not the file at path (any more): the reference goes back. An
			// error closing that other file is not this path's to report.
			r.release(e)
			continue
		case errors.Is(err, fs.ErrNotExist) && !c.noCreate:
			// Create it below.
		default:
			return nil, err
		}

		f, id, err := openFile(path, c)
		if err != nil {
			return nil, err
		}
		return r.register(f, id), nil
	}
}

// register returns the entry of the open file f, whose identity is id,
// with a reference taken: a new entry for f, or the one registered for the
// file already. f pins the identity it was opened with, and every
// registered entry's file pins its own: an entry with this identity is
// this very file.
func (r *registryState) register(f *os.File, id fileID) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[id]
	if e != nil {
		// Another Open of the same file won the race. Closing f now could
		// drop that entry's fcntl lock; keep it until the entry goes.
		e.spares = append(e.spares, f)
	} else {
		e = &entry{id: id, file: f}
		e.fd = sysFD(f, &e.fdMem) // one allocation for both
		e.readers.Store(-readerBias)
		r.entries[id] = e
	}
	e.refs++
	return e
}

// testHookStatted, if set by a test, runs between find's stat and its
// lookup: where the race it guards against happens.
var testHookStatted func(path string)

// ref returns the registered entry with identity id, with a reference
// taken, or nil.
func (r *registryState) ref(id fileID) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[id]
	if e != nil {
		e.refs++
	}
	return e
}

// release drops a handle's reference to e. The last reference closes the
// file, unless an OS wait is still in the kernel on it: then the waiting
// goroutine drops the entry when the wait ends (see entry.wait), and the
// entry stays registered meanwhile so that a new Open of the same file finds
// it instead of opening a second descriptor.
func (r *registryState) release(e *entry) error {
	r.mu.Lock()
	e.refs--
	r.mu.Unlock()
	return r.drop(e)
}

// drop removes e and closes its files if no handle refers to it and no OS
// wait is in flight on it; it then lets go of e's gate.
func (r *registryState) drop(e *entry) error {
	g, err := r.dropLocked(e)
	if g != nil {
		err = errors.Join(err, r.release(g))
	}
	return err
}

func (r *registryState) dropLocked(e *entry) (gate *entry, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refs > 0 || e.waiting() || e.dead {
		return nil, nil
	}
	e.dead = true
	if r.entries[e.id] == e {
		delete(r.entries, e.id)
	}
	if e.held != unlocked {
		// The last RUnlock of a handle that is being closed may not have
		// settled yet. Unlock explicitly rather than by closing: Windows
		// documents that a closed handle's locks are released in a time
		// that "depends upon available system resources".
		err = e.osUnlock()
	}
	// errors.Join of nils allocates nothing: RemoveOnUnlock drops an
	// entry at every Unlock.
	err = errors.Join(err, closeFD(e.fd), e.file.Close())
	if e.view != nil {
		e.view.Close() // an error says the caller closed it first
	}
	for _, f := range e.spares {
		err = errors.Join(err, f.Close())
	}
	if e.gate != nil {
		e.gate.gateOf--
	}
	return e.gate, err
}
