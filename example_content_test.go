package flock_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-flock/flock"
)

// A JSON state file that several workers (goroutines here; processes work
// the same) update: each adds its visit, and no update is lost. Readers
// need no lock: os.ReadFile always sees one whole version.
func ExampleUpdate() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.json")

	type state struct {
		Visits int            `json:"visits"`
		By     map[string]int `json:"by"`
	}
	visit := func(worker string) error {
		return flock.Update(context.Background(), path, func(old []byte) ([]byte, error) {
			s := state{By: map[string]int{}}
			if old != nil { // nil: the file does not exist yet
				if err := json.Unmarshal(old, &s); err != nil {
					return nil, err // nothing is written
				}
			}
			s.Visits++
			s.By[worker]++
			return json.Marshal(s)
		})
	}

	var wg sync.WaitGroup
	for _, worker := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func(worker string) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if err := visit(worker); err != nil {
					log.Fatal(err)
				}
			}
		}(worker)
	}
	wg.Wait()

	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	// Output:
	// {"visits":30,"by":{"a":10,"b":10,"c":10}}
}

// Writing a configuration file so that a crash or a concurrent reader never
// sees half of it, and creating a file only if nobody else has.
func ExampleWriteFile() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.conf")

	if err := flock.WriteFile(path, []byte("workers = 4\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := flock.WriteFile(path, []byte("workers = 8\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	fmt.Print(string(b))

	err := flock.WriteFile(path, []byte("workers = 1\n"), 0o644, flock.NoReplace())
	fmt.Println(errors.Is(err, fs.ErrExist))
	// Output:
	// workers = 8
	// true
}
