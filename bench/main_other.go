//go:build !linux

// Command bench compares this package with its peers on Linux only: it
// reads /proc and times flock(2) directly.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: Linux only")
	os.Exit(1)
}
