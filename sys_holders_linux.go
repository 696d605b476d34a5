//go:build linux

package flock

// Holders on Linux and Android, whichever backend: /proc/locks.

import (
	"io"
	"os"
	"strconv"
	"strings"

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

// readProcLocks reads /proc/locks to its end through a large buffer. The
// file is generated as it is read, and the kernel returns at most about a
// page of it per read(2) whatever the buffer; a table longer than that
// comes in several reads, between which other processes' locking can shift
// lines (parseProcLocks drops the repeats).
func readProcLocks() ([]byte, error) {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 0, 64<<10)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return nil, err
		}
	}
}

// procComm returns the command name of process pid, or "" if it cannot be
// read.
func procComm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}
