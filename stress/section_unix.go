//go:build unix

package main

// A worker goroutine's lock sections on the one lock file: what it does
// inside (hold, the writers' counter, the witness's section counts) and the
// witness's snapshot of who is inside.

import (
	"encoding/binary"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/go-flock/flock"
)

// hold spends a random time inside a lock section, mixing yields, spins
// and sleeps, so that sections of different goroutines and processes would
// overlap if the lock let them.
func (g *gor) hold() {
	max := int64(g.w.cfg.Hold)
	if max <= 0 {
		runtime.Gosched()
		return
	}
	d := time.Duration(g.rnd.Int63n(max + 1))
	switch g.rnd.Intn(3) {
	case 0:
		runtime.Gosched()
	case 1:
		for t := time.Now(); time.Since(t) < d; {
			runtime.Gosched()
		}
	default:
		time.Sleep(d)
	}
}

func (g *gor) readCounter(f *os.File) (int64, bool) {
	n, err := f.ReadAt(g.buf[:], 0)
	if err != nil && !(err == io.EOF && n == 0) {
		g.w.error("reading the counter: %v", err)
		return 0, false
	}
	if n < len(g.buf) {
		return 0, true
	}
	return int64(binary.LittleEndian.Uint64(g.buf[:])), true
}

// writeSection runs with the lock held for writing: it enters the
// witness, checks that nobody else is in, and increments the counter in the
// lock file by reading it, yielding and writing it back.
func (g *gor) writeSection(h *flock.RWMutex) {
	w, s := g.w, g.w.s
	if v := s.section.Add(writerOne); sectionWriters(v) != 1 || sectionReaders(v) != 0 {
		w.violation("writer entered while its own process had %d writers and %d readers inside", sectionWriters(v)-1, sectionReaders(v))
	}
	for i := 0; i < w.m.n; i++ {
		if i == w.cfg.Slot {
			continue
		}
		if v, ok := w.m.slot(i).live(); ok && v != 0 {
			w.violation("writer in slot %d entered while slot %d had %d writers and %d readers inside", w.cfg.Slot, i, sectionWriters(v), sectionReaders(v))
		}
	}
	w.m.hdr.seq.Add(1)

	s.writeInFlight.Add(1)
	if f := h.File(); f == nil {
		w.error("File() returned nil on an open handle")
	} else if n, ok := g.readCounter(f); ok {
		g.hold()
		binary.LittleEndian.PutUint64(g.buf[:], uint64(n+1))
		if _, err := f.WriteAt(g.buf[:], 0); err != nil {
			w.error("writing the counter: %v", err)
		} else {
			s.writesDone.Add(1)
		}
	}
	s.writeInFlight.Add(-1)

	s.section.Add(-writerOne)
	w.m.hdr.seq.Add(1)
}

// readSection runs with the lock held for reading: it enters the witness,
// checks that no writer is in, counts the readers, and reads the counter
// twice: no writer may change it in between.
func (g *gor) readSection(h *flock.RWMutex) {
	w, s := g.w, g.w.s
	if v := s.section.Add(1); sectionWriters(v) != 0 {
		w.violation("reader entered while its own process had %d writers inside", sectionWriters(v))
	}
	for i := 0; i < w.m.n; i++ {
		if i == w.cfg.Slot {
			continue
		}
		if v, ok := w.m.slot(i).live(); ok && sectionWriters(v) != 0 {
			w.violation("reader in slot %d entered while slot %d had %d writers inside", w.cfg.Slot, i, sectionWriters(v))
		}
	}
	if r, p, ok := readersNow(w.m); ok {
		storeMax(&s.maxReaders, r)
		storeMax(&s.maxReaderProcs, p)
	}
	w.m.hdr.seq.Add(1)

	if f := h.File(); f == nil {
		w.error("File() returned nil on an open handle")
	} else if a, ok := g.readCounter(f); ok {
		g.hold()
		if b, ok := g.readCounter(f); ok && a != b {
			w.violation("the counter changed from %d to %d under a read lock", a, b)
		}
		s.readsDone.Add(1)
	}

	s.section.Add(-1)
	w.m.hdr.seq.Add(1)
}

// snapshot returns the writers and readers inside sections, and the number
// of processes with readers inside, all at one instant; ok is false if
// sections kept changing during the attempts.
//
// The snapshot is consistent when seq did not change while the slots were
// read: every goroutine counted then was inside its section, hence held
// the lock, when seq was read the second time.
func snapshot(m *shm) (writers, readers, readerProcs int64, ok bool) {
	for try := 0; try < 4; try++ {
		s1 := m.hdr.seq.Load()
		writers, readers, readerProcs = 0, 0, 0
		for i := 0; i < m.n; i++ {
			v, live := m.slot(i).live()
			if !live {
				continue
			}
			writers += sectionWriters(v)
			if r := sectionReaders(v); r > 0 {
				readers += r
				readerProcs++
			}
		}
		if m.hdr.seq.Load() == s1 {
			return writers, readers, readerProcs, true
		}
	}
	return 0, 0, 0, false
}

func readersNow(m *shm) (readers, procs int64, ok bool) {
	_, readers, procs, ok = snapshot(m)
	return readers, procs, ok
}
