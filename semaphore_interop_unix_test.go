//go:build unix

package flock

// The Semaphore and Python portalocker's BoundedSemaphore on one set of
// slot files: Go and Python processes together never hold more than the
// capacity.

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-flock/flock/internal/testproc"
	"github.com/go-flock/flock/internal/witness"
)

// semInteropMain runs FLOCK_TEST_INTEROP="ITERATIONS OUTFILE SEED":
// acquires 1 or 2 units ITERATIONS times, holding them a few milliseconds,
// and writes one line "enter leave units" per hold to OUTFILE, the clock
// read after the grant and before the release. It says "ready" once the
// semaphore is open and starts on the next line of its input, so that all
// participants start together; it answers "done".
func semInteropMain() {
	var iterations int
	var out string
	var seed int64
	if _, err := fmt.Sscan(os.Getenv("FLOCK_TEST_INTEROP"), &iterations, &out, &seed); err != nil {
		fmt.Println("err FLOCK_TEST_INTEROP:", err)
		os.Exit(1)
	}
	s, err := openChildSemaphore()
	if err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	bufio.NewScanner(os.Stdin).Scan()
	r := rand.New(rand.NewSource(seed))
	var lines strings.Builder
	for i := 0; i < iterations; i++ {
		n := int64(1 + r.Intn(2))
		if err := s.Acquire(context.Background(), n); err != nil {
			fmt.Println("err", err)
			os.Exit(1)
		}
		enter := witness.Now()
		time.Sleep(time.Duration(1+r.Intn(4)) * time.Millisecond) // work while holding
		leave := witness.Now()
		s.Release(n)
		fmt.Fprintln(&lines, enter, leave, n)
		time.Sleep(time.Duration(r.Intn(3)) * time.Millisecond) // a pause, so that Python gets a turn
	}
	if err := os.WriteFile(out, []byte(lines.String()), 0o644); err != nil {
		fmt.Println("err", err)
		os.Exit(1)
	}
	s.Close()
	fmt.Println("done")
}

// pythonPortalocker returns the Debian python3 that has portalocker, or
// skips the test (fails it with FLOCK_REQUIRE_PEERS=1, as .ci/run sets) if
// there is none.
func pythonPortalocker(t testing.TB) string {
	t.Helper()
	const py = "/usr/bin/python3"
	out, err := exec.Command(py, "-c", "import portalocker; print(portalocker.__version__)").CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("%s with portalocker is needed (apt install python3-portalocker): %v: %s", py, err, strings.TrimSpace(string(out)))
		if os.Getenv("FLOCK_REQUIRE_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

// Two Go processes and two portalocker.BoundedSemaphore processes share
// one semaphore of capacity 3: their recorded holds never overlap by more
// than 3 units, and each side holds at least once.
func TestSemaphorePortalockerInterop(t *testing.T) {
	if backendName != "flock" {
		t.Skip("portalocker uses flock(2); the fcntl backend does not exclude it")
	}
	py := pythonPortalocker(t)
	const capacity, iterations = 3, 60
	dir, outDir := t.TempDir(), t.TempDir()
	var outs []string
	var gos []*child
	for i := 0; i < 2; i++ {
		out := filepath.Join(outDir, "go"+strconv.Itoa(i))
		outs = append(outs, out)
		gos = append(gos, startChildRole(t, "seminterop", dir, semEnv("interop", capacity),
			fmt.Sprintf("FLOCK_TEST_INTEROP=%d %s %d", iterations, out, time.Now().UnixNano()+int64(i))))
	}
	var pys []*testproc.Proc
	for i := 0; i < 2; i++ {
		out := filepath.Join(outDir, "py"+strconv.Itoa(i))
		outs = append(outs, out)
		p := testproc.Start(t, exec.Command(py, "-c", pythonHolder, dir, "interop", strconv.Itoa(capacity), strconv.Itoa(iterations), out, witness.PythonClock))
		p.Expect(t, "ready")
		pys = append(pys, p)
	}
	// Every participant is ready (Python's start-up takes a while): all
	// start at once, so that the two sides contend.
	for _, c := range gos {
		if err := c.Send("go"); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pys {
		if err := p.Send("go"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range gos {
		if got := c.Recv(); got != "done" {
			t.Fatalf("Go participant: %s", got)
		}
	}
	for _, p := range pys {
		if _, err := p.End(); err != nil {
			t.Fatalf("portalocker participant: %v", err)
		}
	}
	var all []witness.Interval
	var goHolds, pyHolds []witness.Interval
	for i, out := range outs {
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var iv []witness.Interval
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var v witness.Interval
			if _, err := fmt.Sscan(line, &v.Enter, &v.Leave, &v.Units); err != nil {
				t.Fatalf("%s: %q: %v", out, line, err)
			}
			iv = append(iv, v)
		}
		if len(iv) != iterations {
			t.Fatalf("participant %d held %d times, want %d", i, len(iv), iterations)
		}
		all = append(all, iv...)
		if i < 2 {
			goHolds = append(goHolds, iv...)
		} else {
			pyHolds = append(pyHolds, iv...)
		}
	}
	max, at := witness.MaxOverlap(all)
	t.Logf("%d holds; most units held at once %d", len(all), max)
	if max > capacity {
		t.Fatalf("%d units held at once (at %d ns), capacity %d", max, at, capacity)
	}
	// The sides must have held at the same time, or the run proves
	// nothing about their exclusion.
	mixed := 0
	for _, g := range goHolds {
		for _, p := range pyHolds {
			if g.Enter < p.Leave && p.Enter < g.Leave {
				mixed++
			}
		}
	}
	t.Logf("Go and portalocker holds overlapped %d times", mixed)
	if mixed == 0 {
		t.Fatalf("no Go hold overlapped a portalocker hold (most held at once %d): the run proves nothing", max)
	}
}
