//go:build unix

package witness

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Two mappings of one file see each other's atomic updates (as two
// processes would: MAP_SHARED maps the same pages).
func TestSharedMappings(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w")
	a, err := Create(p, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Len() != 4 {
		t.Fatalf("Len = %d, want 4", b.Len())
	}
	ga, gb := a.Gauge(0), b.Gauge(0)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		g := ga
		if i%2 == 1 {
			g = gb
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				g.Enter(1)
				g.Leave(1)
			}
		}()
	}
	wg.Wait()
	if ga.Now() != 0 || gb.Max() < 1 || gb.Max() > 8 {
		t.Fatalf("now %d, max %d", ga.Now(), gb.Max())
	}
	b.Cell(3).Store(42)
	if a.Cell(3).Load() != 42 {
		t.Fatal("a store through one mapping is not seen through the other")
	}
	if Now() <= 0 {
		t.Fatal("Now is not positive")
	}
}

func TestOpenRefusesOtherFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(p, make([]byte, 64), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(p); err == nil {
		s.Close()
		t.Fatal("Open of a file Create did not make succeeded")
	}
}

func TestTally(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w")
	s, err := Create(p, TallyCells(3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tl := s.Tally(0, 3)
	tl.Add(0, 2)
	tl.Add(1, 1)
	tl.Add(2, 3)
	if sum, ok := tl.Sum(1); !ok || sum != 6 {
		t.Fatalf("Sum = %d, %v; want 6", sum, ok)
	}
	tl.Exclude(2)
	if sum, _ := tl.Sum(1); sum != 3 {
		t.Fatalf("Sum with 2 excluded = %d, want 3", sum)
	}
	tl.Reset(2)
	if sum, _ := tl.Sum(1); sum != 3 || tl.Held(2) != 0 {
		t.Fatalf("after Reset: Sum %d, Held(2) %d", sum, tl.Held(2))
	}
}
