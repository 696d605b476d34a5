package flock

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// An fn that panics leaves no lock held and no descriptor open.
func TestUpdatePanicLeaksNothing(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 20; i++ {
		p := filepath.Join(dir, fmt.Sprint("f", i))
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Fatalf("recovered %v; want fn's panic", r)
				}
			}()
			Update(context.Background(), p, func([]byte) ([]byte, error) { panic("boom") })
		}()
		m := mustOpen(t, p+".lock")
		if ok, err := m.TryLock(); !ok || err != nil {
			t.Fatalf("the lock after fn panicked: TryLock = %v, %v", ok, err)
		}
		m.Unlock()
		m.Close()
	}
	if open := descriptorsUnder(t, dir); len(open) != 0 {
		t.Fatalf("descriptors left open by 20 panicking Updates: %q", open)
	}
}
