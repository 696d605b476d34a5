package fuzz

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/go-flock/flock"
	"github.com/go-flock/flock/internal/testproc"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	testproc.RunRole(map[string]func(){"prober": proberMain})
	code := m.Run()
	stopProber()
	// While fuzzing, the fuzzing engine's own goroutines may still run.
	if f := flag.Lookup("test.fuzz"); code == 0 && (f == nil || f.Value.String() == "") {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// proberMain serves probes on stdin, one command a line, one answer a line:
//
//	files P1<TAB>P2...   close the handles on the previous files and open
//	                     handles on these (which must exist): "ok"
//	probe                for each file, whether an exclusive and a shared
//	                     lock could be taken right now: "EX EX ...",
//	                     E and X each 1 (yes) or 0 (held elsewhere)
//
// A probe takes and at once releases the lock, so the prober never holds
// a lock while the tested process runs. Errors are answered "err MESSAGE".
// EOF on stdin ends the process.
func proberMain() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	var hs []*flock.RWMutex
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), "\t")
		var reply string
		switch cmd {
		case "files":
			reply = "ok"
			for _, h := range hs {
				if err := h.Close(); err != nil {
					reply = "err " + err.Error()
				}
			}
			hs = hs[:0]
			for _, p := range strings.Split(arg, "\t") {
				h, err := flock.Open(p, flock.NoCreate())
				if err != nil {
					reply = "err " + err.Error()
					break
				}
				hs = append(hs, h)
			}
		case "probe":
			var b strings.Builder
			for i, h := range hs {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(probe(h.TryLock, h.Unlock))
				b.WriteString(probe(h.TryRLock, h.RUnlock))
			}
			reply = b.String()
		default:
			reply = "err unknown command " + cmd
		}
		fmt.Fprintln(out, reply)
		out.Flush()
	}
}

func probe(try func() (bool, error), release func()) string {
	ok, err := try()
	switch {
	case err != nil:
		return "(" + err.Error() + ")"
	case ok:
		release()
		return "1"
	}
	return "0"
}

// A prober is the client side: one helper process per test process (that
// is, per fuzzing worker), started on first use.
type prober struct{ *testproc.Proc }

var (
	proberMu  sync.Mutex
	theProber *prober
)

// getProber returns the process's prober, starting it if needed. Its
// exchanges are not safe for concurrent use; fuzz functions run one at a
// time in a process.
func getProber(t testing.TB) *prober {
	t.Helper()
	proberMu.Lock()
	defer proberMu.Unlock()
	if theProber != nil {
		return theProber
	}
	p, err := testproc.StartCommand(testproc.Command("prober"))
	if err != nil {
		t.Fatal(err)
	}
	theProber = &prober{p}
	return theProber
}

func stopProber() {
	proberMu.Lock()
	defer proberMu.Unlock()
	if p := theProber; p != nil {
		theProber = nil
		p.Stop()
	}
}

// call sends one command and returns the answer. A broken prober is
// stopped, to be restarted by the next getProber.
func (p *prober) call(t testing.TB, cmd string) string {
	t.Helper()
	reply, err := p.exchange(cmd)
	if err != nil {
		stopProber()
		t.Fatalf("prober %q: %v", cmd, err)
	}
	if strings.HasPrefix(reply, "err ") {
		t.Fatalf("prober %q: %s", cmd, reply)
	}
	return reply
}

func (p *prober) exchange(cmd string) (string, error) {
	if err := p.Send(cmd); err != nil {
		return "", err
	}
	return p.Line()
}

// setFiles makes the prober watch these files.
func (p *prober) setFiles(t testing.TB, paths []string) {
	t.Helper()
	p.call(t, "files\t"+strings.Join(paths, "\t"))
}

// probe returns, for each file, whether another process could take it
// exclusively and shared right now.
func (p *prober) probe(t testing.TB) (ex, sh []bool) {
	t.Helper()
	reply := p.call(t, "probe")
	for _, f := range strings.Fields(reply) {
		if len(f) != 2 || strings.Trim(f, "01") != "" {
			t.Fatalf("prober: bad probe answer %q", reply)
		}
		ex = append(ex, f[0] == '1')
		sh = append(sh, f[1] == '1')
	}
	return ex, sh
}
