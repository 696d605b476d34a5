package fuzz

// FuzzOps: random operation sequences against a model of the lock. One
// file (over the usual length): the model, the operations and the checker
// are read together.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-flock/flock"
)

// FuzzOps reads its input as a sequence of two-byte operations [op, arg]
// and applies them, through a few actor goroutines, to handles on three
// files, comparing each result with a model of RWMutex semantics:
//
//   - one writer or any number of readers per file, whichever handle
//     (path, symbolic link, hard link, path with "..") each lock went
//     through: handles on one file exclude each other;
//   - locks are counted per handle: Unlock or RUnlock through a handle that
//     holds no such lock panics, even if another handle on the file holds
//     one;
//   - TryLock/TryRLock report contention as false, nil;
//   - LockContext/RLockContext with a context already ended fail with its
//     error and take nothing, even on a free file;
//   - Close fails with ErrLocked while the handle holds a lock, and every
//     call on a closed handle fails with os.ErrClosed (Lock and RLock
//     panic with it);
//   - every error is an *fs.PathError naming the handle's path.
//
// A blocking Lock, RLock or LockContext is issued only when the model says
// it succeeds at once; otherwise the same call is made with a context that
// times out after a millisecond, and must time out, holding nothing.
//
// After every step a helper process probes each file with TryLock and
// TryRLock: another process must be able to lock a file exclusively iff no
// handle here holds it, and shared iff no handle here holds it for writing.
func FuzzOps(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newOpsRun(t)
		defer r.finish()
		for i := 0; i+1 < len(data) && i/2 < maxSteps; i += 2 {
			r.step(data[i], data[i+1])
			r.checkOthersView()
			if t.Failed() {
				return
			}
		}
	})
}

// Operations, the first byte of a step modulo nOps.
const (
	opOpen = iota
	opClose
	opLock
	opRLock
	opTryLock
	opTryRLock
	opLockCancelled  // LockContext with a cancelled context
	opRLockCancelled // RLockContext with a cancelled context
	opLockExpired    // LockContext with a deadline in the past
	opRLockExpired   // RLockContext with a deadline in the past
	opLockContext    // LockContext with a live context
	opRLockContext   // RLockContext with a live context
	opUnlock
	opRUnlock
	opRLockerLock   // RLocker().Lock
	opRLockerUnlock // RLocker().Unlock
	opFile
	nOps
)

var opNames = [nOps]string{
	"Open", "Close", "Lock", "RLock", "TryLock", "TryRLock",
	"LockContext(cancelled)", "RLockContext(cancelled)",
	"LockContext(expired)", "RLockContext(expired)",
	"LockContext", "RLockContext", "Unlock", "RUnlock",
	"RLocker().Lock", "RLocker().Unlock", "File",
}

const (
	maxSteps   = 256
	maxHandles = 12
	nActors    = 3
	nFiles     = 3
	// callTimeout bounds every call; only a broken lock takes that long.
	callTimeout = 20 * time.Second
	// blockedWait is how long a call the model says must wait is given
	// before its context ends.
	blockedWait = time.Millisecond
)

// A variant is one way to name one of the files.
type variant struct {
	path string
	file int
}

// A handle is one open (or closed) *flock.RWMutex and what the model says
// it holds.
type handle struct {
	m       *flock.RWMutex
	path    string
	file    int
	closed  bool
	readers int
	writer  bool
}

type opsRun struct {
	t        *testing.T
	dir      string
	files    [nFiles]string
	variants []variant
	handles  []*handle
	actors   [nActors]chan func()
	stuck    [nActors]bool // in a call that did not return
	prober   *prober
	n        int
	log      []string
}

func newOpsRun(t *testing.T) *opsRun {
	r := &opsRun{t: t, dir: t.TempDir()}
	for i := range r.files {
		r.files[i] = filepath.Join(r.dir, string(rune('a'+i)))
		if err := os.WriteFile(r.files[i], nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(r.dir, "sub"), 0o777); err != nil {
		t.Fatal(err)
	}
	// Aliases fall back to the plain path where links cannot be made
	// (symbolic links on Windows without the privilege).
	alias := func(file int, name string, mk func(target, link string) error, target string) {
		p := filepath.Join(r.dir, name)
		if err := mk(target, p); err != nil {
			p = r.files[file]
		}
		r.variants = append(r.variants, variant{p, file})
	}
	a, b, c := r.files[0], r.files[1], r.files[2]
	r.variants = append(r.variants, variant{a, 0})
	alias(0, "a.symlink", os.Symlink, "a") // relative target
	alias(0, "a.hardlink", os.Link, a)
	r.variants = append(r.variants, variant{filepath.Join(r.dir, "sub") + string(filepath.Separator) + ".." + string(filepath.Separator) + "a", 0})
	r.variants = append(r.variants, variant{b, 1})
	alias(1, "b.symlink", os.Symlink, b) // absolute target
	r.variants = append(r.variants, variant{c, 2})
	alias(2, "c.hardlink", os.Link, c)

	for i := range r.actors {
		ch := make(chan func())
		r.actors[i] = ch
		go func() {
			for f := range ch {
				f()
			}
		}()
	}
	r.prober = getProber(t)
	r.prober.setFiles(t, r.files[:])
	return r
}

// finish releases what the model says is held, closes every handle (all
// of which must succeed), checks that other processes see every file free,
// and stops the actors.
func (r *opsRun) finish() {
	defer func() {
		for _, ch := range r.actors {
			close(ch)
		}
	}()
	if r.t.Failed() {
		// Best effort, so that a failing input does not disturb the
		// next ones the fuzzer runs in this process.
		actor := -1
		for i := range r.actors {
			if !r.stuck[i] {
				actor = i
			}
		}
		for _, h := range r.handles {
			if !h.closed && actor >= 0 {
				r.tryCall(actor, func() result {
					if h.writer {
						h.m.Unlock()
					}
					for ; h.readers > 0; h.readers-- {
						h.m.RUnlock()
					}
					return result{err: h.m.Close()}
				})
			}
		}
		return
	}
	for i, h := range r.handles {
		if h.closed {
			continue
		}
		res := r.call(0, func() result {
			if h.writer {
				h.m.Unlock()
			}
			for n := h.readers; n > 0; n-- {
				h.m.RUnlock()
			}
			return result{err: h.m.Close()}
		})
		if res.panicked || res.err != nil {
			r.fail("releasing and closing handle %d at the end: %s", i, res)
			return
		}
		h.writer, h.readers, h.closed = false, 0, true
	}
	r.checkOthersView()
}

// A result is what one call did.
type result struct {
	ok       bool
	err      error
	panicked bool
	panicVal any
	m        *flock.RWMutex
	file     *os.File
}

func (res result) String() string {
	if res.panicked {
		return fmt.Sprintf("panic(%v)", res.panicVal)
	}
	return fmt.Sprintf("(%v, %v)", res.ok, res.err)
}

// call runs f on an actor goroutine and returns its result; a panic is a
// result too. A call that does not return in time fails the test.
func (r *opsRun) call(actor int, f func() result) result {
	res, ok := r.tryCall(actor, f)
	if !ok {
		r.t.Fatalf("step %d: call did not return within %v; steps so far:\n%s", r.n, callTimeout, strings.Join(r.log, "\n"))
	}
	return res
}

// tryCall is call, reporting a timeout as ok false. The actor stays
// stuck then: a broken lock may leak a goroutine, never hang the test.
func (r *opsRun) tryCall(actor int, f func() result) (res result, ok bool) {
	done := make(chan result, 1)
	timeout := time.NewTimer(callTimeout)
	defer timeout.Stop()
	select {
	case r.actors[actor] <- func() {
		var res result
		defer func() {
			if v := recover(); v != nil {
				res = result{panicked: true, panicVal: v}
			}
			done <- res
		}()
		res = f()
	}:
	case <-timeout.C:
		return result{}, false
	}
	select {
	case res := <-done:
		return res, true
	case <-timeout.C:
		r.stuck[actor] = true
		return result{}, false
	}
}

func (r *opsRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("step %d: "+format+"\nsteps so far:\n%s", append(append([]any{r.n}, args...), strings.Join(r.log, "\n"))...)
}

// holders returns how many read locks and whether a write lock are held on
// file, over all handles.
func (r *opsRun) holders(file int) (readers int, writer bool) {
	for _, h := range r.handles {
		if h.file == file {
			readers += h.readers
			writer = writer || h.writer
		}
	}
	return readers, writer
}

// canLock reports whether a lock in the mode would be granted at once.
func (r *opsRun) canLock(file int, write bool) bool {
	readers, writer := r.holders(file)
	if write {
		return readers == 0 && !writer
	}
	return !writer
}

func (r *opsRun) step(opByte, arg byte) {
	r.n++
	op := int(opByte) % nOps
	actor := int(arg>>6) % nActors
	if len(r.handles) == 0 {
		op = opOpen
	}
	if op == opOpen {
		if len(r.handles) >= maxHandles {
			return
		}
		v := r.variants[int(arg)%len(r.variants)]
		r.log = append(r.log, fmt.Sprintf("  %d: actor %d: Open(%s) -> handle %d (file %c)", r.n, actor, filepath.Base(v.path), len(r.handles), 'a'+v.file))
		res := r.call(actor, func() result {
			m, err := flock.Open(v.path)
			if err != nil {
				return result{err: err}
			}
			return result{ok: true, m: m, file: m.File()}
		})
		if res.panicked || res.err != nil || res.file == nil {
			r.fail("Open(%q) = %s, File() = %v", v.path, res, res.file)
			return
		}
		if res.m.Path() != v.path {
			r.fail("Open(%q).Path() = %q", v.path, res.m.Path())
		}
		r.handles = append(r.handles, &handle{m: res.m, path: v.path, file: v.file})
		return
	}

	hi := int(arg&0x3f) % len(r.handles)
	h := r.handles[hi]
	r.log = append(r.log, fmt.Sprintf("  %d: actor %d: handle %d (file %c%s): %s", r.n, actor, hi, 'a'+h.file, map[bool]string{true: ", closed"}[h.closed], opNames[op]))
	m := h.m
	write := op == opLock || op == opTryLock || op == opLockCancelled || op == opLockExpired || op == opLockContext

	switch op {
	case opClose:
		res := r.call(actor, func() result { return result{err: m.Close()} })
		switch {
		case h.closed:
			r.expectErr(h, op, res, os.ErrClosed)
		case h.writer || h.readers > 0:
			r.expectErr(h, op, res, flock.ErrLocked)
		default:
			r.expectOK(op, res, false)
			h.closed = true
		}

	case opLock, opRLock, opRLockerLock, opLockContext, opRLockContext:
		if !h.closed && !r.canLock(h.file, write) {
			// It would wait (perhaps forever, on this very handle):
			// wait briefly instead, and take nothing.
			res := r.call(actor, func() result {
				ctx, cancel := context.WithTimeout(context.Background(), blockedWait)
				defer cancel()
				var err error
				if write {
					err = m.LockContext(ctx)
				} else {
					err = m.RLockContext(ctx)
				}
				return result{ok: err == nil, err: err}
			})
			r.log[len(r.log)-1] += " (would wait: with a timeout instead)"
			r.expectErr(h, op, res, context.DeadlineExceeded)
			return
		}
		res := r.call(actor, func() result {
			switch op {
			case opLock:
				m.Lock()
			case opRLock:
				m.RLock()
			case opRLockerLock:
				m.RLocker().Lock()
			case opLockContext:
				err := m.LockContext(context.Background())
				return result{ok: err == nil, err: err}
			case opRLockContext:
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				defer cancel()
				err := m.RLockContext(ctx)
				return result{ok: err == nil, err: err}
			}
			return result{ok: true}
		})
		switch {
		case h.closed && (op == opLockContext || op == opRLockContext):
			r.expectErr(h, op, res, os.ErrClosed)
		case h.closed:
			if !res.panicked || !panicIs(res.panicVal, os.ErrClosed) {
				r.fail("%s on a closed handle = %s; want a panic with os.ErrClosed", opNames[op], res)
			}
		default:
			r.expectOK(op, res, true)
			r.took(h, write)
		}

	case opTryLock, opTryRLock:
		res := r.call(actor, func() result {
			var ok bool
			var err error
			if write {
				ok, err = m.TryLock()
			} else {
				ok, err = m.TryRLock()
			}
			return result{ok: ok, err: err}
		})
		switch {
		case h.closed:
			r.expectErr(h, op, res, os.ErrClosed)
		case r.canLock(h.file, write):
			r.expectOK(op, res, true)
			r.took(h, write)
		default:
			if res.panicked || res.ok || res.err != nil {
				r.fail("%s on a held file = %s; want (false, nil)", opNames[op], res)
				r.took(h, write) // keep the model in step for the cleanup
			}
		}

	case opLockCancelled, opRLockCancelled, opLockExpired, opRLockExpired:
		var want error = context.Canceled
		if op == opLockExpired || op == opRLockExpired {
			want = context.DeadlineExceeded
		}
		res := r.call(actor, func() result {
			var ctx context.Context
			var cancel context.CancelFunc
			if want == context.Canceled {
				ctx, cancel = context.WithCancel(context.Background())
				cancel()
			} else {
				ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
				defer cancel()
			}
			var err error
			if write {
				err = m.LockContext(ctx)
			} else {
				err = m.RLockContext(ctx)
			}
			return result{ok: err == nil, err: err}
		})
		if h.closed {
			// Which of the two the call reports first is not specified.
			r.expectErr(h, op, res, os.ErrClosed, want)
		} else {
			r.expectErr(h, op, res, want)
		}
		if res.ok {
			r.took(h, write)
		}

	case opUnlock:
		res := r.call(actor, func() result { m.Unlock(); return result{ok: true} })
		switch {
		case h.writer:
			r.expectOK(op, res, true)
			h.writer = false
		case !res.panicked:
			r.fail("Unlock of a handle that holds no write lock = %s; want a panic", res)
		}

	case opRUnlock, opRLockerUnlock:
		res := r.call(actor, func() result {
			if op == opRUnlock {
				m.RUnlock()
			} else {
				m.RLocker().Unlock()
			}
			return result{ok: true}
		})
		switch {
		case h.readers > 0:
			r.expectOK(op, res, true)
			h.readers--
		case !res.panicked:
			r.fail("%s of a handle that holds no read lock = %s; want a panic", opNames[op], res)
		}

	case opFile:
		res := r.call(actor, func() result { return result{file: m.File()} })
		if h.closed {
			if res.file != nil {
				r.fail("File() on a closed handle = %v; want nil", res.file)
			}
			return
		}
		if res.file == nil {
			r.fail("File() on an open handle = nil")
			return
		}
		// All handles of the process on one file share one *os.File.
		for _, o := range r.handles {
			if o.file == h.file && !o.closed && o.m.File() != res.file {
				r.fail("handles on one file return different files from File(): %p and %p", res.file, o.m.File())
			}
		}
	}
}

// took records that h acquired a lock.
func (r *opsRun) took(h *handle, write bool) {
	if write {
		h.writer = true
	} else {
		h.readers++
	}
}

func (r *opsRun) expectOK(op int, res result, wantOK bool) {
	r.t.Helper()
	if res.panicked || res.err != nil || res.ok != wantOK {
		r.fail("%s = %s; want (%v, nil)", opNames[op], res, wantOK)
	}
}

// expectErr checks that the call failed, took nothing, and returned an
// *fs.PathError naming h's path that matches one of wants.
func (r *opsRun) expectErr(h *handle, op int, res result, wants ...error) {
	r.t.Helper()
	if res.panicked || res.ok || res.err == nil {
		r.fail("%s = %s; want an error matching %v", opNames[op], res, wants)
		return
	}
	matched := false
	for _, w := range wants {
		matched = matched || errors.Is(res.err, w)
	}
	if !matched {
		r.fail("%s = %s; want an error matching %v", opNames[op], res, wants)
	}
	var pe *fs.PathError
	if !errors.As(res.err, &pe) || pe.Path != h.path {
		r.fail("%s error %q (%T) is not an *fs.PathError naming %q", opNames[op], res.err, res.err, h.path)
	}
}

func panicIs(v any, target error) bool {
	err, ok := v.(error)
	return ok && errors.Is(err, target)
}

// checkOthersView asks the prober what another process sees of each file.
func (r *opsRun) checkOthersView() {
	r.t.Helper()
	ex, sh := r.prober.probe(r.t)
	if len(ex) != nFiles {
		r.fail("prober reported %d files", len(ex))
		return
	}
	for i := 0; i < nFiles; i++ {
		readers, writer := r.holders(i)
		wantEx, wantSh := readers == 0 && !writer, !writer
		if ex[i] != wantEx || sh[i] != wantSh {
			r.fail("another process sees file %c lockable exclusive=%v shared=%v; here %d readers and writer=%v hold it",
				'a'+i, ex[i], sh[i], readers, writer)
		}
	}
}
