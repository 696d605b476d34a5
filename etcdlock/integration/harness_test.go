package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-flock/flock/internal/testproc"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// serverKind is one etcd server implementation the suite runs against.
type serverKind struct {
	name string // "embed" or "etcd-bin"
	bin  string
}

var (
	servers  []serverKind
	setupErr error
	tmpRoot  string
)

func TestMain(m *testing.M) {
	if role := os.Getenv(testproc.RoleEnv); role != "" {
		os.Exit(runChild(role))
	}
	code := func() int {
		var err error
		tmpRoot, err = os.MkdirTemp("", "etcdlock-integration-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmpRoot)
		bin := os.Getenv("ETCDLOCK_SERVER")
		if bin == "" {
			bin = filepath.Join(tmpRoot, "etcdserver")
			start := time.Now()
			cmd := exec.Command("go", "build", "-o", bin, "./cmd/etcdserver")
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				setupErr = fmt.Errorf("building the embed server: %v", err)
				bin = ""
			} else {
				fmt.Fprintf(os.Stderr, "built embed etcd server in %v\n", time.Since(start).Round(time.Millisecond))
			}
		}
		if bin != "" {
			servers = append(servers, serverKind{"embed", bin})
		}
		if eb := os.Getenv("ETCD_BIN"); eb != "" {
			if _, err := exec.LookPath(eb); err != nil {
				setupErr = fmt.Errorf("ETCD_BIN=%s: %v", eb, err)
			} else {
				servers = append(servers, serverKind{"etcd-bin", eb})
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// eachServer runs f as a subtest against every server kind available. A
// missing server is a skip, or a failure when CI=true.
func eachServer(t *testing.T, f func(t *testing.T, k serverKind)) {
	t.Helper()
	if setupErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("etcd server unavailable: %v", setupErr)
		}
		t.Logf("etcd server unavailable: %v", setupErr)
	}
	if len(servers) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no etcd server to test against")
		}
		t.Skip("no etcd server to test against")
	}
	// The server kinds run in parallel (the tests mostly wait on
	// timeouts and child processes); goroutine leaks are checked once
	// both are done.
	leakCheck(t)
	for _, k := range servers {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			f(t, k)
		})
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// member is one etcd server process.
type member struct {
	kind      serverKind
	name      string
	clientURL string
	peerURL   string
	dir       string
	initial   string
	log       *os.File
	cmd       *exec.Cmd
	exited    chan struct{}
}

// cluster is a set of members started by the test and killed in cleanup.
type cluster struct {
	t       testing.TB
	members []*member
}

func startCluster(t testing.TB, k serverKind, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var initial []string
	for i := 0; i < n; i++ {
		m := &member{
			kind:      k,
			name:      fmt.Sprintf("m%d", i),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			dir:       filepath.Join(t.TempDir(), "data"),
		}
		initial = append(initial, m.name+"="+m.peerURL)
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
		lf, err := os.Create(filepath.Join(filepath.Dir(m.dir), "server.log"))
		if err != nil {
			t.Fatal(err)
		}
		m.log = lf
		c.start(m)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.kill()
			m.log.Close()
			if t.Failed() {
				b, _ := os.ReadFile(m.log.Name())
				if len(b) > 1500 {
					b = b[len(b)-1500:]
				}
				t.Logf("log of %s (%s), tail:\n%s", m.name, m.kind.name, b)
			}
		}
	})
	c.waitReady(30 * time.Second)
	return c
}

func (c *cluster) start(m *member) {
	c.t.Helper()
	args := []string{
		"--name", m.name, "--data-dir", m.dir,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", m.initial, "--initial-cluster-state", "new",
		"--initial-cluster-token", "etcdlock-test",
	}
	if m.kind.name == "etcd-bin" {
		args = append(args, "--log-level", "warn", "--logger", "zap")
	}
	cmd := exec.Command(m.kind.bin, args...)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", m.kind.bin, err)
	}
	m.cmd = cmd
	m.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(m.exited) }()
}

func (m *member) signal(sig syscall.Signal) {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Signal(sig)
	}
}

// kill SIGKILLs the member and waits for it to exit.
func (m *member) kill() {
	if m.cmd == nil {
		return
	}
	m.signal(syscall.SIGCONT)
	m.signal(syscall.SIGKILL)
	<-m.exited
	m.cmd = nil
}

// restart starts a killed member again on the same data directory.
func (c *cluster) restart(m *member) {
	c.t.Helper()
	c.start(m)
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL)
	}
	return eps
}

// waitReady waits until a linearizable read succeeds (a leader exists and
// serves), bounded by d. Each probe is bounded by its own timeout.
func (c *cluster) waitReady(d time.Duration) {
	c.t.Helper()
	cli := newClient(c.t, c.endpoints()...)
	defer cli.Close()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := cli.Get(ctx, "ready-probe")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd cluster not ready after %v: %v", d, err)
		}
	}
}

// leader returns the index of the leader member.
func (c *cluster) leader() int {
	c.t.Helper()
	for i, m := range c.members {
		if m.cmd == nil {
			continue
		}
		cli := newClient(c.t, m.clientURL)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, m.clientURL)
		cancel()
		cli.Close()
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	c.t.Fatal("no leader found")
	return -1
}

var quietLogger = zap.NewNop()

// newClient returns a client on endpoints, closed in cleanup.
func newClient(t testing.TB, eps ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 5 * time.Second,
		Logger:      quietLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// proxy is a TCP proxy that can black-hole traffic in both directions: bytes
// are read and dropped while the connections stay open, as a partition looks
// to both ends.
type proxy struct {
	l      net.Listener
	target string
	black  atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: strings.TrimPrefix(target, "http://")}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) URL() string { return "http://" + p.l.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.black.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (p *proxy) close() {
	p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// child is a re-executed test binary in a role, driven over pipes (see
// internal/testproc).
type child struct {
	*testproc.Proc
	t testing.TB
}

func startChild(t testing.TB, role string, env ...string) *child {
	t.Helper()
	c := &child{Proc: testproc.Start(t, testproc.Command(role, env...)), t: t}
	// Registered after Start's Stop, so run before it: a child the test
	// stopped (SIGSTOP) or left holding ends at once.
	t.Cleanup(func() {
		_ = c.Cmd.Process.Signal(syscall.SIGCONT)
		_ = c.Cmd.Process.Kill()
	})
	return c
}

func (c *child) send(format string, args ...any) {
	c.t.Helper()
	if err := c.Send(fmt.Sprintf(format, args...)); err != nil {
		c.t.Fatalf("write to child: %v", err)
	}
}

// expect returns the next line of the child's output starting with prefix,
// failing after d.
func (c *child) expect(prefix string, d time.Duration) string {
	c.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-c.Lines():
			if !ok {
				c.t.Fatalf("child exited while waiting for %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(l, prefix))
			}
			if strings.HasPrefix(l, "error") {
				c.t.Fatalf("child: %s", l)
			}
		case <-timer.C:
			c.t.Fatalf("no %q from child after %v", prefix, d)
		}
	}
}

// within runs f and fails the test if it does not return within d.
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s did not finish within %v", what, d)
	}
}
