//go:build unix

package main

// Path mode (-files N with N > 1, -churn, -remove): several lock files in
// one directory, opened afresh all the time, optionally removed and
// re-created while they are opened, locked and closed.
//
// What a holder of a path is. Without RemoveOnUnlock a removed lock file
// lives on as long as handles have it open, and locking such a handle
// excludes only the others that have the same unnamed file: that is the
// documented behaviour, not a fault. So a goroutine counts as holding path
// P only if, once granted the lock, it finds that its file (File().Stat())
// is the file at P (os.Stat): it has "verified" the lock. Files are removed
// only by a verified holder of the exclusive lock (by hand in plain mode,
// by Unlock with RemoveOnUnlock), after it has left the witness and before
// it unlocks; a file is created only where the path has none. Hence, with a
// correct lock, a verified holder's file stays at P until it unlocks, every
// verified holder of P has the same file, and the lock on that file is the
// lock on P: two verified holders of P, one a writer, are a violation. A
// holder that does not verify is counted as stale (a violation with
// RemoveOnUnlock, which promises that a lock is only granted on the file at
// the path) and takes no part in the witness.
//
// Wrong entries. Every lock file is created with permissions that name it:
// 0600 | its index (pathPerm), with umask 0 in the workers; nobody changes
// them. A handle opened on path P whose File() has another lock file's
// permissions (or was opened by another lock file's name) was given another
// file's entry: a wrong entry, whenever it is seen (right after Open, and
// after every lock with RemoveOnUnlock, whose handles move between files).
// Right after Open, a handle whose file is not the one at P although
// nobody removed P since before Open (see removalsIfQuiet) is a wrong
// entry as well.

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/go-flock/flock"
)

// pathPerm returns the permissions of lock file i, by which its file is
// recognised; permPath is the inverse, or -1.
func pathPerm(i int) os.FileMode { return 0o600 | os.FileMode(i) }

func permPath(m os.FileMode) int {
	if m&0o700 != 0o600 {
		return -1
	}
	return int(m & 0o077)
}

// A pathHandle is a handle on one of the lock files.
type pathHandle struct {
	h       *flock.RWMutex
	i       int      // the lock file it was opened for
	checked *os.File // the last file whose identity was checked
	wrong   bool     // seen on another lock file's entry
	stale   bool     // its file is no longer at the path: replace it
}

func (w *worker) initPaths() {
	w.pathIndex = make(map[string]int, len(w.cfg.Paths))
	for i, p := range w.cfg.Paths {
		opts := []flock.Option{flock.WithPerm(pathPerm(i))}
		if w.cfg.Prio {
			opts = append(opts, flock.WriterPriority())
		}
		if w.cfg.Remove {
			opts = append(opts, flock.RemoveOnUnlock())
		}
		w.pathOpts = append(w.pathOpts, opts)
		w.pathIndex[p] = i
	}
}

func (w *worker) name(i int) string {
	if i < 0 || i >= len(w.cfg.Paths) {
		return "no lock file of this run"
	}
	return filepath.Base(w.cfg.Paths[i])
}

// pathOp is one operation in path mode: on a random lock file, through a
// fresh handle (half the time) or the goroutine's long-lived handle on it.
func (g *gor) pathOp() {
	w := g.w
	i := g.rnd.Intn(len(w.cfg.Paths))
	fresh := g.rnd.Intn(2) == 0
	var ph *pathHandle
	if fresh {
		if ph = g.openPath(i); ph == nil {
			return
		}
	} else {
		if g.long[i] == nil {
			if g.long[i] = g.openPath(i); g.long[i] == nil {
				return
			}
		}
		ph = g.long[i]
	}
	kind, r, err := g.attempt(ph.h)
	switch r {
	case acquired:
		g.pathSection(ph, isWrite(kind))
	case busy:
		if !fresh && g.rnd.Intn(8) != 0 {
			return
		}
		// Close fails if the call left anything held or in progress.
		err = errors.New("false (held elsewhere)")
		fallthrough
	case cancelled, failed:
		if cerr := ph.h.Close(); cerr != nil {
			w.violation("%s on %s returned %v but its handle cannot be closed: %v", kindNames[kind], w.name(i), err, cerr)
		}
		if !fresh {
			g.long[i] = nil
		}
		return
	}
	if fresh || ph.stale {
		g.closeHandle(ph, "after its lock was released")
		if !fresh {
			g.long[i] = nil
		}
	}
}

// openOnly is what the -openers goroutines do: open a random lock file,
// check the handle and close it, which makes entries and inode numbers come
// and go fastest.
func (g *gor) openOnly() {
	if ph := g.openPath(g.rnd.Intn(len(g.w.cfg.Paths))); ph != nil {
		g.closeHandle(ph, "right after Open")
	}
}

func (g *gor) closeHandle(ph *pathHandle, when string) {
	if err := ph.h.Close(); err != nil {
		g.w.violation("closing a handle on %s %s: %v", g.w.name(ph.i), when, err)
	}
}

// openPath opens a handle on lock file i and checks its identity.
func (g *gor) openPath(i int) *pathHandle {
	w := g.w
	open := i
	if n := len(w.cfg.Paths); w.cfg.UnsafeWrong && n > 1 && g.rnd.Intn(64) == 0 {
		open = (i + 1) % n // what the registry bug does, on purpose
	}
	gen0 := g.removalsIfQuiet(i)
	h, err := flock.Open(w.cfg.Paths[open], w.pathOpts[open]...)
	w.s.opens.Add(1)
	if err != nil {
		w.error("Open: %v", err)
		return nil
	}
	ph := &pathHandle{h: h, i: i}
	g.checkEntry(ph, gen0, true)
	return ph
}

func (g *gor) wrongEntry(ph *pathHandle, format string, args ...any) {
	ph.wrong = true
	g.w.s.wrongEntry.Add(1)
	g.w.violation("wrong entry: "+format, args...)
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// removalsIfQuiet returns the number of removals of lock file i started,
// or -1 if one may be under way. If it returns n >= 0 and later the count
// is still n, no unlink of the path ran in between: one that counted
// before n was read had finished by the scan of the removing counts (or
// its worker was being killed, and its slot is not live), one that counts
// after must unlink after.
func (g *gor) removalsIfQuiet(i int) int64 {
	m := g.w.m
	n := m.hdr.removeStart[i].Load()
	for j := 0; j < m.n; j++ {
		if v, ok := m.slot(j).liveCount(&m.slot(j).removing[i]); !ok || v != 0 {
			return -1
		}
	}
	return n
}

// checkEntry checks that the handle's file is its lock file's, if that file
// was not checked yet, and returns its FileInfo (nil on error). atOpen is
// for a call right after Open, which started when removalsIfQuiet was
// gen0.
func (g *gor) checkEntry(ph *pathHandle, gen0 int64, atOpen bool) os.FileInfo {
	w := g.w
	f := ph.h.File()
	if f == nil {
		w.error("File() returned nil on an open handle")
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		w.error("stat of a handle's file: %v", err)
		return nil
	}
	if f == ph.checked || ph.wrong {
		return fi
	}
	ph.checked = f
	path := w.cfg.Paths[ph.i]
	if q := permPath(fi.Mode().Perm()); q != ph.i {
		g.wrongEntry(ph, "a handle opened on %s has the file of %s (permissions %#o, inode %d, opened as %s)",
			w.name(ph.i), w.name(q), fi.Mode().Perm(), inode(fi), filepath.Base(f.Name()))
		return fi
	}
	if q, ok := w.pathIndex[f.Name()]; ok && q != ph.i {
		g.wrongEntry(ph, "a handle opened on %s has a file opened as %s (inode %d)", w.name(ph.i), w.name(q), inode(fi))
		return fi
	}
	if atOpen && gen0 >= 0 {
		st, err := os.Stat(path)
		if w.m.hdr.removeStart[ph.i].Load() != gen0 {
			return fi // removed meanwhile: any file it had is fine
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			w.violation("%s does not exist right after Open, and nobody removed it since before Open", w.name(ph.i))
		case err != nil:
			w.error("stat: %v", err)
		case !os.SameFile(st, fi):
			g.wrongEntry(ph, "a handle opened on %s has inode %d, not inode %d at the path, which nobody removed since before Open",
				w.name(ph.i), inode(fi), inode(st))
		}
	}
	return fi
}

// pathSection runs once the lock is granted through ph: it verifies that
// the handle's file is the one at the path, runs the witness section if so,
// removes the file (plain -churn, half the write sections) and releases.
func (g *gor) pathSection(ph *pathHandle, write bool) {
	w, s := g.w, g.w.s
	path := w.cfg.Paths[ph.i]
	verified := false
	if fi := g.checkEntry(ph, 0, false); fi != nil && !ph.wrong {
		st, err := os.Stat(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.error("stat: %v", err)
		}
		verified = err == nil && os.SameFile(st, fi)
	}
	switch {
	case verified && write:
		g.pathWriteSection(ph.i)
	case verified:
		g.pathReadSection(ph.i)
	default:
		ph.stale = true
		s.stale.Add(1)
		if w.cfg.Remove && !ph.wrong {
			what := "read lock"
			if write {
				what = "write lock"
			}
			w.violation("%s granted through a RemoveOnUnlock handle on a file no longer at %s", what, w.name(ph.i))
		}
	}
	switch {
	case write && w.cfg.Remove:
		// Unlock removes the file if it is at the path.
		g.removing(ph.i, func() { g.release(ph.h, write) })
		if verified {
			s.removals.Add(1)
		}
		return
	case write && w.cfg.Churn && verified && g.rnd.Intn(2) == 0:
		var err error
		g.removing(ph.i, func() { err = os.Remove(path) })
		switch {
		case err == nil:
			s.removals.Add(1)
		case errors.Is(err, fs.ErrNotExist):
			w.violation("%s was removed by someone else while this goroutine held its exclusive lock", w.name(ph.i))
		default:
			w.error("remove: %v", err)
		}
	}
	g.release(ph.h, write)
}

// removing runs remove, which may remove lock file i, counted as a removal
// of the path in progress.
func (g *gor) removing(i int, remove func()) {
	h, s := g.w.m.hdr, g.w.s
	s.removing[i].Add(1)
	h.removeStart[i].Add(1)
	remove()
	s.removing[i].Add(-1)
}

// pathWriteSection is writeSection for lock file i: the witness is the
// file's section count in every slot, the counter is in shared memory.
func (g *gor) pathWriteSection(i int) {
	w, s := g.w, g.w.s
	if v := s.psection[i].Add(writerOne); sectionWriters(v) != 1 || sectionReaders(v) != 0 {
		w.violation("writer of %s entered while its own process had %d writers and %d readers of it inside", w.name(i), sectionWriters(v)-1, sectionReaders(v))
	}
	for j := 0; j < w.m.n; j++ {
		if j == w.cfg.Slot {
			continue
		}
		if v, ok := w.m.slot(j).livePath(i); ok && v != 0 {
			w.violation("writer of %s in slot %d entered while slot %d had %d writers and %d readers of it inside", w.name(i), w.cfg.Slot, j, sectionWriters(v), sectionReaders(v))
		}
	}
	w.m.hdr.seq.Add(1)

	s.writeInFlight.Add(1)
	c := &w.m.hdr.pathCounter[i]
	n := c.Load()
	g.hold()
	c.Store(n + 1)
	s.writesDone.Add(1)
	s.writeInFlight.Add(-1)

	s.psection[i].Add(-writerOne)
	w.m.hdr.seq.Add(1)
}

func (g *gor) pathReadSection(i int) {
	w, s := g.w, g.w.s
	if v := s.psection[i].Add(1); sectionWriters(v) != 0 {
		w.violation("reader of %s entered while its own process had %d writers of it inside", w.name(i), sectionWriters(v))
	}
	for j := 0; j < w.m.n; j++ {
		if j == w.cfg.Slot {
			continue
		}
		if v, ok := w.m.slot(j).livePath(i); ok && sectionWriters(v) != 0 {
			w.violation("reader of %s in slot %d entered while slot %d had %d writers of it inside", w.name(i), w.cfg.Slot, j, sectionWriters(v))
		}
	}
	if r, p, ok := snapshotPath(w.m, i); ok {
		storeMax(&s.maxReaders, r)
		storeMax(&s.maxReaderProcs, p)
	}
	w.m.hdr.seq.Add(1)

	c := &w.m.hdr.pathCounter[i]
	a := c.Load()
	g.hold()
	if b := c.Load(); a != b {
		w.violation("the counter of %s changed from %d to %d under a read lock", w.name(i), a, b)
	}
	s.readsDone.Add(1)

	s.psection[i].Add(-1)
	w.m.hdr.seq.Add(1)
}
