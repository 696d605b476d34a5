package flock

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Update of a 4 KiB file, beside what it is made of: WriteFile (the atomic
// replace without the lock and the read), a lock, a write through File and
// an unlock (no atomic replace, no flush), and the flushes alone (a 4 KiB write and fsync of a file, an fsync of its directory),
// which are Update's floor on a given disk.
func BenchmarkContent4K(b *testing.B) {
	data := make([]byte, 4096)
	b.Run("Update", func(b *testing.B) {
		p := filepath.Join(b.TempDir(), "state")
		flip := func(old []byte) ([]byte, error) {
			data[0]++ // a change each time, so that each Update writes
			return data, nil
		}
		for i := 0; i < b.N; i++ {
			if err := Update(context.Background(), p, flip); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("WriteFile", func(b *testing.B) {
		p := filepath.Join(b.TempDir(), "state")
		for i := 0; i < b.N; i++ {
			if err := WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LockWriteAtUnlock", func(b *testing.B) {
		m, err := Open(filepath.Join(b.TempDir(), "state"))
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		for i := 0; i < b.N; i++ {
			m.Lock()
			if _, err := m.File().WriteAt(data, 0); err != nil {
				b.Fatal(err)
			}
			m.Unlock()
		}
	})
	b.Run("WriteFsyncFsyncDir", func(b *testing.B) {
		dir := b.TempDir()
		f, err := os.Create(filepath.Join(dir, "state"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		for i := 0; i < b.N; i++ {
			if _, err := f.WriteAt(data, 0); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			d, err := openDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			if err := d.sync(); err != nil {
				b.Fatal(err)
			}
			d.close()
		}
	})
}
