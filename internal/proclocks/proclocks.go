// Package proclocks reads Linux's /proc/locks, for the package's Holders
// and for the tests of every package that check the kernel's view of a
// lock.
package proclocks

import (
	"io"
	"os"
)

// Read returns the content of /proc/locks. The file is generated as it is
// read: each read(2) returns whole lines from one consistent walk of the
// kernel's lock list, up to about a page whatever the buffer, and the next
// read(2) starts again from a line number. So one read that returns well
// short of a page returned everything, as one snapshot; a longer table
// comes in several reads, between which other processes' locking can shift
// lines: some may be seen twice (callers drop repeats) or, rarely, missed.
func Read() ([]byte, error) {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 0, 64<<10)
	for reads := 0; ; reads++ {
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
		case reads == 0 && n < os.Getpagesize()-512: // no line is that long
			return buf, nil
		}
	}
}
