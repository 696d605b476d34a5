package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockOwners lists, from /proc/locks, the processes that hold or wait for
// a lock on the file at path (for diagnosing a hang).
func lockOwners(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return err.Error()
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	suffix := ":" + strconv.FormatUint(uint64(st.Ino), 10)
	var b strings.Builder
	in := bufio.NewScanner(f)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		waiting := len(fields) > 1 && fields[1] == "->"
		if waiting {
			fields = append(fields[:1], fields[2:]...)
		}
		// N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END
		if len(fields) < 6 || !strings.HasSuffix(fields[5], suffix) {
			continue
		}
		what := "holds"
		if waiting {
			what = "waits for"
		}
		fmt.Fprintf(&b, " [pid %s %s %s %s]", fields[4], what, fields[1], fields[3])
	}
	if b.Len() == 0 {
		return " [no lock on the file in /proc/locks]"
	}
	return b.String()
}
