//go:build unix

package main

// Path mode, the parent's side: the lock files made for the run, the
// re-creation of removed ones (-churn), and the checks of the per-file
// witness (the design is at the top of pathmode_unix.go).

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-flock/flock"
)

// snapshotPath returns the readers of lock file i inside sections, and the
// number of processes they are in, at one instant (see snapshot).
func snapshotPath(m *shm, i int) (readers, readerProcs int64, ok bool) {
	for try := 0; try < 4; try++ {
		s1 := m.hdr.seq.Load()
		readers, readerProcs = 0, 0
		for j := 0; j < m.n; j++ {
			v, live := m.slot(j).livePath(i)
			if r := sectionReaders(v); live && r > 0 {
				readers += r
				readerProcs++
			}
		}
		if m.hdr.seq.Load() == s1 {
			return readers, readerProcs, true
		}
	}
	return 0, 0, false
}

// snapshotPaths returns, at one instant, the writers and readers inside
// sections of each of the first n lock files.
func snapshotPaths(m *shm, n int) (writers, readers, readerProcs [maxFiles]int64, ok bool) {
	for try := 0; try < 4; try++ {
		s1 := m.hdr.seq.Load()
		writers, readers, readerProcs = [maxFiles]int64{}, [maxFiles]int64{}, [maxFiles]int64{}
		for j := 0; j < m.n; j++ {
			for i := 0; i < n; i++ {
				v, live := m.slot(j).livePath(i)
				if !live {
					break
				}
				writers[i] += sectionWriters(v)
				if r := sectionReaders(v); r > 0 {
					readers[i] += r
					readerProcs[i]++
				}
			}
		}
		if m.hdr.seq.Load() == s1 {
			return writers, readers, readerProcs, true
		}
	}
	return writers, readers, readerProcs, false
}

// Parent side.

// preparePaths creates the lock files, each with its permissions.
func (p *parent) preparePaths() error {
	dir := p.dir
	if p.cfg.Dir != "" {
		d, err := os.MkdirTemp(p.cfg.Dir, "flock-stress-")
		if err != nil {
			return err
		}
		p.filesDir = d
		dir = d
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	p.paths = nil
	for i := 0; i < p.cfg.Files; i++ {
		path := filepath.Join(dir, fmt.Sprintf("lock%02d", i))
		if _, err := createLockFile(path, pathPerm(i)); err != nil {
			return err
		}
		p.paths = append(p.paths, path)
	}
	p.lockPath = p.paths[0]
	return nil
}

// createLockFile creates the file at path with permissions perm, whatever
// the umask, unless a file is there; it reports whether it did. The file
// gets its permissions before its name, under a temporary name.
func createLockFile(path string, perm os.FileMode) (bool, error) {
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		os.Remove(tmp) // left by a run that did not finish
		f, err = os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	}
	if err != nil {
		return false, err
	}
	err = f.Chmod(perm)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, path)
	}
	os.Remove(tmp)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	return err == nil, err
}

// recreate re-creates the lock files that are missing, until stop is
// closed. The parent holds no lock meanwhile, so that the descriptors it
// opens and closes drop nobody's fcntl lock.
func (p *parent) recreate(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		for i, path := range p.paths {
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				continue
			}
			created, err := createLockFile(path, pathPerm(i))
			if err != nil {
				p.error("re-creating %s: %v", filepath.Base(path), err)
				return
			}
			if created {
				p.recreations++
			}
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// checkPaths is the checker's sample in path mode.
func (p *parent) checkPaths(reported *int) {
	ws, rs, rps, ok := snapshotPaths(p.m, p.cfg.Files)
	if !ok {
		return
	}
	for i := 0; i < p.cfg.Files; i++ {
		w, r := ws[i], rs[i]
		storeMax(&p.maxReaders, r)
		storeMax(&p.maxRProcs, rps[i])
		if w > 1 || (w == 1 && r > 0) {
			p.violations.Add(1)
			if *reported < 5 {
				*reported++
				p.note("violation: checker saw %d writers and %d readers of %s inside at once", w, r, filepath.Base(p.paths[i]))
			}
		}
	}
}

// finalCheckPaths, once every worker is gone, checks that no lock file is
// still locked and returns the sum of the counters.
func (p *parent) finalCheckPaths() (int64, error) {
	var sum int64
	for i, path := range p.paths {
		sum += p.m.hdr.pathCounter[i].Load()
		h, err := flock.Open(path, flock.NoCreate())
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		ok, err := h.TryLock()
		if err != nil {
			h.Close()
			return 0, err
		}
		if ok {
			h.Unlock()
		} else {
			p.finalViolation("%s is still locked after every worker exited", filepath.Base(path))
		}
		if err := h.Close(); err != nil {
			return 0, err
		}
	}
	return sum, nil
}
