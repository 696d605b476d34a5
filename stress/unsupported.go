//go:build !unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

// The witness needs memory shared between processes (mmap), and the kills
// need SIGKILL semantics; both are written for Unix only.

var errUnsupported = errors.New("not supported on " + runtime.GOOS + " (it needs Unix shared memory)")

func run(cfg config, progress, log io.Writer) (*summary, error) {
	return nil, errUnsupported
}

func workerMain(string) int {
	fmt.Fprintln(os.Stderr, "stress:", errUnsupported)
	return 2
}
