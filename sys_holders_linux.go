//go:build linux

package flock

// Holders on Linux and Android, whichever backend: /proc/locks.

import (
	"os"
	"strconv"
	"strings"

	"github.com/go-flock/flock/internal/proclocks"
	"golang.org/x/sys/unix"
)

// sysHolders lists the holders /proc/locks shows for the file id (device
// and inode from fstat of the lock file when it was opened); /proc/locks
// lists the process's own locks too, so own is not needed.
func sysHolders(fd fd, id fileID, own lockMode) ([]Holder, error) {
	data, err := readProcLocks()
	if err != nil {
		return nil, err
	}
	return parseProcLocks(data, unix.Major(id.dev), unix.Minor(id.dev), id.ino), nil
}

// holderCommand returns the command name of the holder pid, "" if it has
// none that can be read (pid 0 or -1 included).
func holderCommand(pid int) string {
	if pid <= 0 {
		return ""
	}
	return procComm(pid)
}

// readProcLocks reads /proc/locks (see proclocks.Read; parseProcLocks
// drops the lines a multi-read pass shows twice).
func readProcLocks() ([]byte, error) { return proclocks.Read() }

// procComm returns the command name of process pid, or "" if it cannot be
// read.
func procComm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}
