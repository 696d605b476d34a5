//go:build !unix

package main

import "io"

// Semaphore mode needs the same Unix shared memory as the other modes.

func runSemaphore(c config, stdout, stderr io.Writer) int {
	io.WriteString(stderr, "stress: "+errUnsupported.Error()+"\n")
	return 2
}

func semWorkerMain(string) int { return workerMain("") }
