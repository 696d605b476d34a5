//go:build unix

package fuzz

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-flock/flock"
	"golang.org/x/sys/unix"
)

// Option bits of FuzzOpen's opts argument.
const (
	optNoFollow = 1 << iota
	optNoCreate
	optSyncOnUnlock
	optWithPerm
)

// FuzzOpen opens arbitrary paths, relative to a sandbox directory (the
// working directory during the call), with arbitrary options:
//
//   - it never panics;
//   - it creates nothing when it fails, nothing with NoCreate, and at most
//     the one file the path names otherwise, inside the sandbox, with no
//     permission bits beyond those asked for;
//   - every failure is an *fs.PathError naming the path as given;
//   - an existing regular file or directory always opens (unless NoFollow
//     and the path names a symbolic link), a FIFO never does; a missing
//     file with NoCreate fails with fs.ErrNotExist; empty paths and paths
//     with NUL bytes fail with fs.ErrInvalid;
//   - an opened handle reports the path, has a File, can be locked and
//     closed, once.
//
// Paths that would resolve outside the sandbox (through "..", absolute
// paths or symbolic links) are skipped, so that nothing outside it is ever
// created or locked.
func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, path string, opts uint8, perm uint16) {
		sb := newSandbox(t)
		noFollow := opts&optNoFollow != 0
		noCreate := opts&optNoCreate != 0

		var where resolution
		if path != "" && strings.IndexByte(path, 0) < 0 {
			where = sb.resolve(path, !noFollow)
			if where.escapes {
				t.Skip("resolves outside the sandbox")
			}
		}

		var options []flock.Option
		wantPerm := fs.FileMode(0o666)
		if noFollow {
			options = append(options, flock.NoFollow())
		}
		if noCreate {
			options = append(options, flock.NoCreate())
		}
		if opts&optSyncOnUnlock != 0 {
			options = append(options, flock.SyncOnUnlock())
		}
		if opts&optWithPerm != 0 {
			wantPerm = fs.FileMode(perm) & fs.ModePerm
			options = append(options, flock.WithPerm(fs.FileMode(perm)))
		}

		before := sb.snapshot()
		var pre os.FileInfo
		var preErr error
		if noFollow {
			pre, preErr = os.Lstat(sb.abs(path))
		} else {
			pre, preErr = os.Stat(sb.abs(path))
		}
		isSymlink := false
		if li, err := os.Lstat(sb.abs(path)); err == nil {
			isSymlink = li.Mode()&fs.ModeSymlink != 0
		}

		m, err := sb.open(path, options)
		after := sb.snapshot()
		created := diff(t, before, after)

		if err != nil {
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != path {
				t.Fatalf("Open(%q) error %q (%T) is not an *fs.PathError naming the path", path, err, err)
			}
			if len(created) > 0 {
				t.Fatalf("Open(%q) failed (%v) yet created %q", path, err, created)
			}
			switch {
			case path == "" || strings.IndexByte(path, 0) >= 0:
				if !errors.Is(err, fs.ErrInvalid) {
					t.Fatalf("Open(%q) = %v; want fs.ErrInvalid", path, err)
				}
			case preErr == nil && (pre.Mode().IsRegular() || pre.IsDir()) && !(noFollow && isSymlink):
				t.Fatalf("Open(%q) of an existing %v failed: %v", path, pre.Mode().Type(), err)
			case noCreate && where.missing && !errors.Is(err, fs.ErrNotExist):
				t.Fatalf("Open(%q, NoCreate) of a missing file = %v; want fs.ErrNotExist", path, err)
			}
			return
		}

		if m.Path() != path {
			t.Errorf("Open(%q).Path() = %q", path, m.Path())
		}
		switch {
		case path == "" || strings.IndexByte(path, 0) >= 0:
			t.Errorf("Open(%q) succeeded", path)
		case noCreate && preErr != nil:
			t.Errorf("Open(%q, NoCreate) succeeded on a path that did not exist: %v", path, preErr)
		case noFollow && isSymlink:
			t.Errorf("Open(%q, NoFollow) succeeded on a symbolic link", path)
		case preErr == nil && !pre.Mode().IsRegular() && !pre.IsDir():
			t.Errorf("Open(%q) succeeded on a %v", path, pre.Mode().Type())
		}
		switch {
		case len(created) > 1:
			t.Errorf("Open(%q) created several files: %q", path, created)
		case len(created) == 1:
			if noCreate || preErr == nil {
				t.Errorf("Open(%q) created %q (NoCreate %v, existed: %v)", path, created[0], noCreate, preErr == nil)
			}
			if created[0] != where.final {
				t.Errorf("Open(%q) created %q; want %q", path, created[0], where.final)
			}
			if fi, err := os.Lstat(created[0]); err != nil {
				t.Error(err)
			} else if !fi.Mode().IsRegular() || fi.Mode().Perm()&^wantPerm != 0 {
				t.Errorf("Open(%q) created %q as %v; want a regular file within %v", path, created[0], fi.Mode(), wantPerm)
			}
		}

		f := m.File()
		if f == nil {
			t.Fatalf("Open(%q).File() = nil", path)
		}
		if fi, err := f.Stat(); err != nil {
			t.Error(err)
		} else if !fi.Mode().IsRegular() && !fi.IsDir() {
			t.Errorf("Open(%q) opened a %v", path, fi.Mode().Type())
		}
		ok, err := m.TryLock()
		switch {
		case fcntlBackend && !m.Writable() && errors.Is(err, fs.ErrPermission):
			// As documented: fcntl locks a file open for reading only
			// (a directory, for one) in shared mode only.
			if ok, err := m.TryRLock(); !ok || err != nil {
				t.Errorf("TryRLock on a fresh read-only handle = %v, %v", ok, err)
			} else {
				m.RUnlock()
			}
		case !ok || err != nil:
			t.Errorf("TryLock on a fresh handle = %v, %v", ok, err)
		default:
			m.Unlock()
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
		if err := m.Close(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("second Close = %v; want os.ErrClosed", err)
		}
		if m.File() != nil {
			t.Errorf("File() after Close is not nil")
		}
	})
}

// A sandbox is a fresh directory tree for one FuzzOpen input:
//
//	top/                 t.TempDir(), snapshotted
//	  outside            a file outside root
//	  root/              nothing is created or opened outside this
//	    box/             the working directory during Open
//	      a              a regular file
//	      sub/f          a directory and a file in it
//	      up -> ..       symbolic links: to root,
//	      self -> .      to box itself,
//	      afile -> a     to a file,
//	      dirlink -> sub to a directory,
//	      abs -> /…/a    by absolute path,
//	      dangling -> fresh    to nothing (Open creates box/fresh),
//	      loop -> loop   to itself
//	      fifo           a named pipe
type sandbox struct {
	t    *testing.T
	top  string
	root string
	box  string
}

func newSandbox(t *testing.T) *sandbox {
	top := t.TempDir()
	if p, err := filepath.EvalSymlinks(top); err == nil {
		top = p // $TMPDIR may itself be reached through a link
	}
	sb := &sandbox{t: t, top: top, root: filepath.Join(top, "root")}
	sb.box = filepath.Join(sb.root, "box")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(top, "outside"), nil, 0o666))
	must(os.MkdirAll(filepath.Join(sb.box, "sub"), 0o777))
	must(os.WriteFile(filepath.Join(sb.box, "a"), []byte("content"), 0o666))
	must(os.WriteFile(filepath.Join(sb.box, "sub", "f"), nil, 0o666))
	for link, target := range map[string]string{
		"up":       "..",
		"self":     ".",
		"afile":    "a",
		"dirlink":  "sub",
		"abs":      filepath.Join(sb.box, "a"),
		"dangling": "fresh",
		"loop":     "loop",
	} {
		must(os.Symlink(target, filepath.Join(sb.box, link)))
	}
	must(unix.Mkfifo(filepath.Join(sb.box, "fifo"), 0o666))
	return sb
}

// abs returns path as seen from the box. (Go's os functions reject NUL
// bytes themselves.)
func (sb *sandbox) abs(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return sb.box + "/" + path
}

// open calls flock.Open with the box as the working directory.
func (sb *sandbox) open(path string, options []flock.Option) (*flock.RWMutex, error) {
	wd, err := os.Getwd()
	if err != nil {
		sb.t.Fatal(err)
	}
	if err := os.Chdir(sb.box); err != nil {
		sb.t.Fatal(err)
	}
	defer func() {
		if err := os.Chdir(wd); err != nil {
			panic(err) // the rest of the tests would run elsewhere
		}
	}()
	return flock.Open(path, options...)
}

// A resolution is where a path leads, the way the kernel resolves it.
type resolution struct {
	final   string // the file the path names, or "" if resolution fails
	missing bool   // final does not exist but its directory does
	escapes bool   // final, or a link on the way, is outside the root
}

// resolve follows path from the box component by component, as the kernel
// does, following symbolic links (the final one only if followFinal).
// Lookups outside the root are not made: such paths escape.
func (sb *sandbox) resolve(path string, followFinal bool) resolution {
	cur := sb.box
	if strings.HasPrefix(path, "/") {
		cur = "/"
	}
	inRoot := func(p string) bool {
		return p == sb.root || strings.HasPrefix(p, sb.root+"/")
	}
	// Directories above the root may be passed through (an absolute
	// link does), never end up in.
	onTheWay := func(p string) bool {
		return inRoot(p) || p == "/" || strings.HasPrefix(sb.root, p+"/")
	}
	queue := strings.Split(path, "/")
	for hops := 0; len(queue) > 0; {
		c := queue[0]
		queue = queue[1:]
		last := len(queue) == 0
		switch c {
		case "", ".":
		case "..":
			cur = filepath.Dir(cur)
		default:
			next := filepath.Join(cur, c)
			if !onTheWay(next) {
				return resolution{escapes: true}
			}
			fi, err := os.Lstat(next)
			switch {
			case err != nil && last && errors.Is(err, fs.ErrNotExist):
				return resolution{final: next, missing: true}
			case err != nil:
				return resolution{} // the kernel fails here too
			case fi.Mode()&fs.ModeSymlink != 0 && (!last || followFinal):
				if hops++; hops > 40 {
					return resolution{} // ELOOP
				}
				target, err := os.Readlink(next)
				if err != nil {
					return resolution{}
				}
				if strings.HasPrefix(target, "/") {
					cur = "/"
				}
				queue = append(strings.Split(target, "/"), queue...)
				continue
			case last:
				return resolution{final: next}
			case !fi.IsDir():
				return resolution{} // ENOTDIR
			default:
				cur = next
			}
			continue
		}
		if !last {
			continue
		}
		// The path ends in "", "." or "..": it names a directory.
		if !inRoot(cur) {
			return resolution{escapes: true}
		}
		return resolution{final: cur}
	}
	if !inRoot(cur) {
		return resolution{escapes: true}
	}
	return resolution{final: cur}
}

// snapshot lists every name under top, with its type.
func (sb *sandbox) snapshot() map[string]fs.FileMode {
	m := make(map[string]fs.FileMode)
	err := filepath.WalkDir(sb.top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		m[p] = d.Type()
		return nil
	})
	if err != nil {
		sb.t.Fatal(err)
	}
	return m
}

// diff returns the names created between two snapshots; names must never
// disappear or change type.
func diff(t *testing.T, before, after map[string]fs.FileMode) []string {
	var created []string
	for p, mode := range after {
		if old, ok := before[p]; !ok {
			created = append(created, p)
		} else if old != mode {
			t.Errorf("%s changed type from %v to %v", p, old, mode)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s disappeared", p)
		}
	}
	sort.Strings(created)
	return created
}
