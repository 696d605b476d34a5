//go:build linux

package flock

import (
	"testing"
)

// On fcntl platforms closing any descriptor of the gate file drops the
// process's gate lock: the descriptor that creates the gate must be the one
// the process keeps, even when another Open in the process finds the new
// gate first and locks it through its own descriptor. The hook makes that
// race deterministic: the gate file is locked by another handle of the
// process the moment it is created.
func TestGateCreatorKept(t *testing.T) {
	p := lockPath(t)
	var g *RWMutex
	testHookSidecarCreated = func(path string) {
		g = mustOpen(t, path) // the gate is a lock file like any other
		g.Lock()
	}
	m, err := Open(p, WriterPriority())
	testHookSidecarCreated = nil
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if g == nil {
		t.Fatal("the gate was not created")
	}
	if got := osLocks(t, gatePath(p)); len(got) != 1 {
		t.Fatalf("locks of this process on the gate after Open: %v; want the one taken through the other handle", got)
	}
	g.Unlock()
}
