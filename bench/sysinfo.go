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
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return -1
	}
	want := []byte(strconv.FormatUint(uint64(nr), 10) + " ")
	n := 0
	for _, t := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + t.Name() + "/syscall")
		if bytes.HasPrefix(b, want) {
			n++
		}
	}
	return n
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
