package flock

// Content under the lock: a file's content replaced atomically (WriteFile),
// and read, changed and replaced under a lock shared by every process that
// changes it (Update).
//
// A replaced file is a new inode each time, so a lock on the file itself
// would be on the old inode for whoever opened it before the replace: the
// lock Update takes is on a sidecar, NAME.lock, that is never replaced.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// NoReplace makes [WriteFile] fail with an error matching fs.ErrExist if
// the file exists, instead of replacing it; the check and the creation are
// one atomic step (a hard link, or on Windows a rename that does not
// replace), so of several writers racing to create a file exactly one
// succeeds. Open and Update ignore it.
func NoReplace() Option {
	return func(c *config) { c.noReplace = true }
}

// WriteFile writes data to the file name, replacing its content atomically:
// readers, and the file after a crash, see either the old content or the
// new, never a mix or an empty file. It writes a temporary file in the same
// directory, named ".NAME.flock-RANDOM.tmp", opened close-on-exec, flushes
// it to stable storage (fsync), renames it over name and flushes the
// directory, so that the rename too survives a crash. The temporary file is
// removed on every error and panic; a process killed in the middle leaves
// it behind (it is never the file's content; remove such files when no
// writer runs). WriteFile takes no lock: concurrent writers each replace the
// file whole, and the last rename wins; use [Update] to change a file based
// on its content.
//
// An existing file keeps its permission bits and, where the process may
// set them, its owner and group; a new file gets perm, less the umask, as
// with os.WriteFile. A final symbolic link is followed: the file it points
// to is replaced and the link stays (with [NoFollow], a link is refused).
// With [NoReplace] it fails with an error matching fs.ErrExist if the file
// exists; with [NoCreate], with one matching fs.ErrNotExist if it does not.
// The other options are about locks and do not apply. Errors are
// *fs.PathError naming name; on any error the file is unchanged.
//
// On Windows the rename is MoveFileEx with MOVEFILE_WRITE_THROUGH (there
// is no directory to flush), retried for up to about a second while
// another program has the file open without sharing deletion (as
// os.Open's handles do not). What a crash can do to a network file system
// is up to its server: atomic rename and fsync are what NFS promises.
func WriteFile(name string, data []byte, perm fs.FileMode, opts ...Option) error {
	c := config{perm: 0o666}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	target, info, err := resolveTarget("write", name, c.noFollow)
	if err != nil {
		return err
	}
	switch {
	case info != nil && c.noReplace:
		return &fs.PathError{Op: "write", Path: name, Err: fs.ErrExist}
	case info == nil && c.noCreate:
		return &fs.PathError{Op: "write", Path: name, Err: fs.ErrNotExist}
	}
	suffix, err := randomSuffix()
	if err != nil {
		return &fs.PathError{Op: "write", Path: name, Err: err}
	}
	tmp := tempName(target, "flock-"+suffix)
	if err := replaceWith("write", name, target, tmp, info, data, perm, c.noReplace); err != nil {
		return err
	}
	return nil
}

// Update changes the content of the file name under an exclusive lock that
// every process changing it through Update takes, so that changes based on
// the content are never lost: it locks name's sidecar lock file,
// NAME.lock, reads the file, calls fn with its content and replaces the
// file with what fn returns, atomically, as [WriteFile] does; then it
// unlocks. Readers need no lock: os.ReadFile of name always returns one
// whole version.
//
// fn gets nil if the file does not exist, and a non-nil slice (empty for an
// empty file) if it does; it must not keep old. If fn returns an error,
// Update writes nothing and returns that error as it is. If fn returns the
// content the file has (or, for a missing file, an empty slice), Update
// writes nothing: the file, its inode and its modification time stay.
//
// The lock is on the sidecar because the file is a new inode after each
// replace, and a lock on the old inode would exclude nobody. The sidecar
// is created beside the file's final path (a final symbolic link is
// followed, as WriteFile follows it, and the lock follows the file it
// points to) and never removed, unless [RemoveOnUnlock] is given; every
// writer of the file must use Update (or lock NAME.lock itself). The
// options of [Open] apply to the sidecar; [WithPerm] also sets the
// permission bits of a new file (default 0666, less the umask), and a
// sidecar created beside an existing file gets no more permission than the
// file has (the umask applies too), so that no one who cannot read the
// file can block its writers. [NoFollow] refuses a final symbolic link at
// name as well. Update uses one temporary file, ".NAME.flock-update.tmp",
// only while it holds the lock: one left behind by a writer that was killed
// is replaced by the next Update.
//
// If ctx ends before the lock is acquired, Update returns an error wrapping
// ctx.Err() and has done nothing. Other errors are *fs.PathError naming
// name; those of the lock name the sidecar too (such as "update F: open
// F.lock: permission denied").
func Update(ctx context.Context, name string, fn func(old []byte) ([]byte, error), opts ...Option) error {
	c := config{perm: 0o666}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	for {
		target, info, err := resolveTarget("update", name, c.noFollow)
		if err != nil {
			return err
		}
		lockOpts := opts
		if info != nil {
			lockOpts = append(opts[:len(opts):len(opts)], WithPerm(info.Mode().Perm()&c.perm))
		}
		m, err := Open(target+".lock", lockOpts...)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && !c.noCreate {
				err = underlying(err) // the directory is missing: the file's own error
			}
			return &fs.PathError{Op: "update", Path: name, Err: err}
		}
		done, err := updateLocked(ctx, m, name, target, fn, c.perm, c.noFollow)
		if cerr := m.Close(); err == nil && done {
			err = cerr
		}
		if done || err != nil {
			return err
		}
		// name now leads to another file than the one whose sidecar
		// was locked: lock that one's.
	}
}

// updateLocked does Update's work under m's lock, if target is still the
// file name leads to once the lock is held; it reports false if it is not.
func updateLocked(ctx context.Context, m *RWMutex, name, target string, fn func([]byte) ([]byte, error), perm fs.FileMode, noFollow bool) (bool, error) {
	if err := m.LockContext(ctx); err != nil {
		return false, &fs.PathError{Op: "update", Path: name, Err: err}
	}
	defer m.Unlock()
	now, info, err := resolveTarget("update", name, noFollow)
	if err != nil {
		return false, err
	}
	if now != target {
		return false, nil
	}
	var old []byte
	if info != nil {
		if old, err = os.ReadFile(target); err != nil {
			return false, &fs.PathError{Op: "update", Path: name, Err: underlying(err)}
		}
		if old == nil {
			old = []byte{}
		}
	}
	data, err := fn(old)
	if err != nil {
		return true, err
	}
	if bytes.Equal(data, old) && (old != nil || len(data) == 0) {
		return true, nil
	}
	return true, replaceWith("update", name, target, tempName(target, "flock-update"), info, data, perm, false)
}

// tempName returns the name of a temporary file for target's content.
func tempName(target, tag string) string {
	dir, base := filepath.Split(target)
	return filepath.Join(dir, "."+base+"."+tag+".tmp")
}

func randomSuffix() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// replaceWith writes data to a new file at tmp and moves it to target, as
// WriteFile documents; errors name name, and tmp is gone after any.
func replaceWith(op, name, target, tmp string, info fs.FileInfo, data []byte, perm fs.FileMode, noReplace bool) (err error) {
	fail := func(err error) error {
		return &fs.PathError{Op: op, Path: name, Err: underlying(err)}
	}
	f, err := createTemp(tmp, perm)
	if err != nil {
		return fail(err)
	}
	placed := false
	defer func() {
		// On every error and panic: the temporary file goes.
		if !placed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if info != nil {
		if err := matchFile(f, info); err != nil {
			return fail(err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if noReplace {
		err = placeNew(tmp, target)
	} else {
		err = replaceFile(tmp, target)
	}
	if err != nil {
		os.Remove(tmp)
		placed = true // closed and removed
		return fail(err)
	}
	placed = true
	if err := syncDir(filepath.Dir(target)); err != nil {
		return fail(err)
	}
	return nil
}

// createTemp creates the temporary file tmp for writing, close-on-exec,
// with perm less the umask; a file already there (left by a writer that was
// killed) is removed first, whatever it is.
func createTemp(tmp string, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm.Perm())
	if errors.Is(err, fs.ErrExist) {
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return nil, rerr
		}
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm.Perm())
	}
	return f, err
}

// maxLinks bounds the symbolic links resolveTarget follows, as the kernel
// bounds them (Linux: 40).
const maxLinks = 40

var (
	errIsDir        = errors.New("is a directory")
	errNotRegular   = errors.New("not a regular file")
	errTooManyLinks = errors.New("too many levels of symbolic links")
)

// resolveTarget returns the path of the file that name leads to after any
// final symbolic links, and its FileInfo, or nil if nothing is there (a
// missing file, or a dangling link: then the path the link names). With
// noFollow, a link is an error. It refuses anything but a regular file.
func resolveTarget(op, name string, noFollow bool) (string, fs.FileInfo, error) {
	fail := func(err error) (string, fs.FileInfo, error) {
		return "", nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	switch {
	case name == "":
		return fail(errEmptyPath)
	case strings.IndexByte(name, 0) >= 0:
		return fail(errNULPath)
	}
	p := name
	for hops := 0; ; hops++ {
		info, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return p, nil, nil
		case err != nil:
			return fail(underlying(err))
		case info.Mode()&fs.ModeSymlink != 0:
			if noFollow {
				return fail(errSymlink)
			}
			if hops == maxLinks {
				return fail(errTooManyLinks)
			}
			dest, err := os.Readlink(p)
			if err != nil {
				return fail(underlying(err))
			}
			if !filepath.IsAbs(dest) {
				dest = filepath.Join(filepath.Dir(p), dest)
			}
			p = dest
		case info.IsDir():
			return fail(errIsDir)
		case !info.Mode().IsRegular():
			return fail(errNotRegular)
		default:
			return p, info, nil
		}
	}
}

// underlying returns the cause inside an *fs.PathError or *os.LinkError,
// so that an error names one path, once.
func underlying(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}
