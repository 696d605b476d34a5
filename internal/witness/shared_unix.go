//go:build unix

package witness

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// magic marks a file Create made: "witness!" as a little-endian word.
const magic = 0x217373656e746977

// headerCells is the number of cells before the caller's: the magic and
// the number of cells.
const headerCells = 2

// A Shared is a file mapped shared into every process that opens it,
// holding cells of 64 bits that are only ever updated with atomic
// operations, so that processes can count together without any lock.
type Shared struct {
	mem   []byte
	cells []atomic.Int64
}

// Create creates the file at path (it must not exist) with n cells, all
// zero, and maps it.
func Create(path string, n int) (*Shared, error) {
	if n < 1 {
		return nil, fmt.Errorf("witness: %d cells", n)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(int64((headerCells + n) * 8)); err != nil {
		return nil, err
	}
	s, err := mapFile(f, headerCells+n)
	if err != nil {
		return nil, err
	}
	s.cells[1].Store(int64(n))
	s.cells[0].Store(magic)
	s.cells = s.cells[headerCells:]
	return s, nil
}

// Open maps the file at path that Create made, in another process or the
// same.
func Open(path string) (*Shared, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	total := int(st.Size() / 8)
	if total <= headerCells || st.Size()%8 != 0 {
		return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("not a witness file (size " + fmt.Sprint(st.Size()) + ")")}
	}
	s, err := mapFile(f, total)
	if err != nil {
		return nil, err
	}
	if s.cells[0].Load() != magic || s.cells[1].Load() != int64(total-headerCells) {
		s.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("not a witness file")}
	}
	s.cells = s.cells[headerCells:]
	return s, nil
}

func mapFile(f *os.File, cells int) (*Shared, error) {
	mem, err := unix.Mmap(int(f.Fd()), 0, cells*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: err}
	}
	// The mapping is page-aligned, so every cell is aligned for atomics.
	return &Shared{mem: mem, cells: unsafe.Slice((*atomic.Int64)(unsafe.Pointer(&mem[0])), cells)}, nil
}

// Len returns the number of cells.
func (s *Shared) Len() int { return len(s.cells) }

// Cell returns cell i.
func (s *Shared) Cell(i int) *atomic.Int64 { return &s.cells[i] }

// Gauge returns the gauge kept in cells i (the count now) and i+1 (the
// largest count seen).
func (s *Shared) Gauge(i int) Gauge { return Gauge{now: &s.cells[i], max: &s.cells[i+1]} }

// Tally returns the tally of n participants kept in cells base to
// base+TallyCells(n)-1.
func (s *Shared) Tally(base, n int) Tally {
	return Tally{
		changes:  &s.cells[base],
		held:     s.cells[base+1 : base+1+n],
		excluded: s.cells[base+1+n : base+1+2*n],
	}
}

// Close unmaps the file. Cells must not be used after.
func (s *Shared) Close() error {
	s.cells = nil
	return unix.Munmap(s.mem)
}
