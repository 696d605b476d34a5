//go:build linux

package main

// What the machine is, and what a process is doing, read from /proc.

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-flock/flock/internal/testproc"
	"golang.org/x/sys/unix"
)

type machine struct {
	cpu, kernel, goVersion, fs, gofrs string
	cores, procs                      int
}

func describeMachine(dir string) machine {
	m := machine{
		cpu:       "unknown",
		cores:     runtime.NumCPU(),
		procs:     runtime.GOMAXPROCS(0),
		goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		fs:        fsType(dir),
		gofrs:     "?",
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.kernel = "Linux " + unix.ByteSliceToString(u.Release[:])
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/gofrs/flock" {
				m.gofrs = d.Version
			}
		}
	}
	return m
}

func fsType(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return "?"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// procStatus returns a field of /proc/self/status as a number (kB for
// memory fields).
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return -1
}

func threads() int64 { return procStatus("Threads") }
func rssKiB() int64  { return procStatus("VmRSS") }

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// threadsInSyscall counts this process's threads that are in system call
// nr now (blocked in it, for a blocking call).
func threadsInSyscall(nr uintptr) int {
	in, _, err := testproc.ThreadsIn(0, nr)
	if err != nil {
		return -1
	}
	return in
}

func threadsInFlock() int { return threadsInSyscall(unix.SYS_FLOCK) }

// parkedGoroutines counts goroutines whose stack mentions fn and that are
// blocked (parked in the scheduler or in a system call).
func parkedGoroutines(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if !bytes.Contains(g, []byte(fn)) {
			continue
		}
		hdr, _, _ := bytes.Cut(g, []byte("\n"))
		i := bytes.IndexByte(hdr, '[')
		if i < 0 {
			continue
		}
		state := hdr[i+1:]
		if j := bytes.IndexAny(state, ",]"); j >= 0 {
			state = state[:j]
		}
		switch string(state) {
		case "running", "runnable":
		default:
			count++
		}
	}
	return count
}

// waitFor polls cond until it holds. It is how the driver waits for a
// state it cannot be told about (a thread blocked in the kernel), never a
// fixed sleep.
func waitFor(what string, cond func() bool) error {
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Microsecond)
	}
	return nil
}

// cpuTime is the process's user+system CPU time and voluntary context
// switches so far.
func cpuTime() (time.Duration, int64) {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return -1, -1
	}
	tv := func(t unix.Timeval) time.Duration {
		return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
	}
	return tv(ru.Utime) + tv(ru.Stime), ru.Nvcsw
}

// A loadWindow measures, over a span of wall time, how much CPU the rest
// of the machine used: all CPUs' busy time (/proc/stat) less this process's
// and its reaped children's (getrusage). A ratio measured while other work
// competes for the 2 cores is not the same figure as one measured with
// both cores free, so every scenario reports which it got.
type loadWindow struct {
	wall  time.Time
	busy  time.Duration // all CPUs' busy time so far
	own   time.Duration // ours and our children's so far
	valid bool
}

// cleanLoad is the most other work, in cores, a run may see and still
// count as clean.
const cleanLoad = 0.2

func startLoad() loadWindow {
	busy, ok := machineBusy()
	return loadWindow{wall: time.Now(), busy: busy, own: ownCPU(), valid: ok}
}

// otherCores returns the average number of cores that other work kept
// busy since w started, or -1 if it cannot tell.
func (w loadWindow) otherCores() float64 {
	busy, ok := machineBusy()
	if !ok || !w.valid {
		return -1
	}
	wall := time.Since(w.wall)
	other := (busy - w.busy) - (ownCPU() - w.own)
	if other < 0 {
		other = 0 // tick granularity, children not reaped yet
	}
	return float64(other) / float64(wall)
}

// regime names what otherCores measured.
func regime(other float64) string {
	switch {
	case other < 0:
		return "load unknown"
	case other < cleanLoad:
		return fmt.Sprintf("clean (other work %.2f cores)", other)
	}
	return fmt.Sprintf("LOADED (other work %.2f cores)", other)
}

// machineBusy is the busy time of all CPUs since boot: user, nice, system,
// irq, softirq and steal from /proc/stat's first line.
func machineBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, true
}

// clockTicks is USER_HZ, 100 on every Linux the bench runs on.
const clockTicks = 100

func ownCPU() time.Duration {
	var total time.Duration
	for _, who := range []int{unix.RUSAGE_SELF, unix.RUSAGE_CHILDREN} {
		var ru unix.Rusage
		if unix.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}
