//go:build unix

package main

// The witness: a file mapped shared into the parent and every worker (an
// internal/witness shared file), with one slot per worker. Everything in
// it is updated with atomic operations.

import (
	"errors"
	"sync/atomic"
	"unsafe"

	"github.com/go-flock/flock/internal/witness"
)

const (
	shmMagic      = 0x666c6f636b737472 // "flockstr"
	shmHeaderSize = 4096
)

type shmHeader struct {
	magic  atomic.Uint64
	nslots atomic.Int64
	// seq is incremented after every change of a slot's section count, so
	// that a third party (the parent) can tell a consistent snapshot of all
	// slots from one torn by a hand-over.
	seq atomic.Int64

	// Path mode (see pathmode_unix.go), per lock file: removals of the
	// path started (counted before the unlink), and the writers' counter
	// (read, yield, write back under the lock).
	removeStart [maxFiles]atomic.Int64
	pathCounter [maxFiles]atomic.Int64
}

// The header must fit in its page.
var _ [shmHeaderSize - unsafe.Sizeof(shmHeader{})]byte

// writerOne is one writer in a section count; readers count in the low bits.
const writerOne = 1 << 32

func sectionWriters(v int64) int64 { return v >> 32 }
func sectionReaders(v int64) int64 { return v & (writerOne - 1) }

// A slot is one worker's part of the witness. A slot outlives the workers
// that use it: a replacement of a killed worker takes over its slot, and its
// counters accumulate over all of them.
type slot struct {
	// state is gen<<1 | killed. The parent sets killed before it sends
	// SIGKILL, clears the section state only once it has reaped the
	// process, then starts the next generation. Readers of section ignore a
	// slot whose state is killed or changed while they read.
	state atomic.Uint64
	pid   atomic.Int64

	// section is writers<<32 + readers currently inside a lock section.
	section atomic.Int64
	// psection is section per lock file, in path mode (section is then
	// unused).
	psection [maxFiles]atomic.Int64
	// writeInFlight counts write sections between reading the counter and
	// recording the write as done.
	writeInFlight atomic.Int64
	writesDone    atomic.Int64
	readsDone     atomic.Int64

	violations atomic.Int64
	errors     atomic.Int64

	// Path mode: Opens, handles found on another file than their path's
	// (counted in violations as well), locks granted on a file no longer
	// at its path, removals of a path, by hand or by RemoveOnUnlock.
	opens      atomic.Int64
	wrongEntry atomic.Int64
	stale      atomic.Int64
	removals   atomic.Int64
	// removing counts the worker's removals of each lock file under way,
	// from before removeStart is incremented until after the unlink.
	removing [maxFiles]atomic.Int64

	ops      [nKinds]atomic.Int64
	acquired [nKinds]atomic.Int64
	busy     [nKinds]atomic.Int64 // Try*: found it held; *Context: cancelled
	failed   [nKinds]atomic.Int64

	maxReaders     atomic.Int64
	maxReaderProcs atomic.Int64
	writerMaxWait  atomic.Int64

	hist    [nHist][nBuckets]atomic.Int64
	histMax [nHist]atomic.Int64

	watch [maxGoroutines]watchEntry
}

// A watchEntry shows what one goroutine is waiting for, for the parent's
// watchdog. It is a seqlock: seq is odd while the entry changes.
type watchEntry struct {
	seq      atomic.Int64
	kind     atomic.Int64 // kind+1 while an operation runs, else 0
	start    atomic.Int64 // unix ns
	deadline atomic.Int64 // unix ns when its context ends; 0 if none
}

func (w *watchEntry) set(kind int, start, deadline int64) {
	w.seq.Add(1)
	w.start.Store(start)
	w.deadline.Store(deadline)
	w.kind.Store(int64(kind) + 1)
	w.seq.Add(1)
}

func (w *watchEntry) clear() {
	w.seq.Add(1)
	w.kind.Store(0)
	w.seq.Add(1)
}

// read returns a consistent view of the entry, or ok false.
func (w *watchEntry) read() (kind int, start, deadline int64, ok bool) {
	s1 := w.seq.Load()
	if s1&1 != 0 {
		return 0, 0, 0, false
	}
	k := w.kind.Load()
	start = w.start.Load()
	deadline = w.deadline.Load()
	if w.seq.Load() != s1 || k == 0 {
		return 0, 0, 0, false
	}
	return int(k - 1), start, deadline, true
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

func (s *slot) record(h int, ns int64) {
	s.hist[h][bucketOf(ns)].Add(1)
	storeMax(&s.histMax[h], ns)
}

// live reads the slot's section count, or ok false if the slot belongs to
// a worker being killed or replaced, whose count may be stale.
func (s *slot) live() (section int64, ok bool) {
	return s.liveCount(&s.section)
}

// livePath is live for lock file i in path mode.
func (s *slot) livePath(i int) (section int64, ok bool) {
	return s.liveCount(&s.psection[i])
}

func (s *slot) liveCount(c *atomic.Int64) (int64, bool) {
	st := s.state.Load()
	v := c.Load()
	if st&1 != 0 || s.state.Load() != st {
		return 0, false
	}
	return v, true
}

// inside reports whether anyone of the slot's worker is inside a section,
// on the one lock file or on any of them.
func (s *slot) inside() bool {
	if s.section.Load() != 0 {
		return true
	}
	for i := range s.psection {
		if s.psection[i].Load() != 0 {
			return true
		}
	}
	return false
}

var slotSize = (unsafe.Sizeof(slot{}) + 63) &^ 63

// An shm is the witness, laid out on the cells of an internal/witness
// shared file: the header's page, then the slots.
type shm struct {
	ws   *witness.Shared
	base unsafe.Pointer // the first cell
	hdr  *shmHeader
	n    int
}

func (m *shm) slot(i int) *slot {
	return (*slot)(unsafe.Add(m.base, shmHeaderSize+uintptr(i)*slotSize))
}

func shmLen(n int) int { return shmHeaderSize + n*int(slotSize) }

func newShm(ws *witness.Shared, n int) *shm {
	base := unsafe.Pointer(ws.Cell(0))
	return &shm{ws: ws, base: base, hdr: (*shmHeader)(base), n: n}
}

// createShm creates the witness file at path for n slots and maps it.
func createShm(path string, n int) (*shm, error) {
	ws, err := witness.Create(path, shmLen(n)/8)
	if err != nil {
		return nil, err
	}
	m := newShm(ws, n)
	m.hdr.nslots.Store(int64(n))
	m.hdr.magic.Store(shmMagic)
	return m, nil
}

// openShm maps the witness file a parent created.
func openShm(path string) (*shm, error) {
	ws, err := witness.Open(path)
	if err != nil {
		return nil, err
	}
	n := (ws.Len()*8 - shmHeaderSize) / int(slotSize)
	m := newShm(ws, n)
	if n < 1 || shmLen(n) != ws.Len()*8 || m.hdr.magic.Load() != shmMagic || m.hdr.nslots.Load() != int64(n) {
		ws.Close()
		return nil, errors.New(path + ": not a witness file of this program")
	}
	return m, nil
}

func (m *shm) close() error { return m.ws.Close() }
