package flock

import (
	"path/filepath"
	"testing"
)

// Wine cannot remove what t.TempDir made (see winTempDir).
func init() { tempDir = winTempDir }

// The portable content tests, under the TestWindows prefix that
// .ci/windows.sh runs under Wine.
func TestWindowsContent(t *testing.T) {
	t.Run("WriteFile", TestWriteFile)
	t.Run("WriteFileBadInput", TestWriteFileBadInput)
	t.Run("Symlink", func(t *testing.T) {
		skipUnderWine(t, "Wine's symbolic links are not reparse points that os.Lstat reports as links")
		TestContentSymlink(t)
	})
	t.Run("UpdateWritesOnlyChanges", TestUpdateWritesOnlyChanges)
	t.Run("UpdateCancelled", TestUpdateCancelled)
	t.Run("UpdateCounterGoroutines", TestUpdateCounterGoroutines)
}

// Closing what File returns leaves the lock alone: another process and
// another handle are still excluded, and File returns a new file.
func TestWindowsFileCloseKeepsLock(t *testing.T) {
	path := filepath.Join(winTempDir(t), "lock")
	m, other := winOpen(t, path), winOpen(t, path)
	c := startChild(t, path)
	m.Lock()
	f := m.File()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := c.Do("trylock"); got != "held" {
		t.Fatalf("child trylock after File().Close() while we hold: %s; want held", got)
	}
	winRawHeld(t, path, "after File().Close()")
	checkHeldAfterFileClose(t, m, other, f)
	m.Unlock()
	c.Must(t, "trylock")
	c.Must(t, "unlock")
}
