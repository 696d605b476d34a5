//go:build unix

package flock

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	childRoles["updater"] = updaterMain
	childRoles["rewriter"] = rewriterMain
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
				if err := c.send("go"); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range children {
				if got := c.recv(); got != "ok" {
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
		if got := c.recv(); got != "running" {
			t.Fatalf("rewriter: %s", got)
		}
		// The moment of the kill is the scenario, not a synchronisation:
		// anywhere within a few rewrites.
		time.Sleep(time.Duration(rng.Intn(4000)) * time.Microsecond)
		c.kill()
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
}
