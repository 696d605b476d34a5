package flock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tempDir returns a directory for a test's files (t.TempDir, except under
// Wine: see content_windows_test.go).
var tempDir = func(t *testing.T) string { return t.TempDir() }

// leftovers returns the temporary files of WriteFile and Update in dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tmp []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".tmp") {
			tmp = append(tmp, e.Name())
		}
	}
	return tmp
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteFile(t *testing.T) {
	dir := tempDir(t)
	p := filepath.Join(dir, "state")
	if err := WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, p); got != "two" {
		t.Fatalf("content = %q; want %q", got, "two")
	}
	if tmp := leftovers(t, dir); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}

	// Create-only: the existing file stays, a new one is created, and of
	// racing creators exactly one wins.
	if err := WriteFile(p, []byte("three"), 0o644, NoReplace()); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteFile NoReplace over an existing file = %v; want fs.ErrExist", err)
	}
	if got := mustRead(t, p); got != "two" {
		t.Fatalf("content after a refused NoReplace = %q", got)
	}
	q := filepath.Join(dir, "new")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = WriteFile(q, []byte{byte('a' + i)}, 0o644, NoReplace())
		}(i)
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("racing NoReplace: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d racing NoReplace writers succeeded; want 1", won)
	}
	if tmp := leftovers(t, dir); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if err := WriteFile(filepath.Join(dir, "absent"), nil, 0o644, NoCreate()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile NoCreate of a missing file = %v; want fs.ErrNotExist", err)
	}
}

// Bad input fails with an error naming the path, and changes nothing.
func TestWriteFileBadInput(t *testing.T) {
	dir := tempDir(t)
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		is   error
	}{
		{"directory", sub, nil},
		{"missing parent", filepath.Join(dir, "missing", "f"), fs.ErrNotExist},
		{"NUL byte", filepath.Join(dir, "a\x00b"), fs.ErrInvalid},
		{"empty", "", fs.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, op := range []struct {
				name string
				call func() error
			}{
				{"WriteFile", func() error { return WriteFile(tc.path, []byte("x"), 0o644) }},
				{"Update", func() error {
					return Update(context.Background(), tc.path, func([]byte) ([]byte, error) { return []byte("x"), nil })
				}},
			} {
				err := op.call()
				var pe *fs.PathError
				if !errors.As(err, &pe) || pe.Path != tc.path {
					t.Errorf("%s: %v; want an *fs.PathError naming %q", op.name, err, tc.path)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("%s: %v; want it to match %v", op.name, err, tc.is)
				}
				if n := strings.Count(err.Error(), tc.path+":"); tc.path != "" && n != 1 {
					t.Errorf("%s: %q names the path %d times", op.name, err, n)
				}
			}
			if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
				t.Errorf("the directory changed: %v", err)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("files left in %s: %v", dir, ents)
			}
		})
	}
}

// A final symbolic link is followed (the link stays, its file is replaced,
// and Update's lock is beside the file); NoFollow refuses it.
func TestContentSymlink(t *testing.T) {
	dir := tempDir(t)
	real, link := filepath.Join(dir, "real"), filepath.Join(dir, "link")
	if err := os.WriteFile(real, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", link); err != nil {
		t.Skipf("cannot make a symbolic link here: %v", err)
	}
	for _, op := range []struct {
		name string
		call func(opts ...Option) error
	}{
		{"WriteFile", func(opts ...Option) error { return WriteFile(link, []byte("new"), 0o644, opts...) }},
		{"Update", func(opts ...Option) error {
			return Update(context.Background(), link, func([]byte) ([]byte, error) { return []byte("newer"), nil }, opts...)
		}},
	} {
		err := op.call(NoFollow())
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != link {
			t.Errorf("%s with NoFollow on a link = %v; want an error naming %s", op.name, err, link)
		}
		before := mustRead(t, real)
		if err := op.call(); err != nil {
			t.Fatalf("%s through a link: %v", op.name, err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("%s replaced the link itself: %v", op.name, err)
		}
		if after := mustRead(t, real); after == before {
			t.Fatalf("%s through a link left the file it names unchanged", op.name)
		}
	}
	if _, err := os.Stat(real + ".lock"); err != nil {
		t.Errorf("Update's lock is not beside the file the link names: %v", err)
	}
	if _, err := os.Lstat(link + ".lock"); err == nil {
		t.Error("Update made a lock beside the link")
	}
}

// fn's error and an unchanged result write nothing; a missing file is nil
// to fn, an empty one a non-nil empty slice.
func TestUpdateWritesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(tempDir(t), "state")
	var got []byte
	seen := func(old []byte) ([]byte, error) { got = old; return old, nil }
	if err := Update(ctx, p, seen); err != nil {
		t.Fatal(err)
	}
	if got != nil {
		t.Fatalf("fn got %q for a missing file; want nil", got)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an empty result for a missing file created it: %v", err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Update(ctx, p, seen); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Update of an empty file: fn got %v (nil: %v), err %v; want a non-nil empty slice", got, got == nil, err)
	}
	if err := Update(ctx, p, func([]byte) ([]byte, error) { return []byte("v1"), nil }); err != nil {
		t.Fatal(err)
	}
	// Make any rewrite visible in the modification time, however coarse.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, past, past); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := Update(ctx, p, func([]byte) ([]byte, error) { return []byte("v2"), boom }); err != boom {
		t.Fatalf("Update with fn failing = %v; want fn's error as it is", err)
	}
	if err := Update(ctx, p, func(old []byte) ([]byte, error) { return append([]byte(nil), old...), nil }); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("file rewritten: inode same %v, mtime %v -> %v", os.SameFile(before, after), before.ModTime(), after.ModTime())
	}
	if got := mustRead(t, p); got != "v1" {
		t.Fatalf("content = %q; want v1", got)
	}
	if tmp := leftovers(t, filepath.Dir(p)); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

// An Update whose context ends while another holds the lock does nothing.
func TestUpdateCancelled(t *testing.T) {
	p := filepath.Join(tempDir(t), "state")
	m := mustOpen(t, p+".lock")
	m.Lock()
	defer m.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	called := false
	err := Update(ctx, p, func([]byte) ([]byte, error) { called = true; return []byte("x"), nil })
	if !errors.Is(err, context.DeadlineExceeded) || called {
		t.Fatalf("Update while the lock is held elsewhere = %v (fn called: %v); want DeadlineExceeded, fn not called", err, called)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("cancelled Update wrote the file: %v", err)
	}
}

// counterIncrement is an Update function adding one to {"n": N}.
func counterIncrement(old []byte) ([]byte, error) {
	var c struct{ N int }
	if len(old) > 0 {
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, err
		}
	}
	c.N++
	return json.Marshal(c)
}

func readCounter(t *testing.T, path string) int {
	t.Helper()
	var c struct{ N int }
	if err := json.Unmarshal(bytes.TrimSpace([]byte(mustRead(t, path))), &c); err != nil {
		t.Fatal(err)
	}
	return c.N
}

// Goroutines incrementing a counter through Update lose no increment.
func TestUpdateCounterGoroutines(t *testing.T) {
	p := filepath.Join(tempDir(t), "counter.json")
	const goroutines, each = 8, 25
	var wg sync.WaitGroup
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				if err := Update(context.Background(), p, counterIncrement); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := readCounter(t, p); n != goroutines*each {
		t.Fatalf("counter = %d; want %d", n, goroutines*each)
	}
}

// fn may change old in place and return it: that is a change, and written.
func TestUpdateFnModifiesOld(t *testing.T) {
	p := filepath.Join(tempDir(t), "conf")
	if err := os.WriteFile(p, []byte("debug=0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Update(context.Background(), p, func(old []byte) ([]byte, error) {
		old[len("debug=")] = '1'
		return old, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, p); got != "debug=1\n" {
		t.Fatalf("content = %q; want the change made in place", got)
	}
}

// A done context: fn is not called, nothing is written or created.
func TestUpdateContextDone(t *testing.T) {
	dir := tempDir(t)
	p := filepath.Join(dir, "state")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Update(ctx, p, func([]byte) ([]byte, error) {
		t.Error("fn called with a done context")
		return []byte("x"), nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a done context = %v; want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files made: %v", ents)
	}
}

// NoCreate is about the data file: a missing one fails, an existing one
// without a sidecar yet is updated.
func TestUpdateNoCreate(t *testing.T) {
	dir := tempDir(t)
	p := filepath.Join(dir, "state")
	add := func(old []byte) ([]byte, error) { return append(old, '+'), nil }
	if err := Update(context.Background(), p, add, NoCreate()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Update NoCreate of a missing file = %v; want fs.ErrNotExist", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files made: %v", ents)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Update(context.Background(), p, add, NoCreate()); err != nil {
		t.Fatalf("Update NoCreate of an existing file: %v", err)
	}
	if got := mustRead(t, p); got != "x+" {
		t.Fatalf("content = %q", got)
	}
}

// A name near the length limit: the temporary file's name is cut short,
// the write succeeds.
func TestContentLongName(t *testing.T) {
	dir := tempDir(t)
	p := filepath.Join(dir, strings.Repeat("n", 250))
	if err := WriteFile(p, []byte("a"), 0o644); err != nil {
		t.Fatalf("WriteFile of a 250-byte name: %v", err)
	}
	if err := Update(context.Background(), p, func([]byte) ([]byte, error) { return []byte("b"), nil }); err != nil {
		t.Fatalf("Update of a 250-byte name: %v", err)
	}
	if got := mustRead(t, p); got != "b" {
		t.Fatalf("content = %q", got)
	}
	if tmp := leftovers(t, dir); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}
