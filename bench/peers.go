//go:build linux

package main

// The lock implementations compared, behind one small interface for the
// scenarios that run them in child processes. The micro-benchmarks
// (microbench.go) call each library directly, so no interface call is timed
// there.

import (
	"fmt"
	"os"

	"github.com/go-flock/flock"
	gofrs "github.com/gofrs/flock"
	"golang.org/x/sys/unix"
)

// A locker is one process's (or goroutine's) handle on a lock file.
type locker interface {
	Lock() error
	Unlock() error
	RLock() error
	RUnlock() error
	Close() error
}

// An impl opens lockers; its name identifies it to child processes, which
// look it up in allImpls.
type impl struct {
	name string
	open func(path string) (locker, error)
}

// oursImpl is this package, with options.
func oursImpl(name string, opts ...flock.Option) impl {
	return impl{name, func(path string) (locker, error) {
		m, err := flock.Open(path, opts...)
		if err != nil {
			return nil, err
		}
		return ours{m}, nil
	}}
}

// gofrsImpl is github.com/gofrs/flock: a handle per locker (one handle
// shared by goroutines gives them no exclusion; see contention.go).
func gofrsImpl() impl {
	return impl{"gofrs", func(path string) (locker, error) {
		return peer{gofrs.New(path)}, nil
	}}
}

// rawImpl is flock(2) on a descriptor of its own kept open: the floor.
func rawImpl() impl {
	return impl{"raw flock(2)", func(path string) (locker, error) {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			return nil, err
		}
		return raw{f, int(f.Fd())}, nil
	}}
}

// The three that every cross-process scenario compares.
var (
	implOurs  = oursImpl("ours")
	implGofrs = gofrsImpl()
	implRaw   = rawImpl()
)

// allImpls lists every impl a child may be asked to run.
func allImpls() []impl {
	return append([]impl{implOurs, implGofrs, implRaw}, floodImpls...)
}

func implByName(name string) (impl, error) {
	for _, im := range allImpls() {
		if im.name == name {
			return im, nil
		}
	}
	return impl{}, fmt.Errorf("unknown implementation %q", name)
}

type ours struct{ m *flock.RWMutex }

func (o ours) Lock() error    { o.m.Lock(); return nil }
func (o ours) Unlock() error  { o.m.Unlock(); return nil }
func (o ours) RLock() error   { o.m.RLock(); return nil }
func (o ours) RUnlock() error { o.m.RUnlock(); return nil }
func (o ours) Close() error   { return o.m.Close() }

type peer struct{ f *gofrs.Flock }

func (p peer) Lock() error    { return p.f.Lock() }
func (p peer) Unlock() error  { return p.f.Unlock() }
func (p peer) RLock() error   { return p.f.RLock() }
func (p peer) RUnlock() error { return p.f.Unlock() } // gofrs has one Unlock for both modes
func (p peer) Close() error   { return p.f.Close() }

type raw struct {
	f  *os.File
	fd int
}

func (r raw) Lock() error    { return flockRetry(r.fd, unix.LOCK_EX) }
func (r raw) Unlock() error  { return flockRetry(r.fd, unix.LOCK_UN) }
func (r raw) RLock() error   { return flockRetry(r.fd, unix.LOCK_SH) }
func (r raw) RUnlock() error { return flockRetry(r.fd, unix.LOCK_UN) }
func (r raw) Close() error   { return r.f.Close() }

// flockRetry is flock(2), retried on EINTR (Go's signal handlers use
// SA_RESTART, so this is only a precaution).
func flockRetry(fd, how int) error {
	for {
		if err := unix.Flock(fd, how); err != unix.EINTR {
			return err
		}
	}
}

// flockDirect is flock(2) as a raw system call, as the package makes its
// calls that do not wait on a local file system.
func flockDirect(fd, how int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_FLOCK, uintptr(fd), uintptr(how), 0); e != 0 {
		return e
	}
	return nil
}
