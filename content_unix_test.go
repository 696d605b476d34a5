//go:build unix

package flock

// WriteFile and Update on Unix: processes counting through Update, a
// writer killed 200 times, modes and owners, links resolved as the kernel
// does, a directory that cannot be flushed. One file (over the usual
// length) because its child roles and helpers serve all of them.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	childRoles["updater"] = updaterMain
	childRoles["rewriter"] = rewriterMain
	childRoles["writer"] = writerMain
}

// updaterMain increments the counter in the file FLOCK_TEST_PATH through
// Update, FLOCK_TEST_UPDATES ("GOROUTINES EACH") times, once told "go":
// it answers "ok" when all are done.
func updaterMain() {
	var goroutines, each int
	fmt.Sscan(os.Getenv("FLOCK_TEST_UPDATES"), &goroutines, &each)
	path := os.Getenv("FLOCK_TEST_PATH")
	fmt.Println("ready")
	var line string
	fmt.Scanln(&line)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				if err := Update(context.Background(), path, counterIncrement, childOptions()...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		fmt.Println("err", err)
	default:
		fmt.Println("ok")
	}
}

// N processes of M goroutines each increment one counter K times through
// Update: not one increment is lost, on either backend and with writer
// priority.
func TestUpdateCounterProcesses(t *testing.T) {
	const procs, goroutines, each = 3, 4, 15
	for _, opts := range []string{"", "prio"} {
		t.Run("opts="+opts, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "counter.json")
			var children []*child
			for i := 0; i < procs; i++ {
				children = append(children, startChildRole(t, "updater", p,
					fmt.Sprintf("FLOCK_TEST_UPDATES=%d %d", goroutines, each), "FLOCK_TEST_OPTS="+opts))
			}
			for _, c := range children {
				if err := c.Send("go"); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range children {
				if got := c.Recv(); got != "ok" {
					t.Fatalf("updater: %s", got)
				}
			}
			if n := readCounter(t, p); n != procs*goroutines*each {
				t.Fatalf("counter = %d; want %d", n, procs*goroutines*each)
			}
		})
	}
}

// versionContent returns version seq of a file of about size bytes: a line
// "seq checksum" and a body that depends on seq.
func versionContent(seq, size int) []byte {
	body := bytes.Repeat([]byte(strconv.Itoa(seq)+" "), size/(len(strconv.Itoa(seq))+1))
	sum := sha256.Sum256(body)
	return append([]byte(fmt.Sprintf("%d %s\n", seq, hex.EncodeToString(sum[:]))), body...)
}

// parseVersion checks a file written as versionContent and returns its seq.
func parseVersion(b []byte) (int, error) {
	head, body, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return 0, fmt.Errorf("no header line in %d bytes", len(b))
	}
	var seq int
	var sum string
	if _, err := fmt.Sscan(string(head), &seq, &sum); err != nil {
		return 0, fmt.Errorf("header %q: %v", head, err)
	}
	got := sha256.Sum256(body)
	if hex.EncodeToString(got[:]) != sum {
		return 0, fmt.Errorf("version %d: checksum mismatch over %d bytes (a mix of versions or a torn write)", seq, len(body))
	}
	return seq, nil
}

const rewriteSize = 300 << 10

// rewriterMain replaces the file FLOCK_TEST_PATH through Update, version
// after version, until it is killed; it says "running" after the first.
func rewriterMain() {
	path := os.Getenv("FLOCK_TEST_PATH")
	fmt.Println("ready")
	next := func(old []byte) ([]byte, error) {
		seq := 0
		if old != nil {
			var err error
			if seq, err = parseVersion(old); err != nil {
				return nil, err
			}
		}
		return versionContent(seq+1, rewriteSize), nil
	}
	for i := 0; ; i++ {
		if err := Update(context.Background(), path, next); err != nil {
			fmt.Println("err", err)
			os.Exit(1)
		}
		if i == 0 {
			fmt.Println("running")
		}
	}
}

// A writer killed at random moments never leaves the file torn, mixed or
// older than a version it had written, and the next Update leaves no
// temporary file behind.
func TestUpdateSurvivesKill(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 40
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	if err := WriteFile(p, versionContent(0, rewriteSize), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	last, torn := 0, 0
	for i := 0; i < kills; i++ {
		c := startChildRole(t, "rewriter", p)
		if got := c.Recv(); got != "running" {
			t.Fatalf("rewriter: %s", got)
		}
		// The moment of the kill is the scenario, not a synchronisation:
		// anywhere within a few rewrites.
		time.Sleep(time.Duration(rng.Intn(4000)) * time.Microsecond)
		c.Kill()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("kill %d: reading the file: %v", i, err)
		}
		seq, err := parseVersion(b)
		if err != nil {
			t.Fatalf("kill %d: %v", i, err)
		}
		if seq < last {
			t.Fatalf("kill %d: version %d after version %d was seen", i, seq, last)
		}
		if len(leftovers(t, dir)) > 0 {
			torn++ // killed between creating its temporary file and the rename
		}
		// The next successful Update takes over what the killed one left.
		if err := Update(context.Background(), p, func(old []byte) ([]byte, error) {
			s, err := parseVersion(old)
			return versionContent(s+1, rewriteSize), err
		}); err != nil {
			t.Fatalf("kill %d: Update after the kill: %v", i, err)
		}
		if tmp := leftovers(t, dir); len(tmp) != 0 {
			t.Fatalf("kill %d: temporary files left after the next Update: %v", i, tmp)
		}
		last = seq + 1
	}
	t.Logf("%d kills; %d of them left a temporary file for the next Update; last version %d", kills, torn, last)
	if torn == 0 {
		t.Log("no kill landed while a temporary file existed: the leftover path was not exercised this run")
	}
}

// A new file gets perm less the umask; a replaced one keeps its mode; an
// Update's sidecar beside an existing file is no more open than the file.
func TestContentModes(t *testing.T) {
	umask := unix.Umask(0o022)
	unix.Umask(umask)
	dir := t.TempDir()
	p := filepath.Join(dir, "new")
	if err := WriteFile(p, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o666&^fs.FileMode(umask) {
		t.Errorf("new file mode %v; want %v (0666 less the umask %03o)", fi.Mode().Perm(), 0o666&^fs.FileMode(umask), umask)
	}
	q := filepath.Join(dir, "private")
	if err := os.WriteFile(q, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(q, 0o640|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(q, []byte("new secret"), 0o666); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(q); fi.Mode()&(fs.ModePerm|fs.ModeSetgid) != 0o640|fs.ModeSetgid {
		t.Errorf("replaced file mode %v; want its old mode 0640 with setgid kept", fi.Mode())
	}
	if err := os.Chmod(q, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Update(context.Background(), q, func(old []byte) ([]byte, error) { return append(old, '!'), nil }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(q + ".lock"); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("sidecar of a 0600 file: %v, %v; want no access for group or others", fi.Mode(), err)
	}
	if fi, _ := os.Stat(q); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode after Update %v; want 0600", fi.Mode().Perm())
	}

	// A file everyone may only read: whoever may read it may lock its
	// sidecar, for writing (fcntl locks need a writable descriptor).
	r := filepath.Join(dir, "readonly")
	if err := os.WriteFile(r, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := Update(context.Background(), r, func(old []byte) ([]byte, error) { return append(old, 'x'), nil }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(r + ".lock"); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("sidecar of a 0444 file: %v, %v; want 0666, the umask not applied", fi.Mode(), err)
	}

	// Set-id bits of a new file are kept, as os.WriteFile keeps them.
	x := filepath.Join(dir, "tool")
	if err := WriteFile(x, []byte("#!/bin/sh\n"), 0o755|fs.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(x); fi.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("new file mode %v; want set-uid kept", fi.Mode())
	}

	// The sidecar of another user's file is that user's, so that the
	// owner can lock it after root did.
	if os.Geteuid() != 0 {
		t.Log("not root: the sidecar's owner is not tested (only root can give a file away)")
		return
	}
	o := filepath.Join(dir, "owned")
	if err := os.WriteFile(o, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(o, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := Update(context.Background(), o, func(old []byte) ([]byte, error) { return append(old, 'x'), nil }); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{o, o + ".lock"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
			t.Errorf("%s is owned by %d:%d; want 65534:65534, the file's owner", filepath.Base(f), st.Uid, st.Gid)
		}
	}
}

// Links are resolved as the kernel resolves them: a relative link's ".."
// is taken from where the link is, after the directory links before it.
func TestContentLinksResolvedLikeTheKernel(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{filepath.Join(a, "real"), b} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(a, "target")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// b/symdir -> a/real; a/real/link -> ../target, which is a/target.
	if err := os.Symlink(filepath.Join(a, "real"), filepath.Join(b, "symdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../target", filepath.Join(a, "real", "link")); err != nil {
		t.Fatal(err)
	}
	via := filepath.Join(b, "symdir", "link")
	if got := mustRead(t, via); got != "old" {
		t.Fatalf("the kernel reads %q through the link", got)
	}
	if err := WriteFile(via, []byte("written"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, target); got != "written" {
		t.Fatalf("WriteFile through the links: %s has %q", target, got)
	}
	if err := Update(context.Background(), via, func(old []byte) ([]byte, error) { return append(old, '+'), nil }); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, target); got != "written+" {
		t.Fatalf("Update through the links: %s has %q", target, got)
	}
	if _, err := os.Stat(target + ".lock"); err != nil {
		t.Errorf("the sidecar is not beside the file: %v", err)
	}
	if ents, _ := os.ReadDir(b); len(ents) != 1 {
		t.Errorf("files made in %s: %v", b, ents)
	}
	// Through a name with ".." after a link, too.
	dotdot := filepath.Join(b, "symdir") + "/../target"
	if err := WriteFile(dotdot, []byte("dotdot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, target); got != "dotdot" {
		t.Fatalf("WriteFile of %s: %s has %q", dotdot, target, got)
	}
}

// An Update that waited while a directory link on the path was switched
// reads and writes the file the path leads to once it holds the lock, under
// that file's lock.
func TestUpdateFollowsSwitchedDirectoryLink(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, v, "n"), []byte("10"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cur := filepath.Join(dir, "cur")
	if err := os.Symlink("v1", cur); err != nil {
		t.Fatal(err)
	}
	hold := mustOpen(t, filepath.Join(dir, "v1", "n.lock"))
	hold.Lock()
	incr := func(old []byte) ([]byte, error) {
		n, err := strconv.Atoi(string(old))
		return []byte(strconv.Itoa(n + 1)), err
	}
	done := make(chan error)
	go func() { done <- Update(context.Background(), filepath.Join(cur, "n"), incr) }()
	eventually(t, "the Update waits for v1's lock", func() bool { return hold.e.queued() == 1 })
	if err := os.Remove(cur); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("v2", cur); err != nil {
		t.Fatal(err)
	}
	// v2's lock is held too: the Update must wait for it, not change v2/n
	// under v1's lock.
	hold2 := mustOpen(t, filepath.Join(dir, "v2", "n.lock"))
	hold2.Lock()
	hold.Unlock()
	eventually(t, "the Update waits for v2's lock", func() bool { return hold2.e.queued() == 1 })
	hold2.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(dir, "v1", "n")); got != "10" {
		t.Errorf("v1/n = %q; want it untouched", got)
	}
	if got := mustRead(t, filepath.Join(dir, "v2", "n")); got != "11" {
		t.Errorf("v2/n = %q; want 11, read and written under v2's lock", got)
	}
}

// writerMain answers each line DATA on stdin with WriteFile(FLOCK_TEST_PATH,
// DATA) and then Update(FLOCK_TEST_PATH, append DATA): "ok" or "err OP
// MESSAGE" for each, on one line.
func writerMain() {
	path := os.Getenv("FLOCK_TEST_PATH")
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		data := in.Text()
		var answers []string
		for _, err := range []error{
			WriteFile(path, []byte(data), 0o666),
			Update(context.Background(), path, func(old []byte) ([]byte, error) { return append(old, data...), nil }),
		} {
			var pe *fs.PathError
			switch {
			case err == nil:
				answers = append(answers, "ok")
			case errors.As(err, &pe):
				answers = append(answers, "err "+pe.Op+" "+err.Error())
			default:
				answers = append(answers, "err ? "+err.Error())
			}
		}
		fmt.Println(strings.Join(answers, "; "))
	}
}

// A directory the writer may change but not open (mode 0333) cannot be
// flushed: the write fails before anything is replaced, not after.
func TestContentUnflushableDirectory(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "d")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(sub, "f")
	if err := os.WriteFile(p, []byte("old"), 0o666); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=writer", "FLOCK_TEST_PATH="+p, "GORACE=atexit_sleep_ms=0")
	if os.Geteuid() == 0 {
		// nobody cannot reach the test binary in the build cache: a copy.
		exe, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		cmd.Path = filepath.Join(dir, "child.test")
		if err := os.WriteFile(cmd.Path, exe, 0o755); err != nil {
			t.Fatal(err)
		}
		// Root opens any directory: write as nobody, who owns the files.
		const nobody = 65534
		for _, q := range []string{sub, p} {
			if err := os.Chown(q, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}
		for _, q := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(q, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	if err := os.Chmod(sub, 0o333); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(sub, 0o755)
	c := startCommand(t, cmd)
	got := c.Do("new")
	if strings.Contains(got, "ok") || strings.Contains(got, "err sync") {
		t.Fatalf("WriteFile; Update in a directory that cannot be opened: %s; want both to fail before replacing", got)
	}
	t.Log(got)
	os.Chmod(sub, 0o755)
	if got := mustRead(t, p); got != "old" {
		t.Fatalf("the file was changed by calls that failed: %q", got)
	}
}
