// Command gofrsdriver locks a file with github.com/gofrs/flock on command,
// so that other programs' tests can measure whether its locks and theirs
// exclude each other (the Windows tests of github.com/go-flock/flock run it
// under Wine: see .ci/windows.sh and interop_windows_test.go there).
//
// Usage: gofrsdriver PATH. It prints "ready", then reads one command a line
// on stdin and answers one line each on stdout:
//
//	lock, rlock          block until acquired, then "ok"
//	trylock, tryrlock    "ok" or "held"
//	unlock               "ok" (gofrs/flock has one Unlock for both modes)
//
// Errors are answered "err MESSAGE"; end of input exits.
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/go-flock/flock/internal/testproc"
	"github.com/gofrs/flock"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gofrsdriver PATH")
		os.Exit(2)
	}
	l := flock.New(os.Args[1])
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Println(do(l, in.Text()))
	}
	l.Unlock()
}

func do(l *flock.Flock, cmd string) string {
	tried := testproc.TryAnswer
	var err error
	switch cmd {
	case "lock":
		err = l.Lock()
	case "rlock":
		err = l.RLock()
	case "trylock":
		return tried(l.TryLock())
	case "tryrlock":
		return tried(l.TryRLock())
	case "unlock":
		err = l.Unlock()
	default:
		return "err unknown command " + cmd
	}
	if err != nil {
		return "err " + err.Error()
	}
	return "ok"
}
