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
	"hash/fnv"
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
// it behind (it is never the file's content): remove such files when no
// writer runs. WriteFile takes no lock: concurrent writers each replace the
// file whole, and the last rename wins; use [Update] to change a file based
// on its content.
//
// An existing file keeps its permission bits (set-id and sticky bits
// included) and, where the process may set them, its owner and group; a
// new file gets perm, less the umask, as with os.WriteFile. Symbolic links
// are followed, the final one included, as the kernel resolves them: the
// file they lead to is replaced and the links stay (with [NoFollow], a
// final link is refused). With [NoReplace] it fails with an error matching
// fs.ErrExist if the file exists; with [NoCreate], with one matching
// fs.ErrNotExist if it does not. The other options are about locks and do
// not apply. Errors are *fs.PathError naming name. On any error the file
// is unchanged, except one whose Op is "sync": the file was replaced, but
// the flush of its directory failed, so the new content may not survive a
// crash.
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
// empty file) if it does; it may modify old and return it, but must not
// keep it. If fn returns an error, Update writes nothing and returns that
// error as it is. If fn returns the content the file had (or, for a missing
// file, an empty slice), Update writes nothing: the file, its inode and its
// modification time stay. If fn panics, the lock is released and the panic
// goes on.
//
// The lock is on the sidecar because the file is a new inode after each
// replace, and a lock on the old inode would exclude nobody. Symbolic links
// in name are resolved, the final one included (as WriteFile resolves
// them), and the sidecar is beside the file they lead to, so that every
// path to one file takes one lock; once the lock is held, Update resolves
// name again, and if it now leads elsewhere, moves to that file's lock. The
// sidecar is never removed, unless [RemoveOnUnlock] is given; every writer
// of the file must use Update (or lock NAME.lock itself). The options of
// [Open] apply to the sidecar. A sidecar created beside an existing file
// gets the file's owner and group where the process may give them, and
// read-write permission for whoever may read the file (locking needs write
// access on fcntl platforms), no more, so that nobody who cannot read the
// file can block its writers; [WithPerm] sets the permission bits of a new
// file and of its sidecar (default 0666, less the umask). [NoFollow]
// refuses a final symbolic link at name; [NoCreate] makes Update fail with
// an error matching fs.ErrNotExist if the file does not exist. Update uses
// one temporary file, ".NAME.flock-update.tmp", only while it holds the
// lock: one left behind by a writer that was killed is replaced by the
// next Update.
//
// If ctx is done before the lock is acquired, Update returns an error
// wrapping ctx.Err(), does not call fn and writes nothing (the sidecar may
// have been created). Other errors are *fs.PathError naming name; those of
// the lock name the sidecar too (such as "update F: open F.lock:
// permission denied"). An error whose Op is "sync" means that the file was
// replaced but the flush of its directory failed: the new content is
// there, but may not survive a crash.
func Update(ctx context.Context, name string, fn func(old []byte) ([]byte, error), opts ...Option) error {
	c := config{perm: 0o666}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return &fs.PathError{Op: "update", Path: name, Err: err}
		}
		target, info, err := resolveTarget("update", name, c.noFollow)
		if err != nil {
			return err
		}
		if info == nil && c.noCreate {
			return &fs.PathError{Op: "update", Path: name, Err: fs.ErrNotExist}
		}
		done, err := updateOnce(ctx, name, target, info, fn, &c, opts)
		if done || err != nil {
			return err
		}
		// name now leads to another file than the one whose sidecar
		// was locked: lock that one's.
	}
}

// updateOnce does Update's work with target's sidecar locked; it reports
// false, with nothing done, if name no longer leads to target once the
// lock is held.
func updateOnce(ctx context.Context, name, target string, info fs.FileInfo, fn func([]byte) ([]byte, error), c *config, opts []Option) (done bool, err error) {
	m, err := openUpdateLock(target+".lock", info, opts)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = underlying(err) // the directory is missing: the file's own error
		}
		return false, &fs.PathError{Op: "update", Path: name, Err: err}
	}
	defer func() {
		// Also when fn panics: the lock is released by then (deferred
		// below), and the handle goes too.
		if cerr := m.Close(); err == nil && done {
			err = cerr
		}
	}()
	if err := m.LockContext(ctx); err != nil {
		return false, &fs.PathError{Op: "update", Path: name, Err: err}
	}
	defer m.Unlock()
	now, info, err := resolveTarget("update", name, c.noFollow)
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
	// fn may change old in place: compare its result with a copy.
	orig := append([]byte(nil), old...)
	data, err := fn(old)
	if err != nil {
		return true, err
	}
	if bytes.Equal(data, orig) && (info != nil || len(data) == 0) {
		return true, nil
	}
	return true, replaceWith("update", name, target, tempName(target, "flock-update"), info, data, c.perm, false)
}

// openUpdateLock opens the sidecar lock file path of the data file whose
// FileInfo is like (nil if it does not exist), creating it, if like is not
// nil, with like's owner and group and read-write permission for every
// class that may read like (locking needs write access on fcntl platforms).
func openUpdateLock(path string, like fs.FileInfo, opts []Option) (*RWMutex, error) {
	// The data file's NoCreate is not the sidecar's: it is made as needed.
	opts = append(opts[:len(opts):len(opts)], func(c *config) { c.noCreate = false })
	if like == nil {
		return Open(path, opts...)
	}
	r := like.Mode().Perm() & 0o444
	return openSidecar(path, like, r|r>>1, opts...)
}

// tempName returns the name of a temporary file for target's content,
// in target's directory: ".BASE.TAG.tmp", with BASE cut short (and a hash
// of the whole added) where the name would pass the usual limit of 255
// bytes.
func tempName(target, tag string) string {
	dir, base := splitPath(target)
	if len(base)+len(tag)+6 > 255 {
		h := fnv.New32a()
		h.Write([]byte(base))
		base = base[:128] + "-" + hex.EncodeToString(h.Sum(nil))
	}
	return dir + "." + base + "." + tag + ".tmp"
}

// splitPath splits path after its last separator, without cleaning it
// (filepath.Dir would resolve ".." textually, which is wrong after a
// symbolic link): dir keeps its trailing separator, or is empty.
func splitPath(path string) (dir, base string) {
	i := len(path) - 1
	for i >= len(filepath.VolumeName(path)) && !os.IsPathSeparator(path[i]) {
		i--
	}
	return path[:i+1], path[i+1:]
}

func randomSuffix() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// replaceWith writes data to a new file at tmp and moves it to target, as
// WriteFile documents; errors name name, and tmp is gone after any. The
// directory is opened before the move, so that every error but the flush's
// comes while target is unchanged.
func replaceWith(op, name, target, tmp string, info fs.FileInfo, data []byte, perm fs.FileMode, noReplace bool) (err error) {
	fail := func(err error) error {
		return &fs.PathError{Op: op, Path: name, Err: underlying(err)}
	}
	dir, _ := splitPath(target)
	if dir == "" {
		dir = "."
	}
	flush, err := openDir(dir)
	if err != nil {
		return fail(err)
	}
	defer flush.close()
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
	if err := flush.sync(); err != nil {
		return &fs.PathError{Op: "sync", Path: name, Err: underlying(err)}
	}
	return nil
}

// createTemp creates the temporary file tmp for writing, close-on-exec,
// with perm (set-id and sticky bits included) less the umask; a file already there (left by a writer that was
// killed) is removed first, whatever it is.
func createTemp(tmp string, perm fs.FileMode) (*os.File, error) {
	perm &= fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return nil, rerr
		}
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
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

// resolveTarget returns the path of the file that name leads to, with
// every symbolic link resolved (the directories' and the final element's)
// and its FileInfo, or nil if nothing is there (a missing file, or a
// dangling link: then the path the link names). Links are resolved as the
// kernel resolves them: a relative link from the directory it is in, ".."
// after the links before it. With noFollow, a final link is an error. It
// refuses anything but a regular file.
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
		dir, base := splitPath(p)
		if dir == "" {
			dir = "."
		}
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return fail(underlying(err))
		}
		if base == "" || base == "." || base == ".." {
			return fail(errIsDir)
		}
		p = filepath.Join(real, base)
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
				dest = real + string(filepath.Separator) + dest
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
