package flock

import "testing"

func init() {
	semTempDir = func(tb testing.TB) string {
		if t, ok := tb.(*testing.T); ok {
			return winTempDir(t) // removable under Wine
		}
		return tb.TempDir()
	}
}

// TestWindowsSemaphore runs the portable Semaphore tests where .ci/windows.sh
// runs Windows tests (under Wine): the semaphore has no code of its own per
// platform, so they check it on the LockFileEx backend.
func TestWindowsSemaphore(t *testing.T) {
	t.Run("BadInput", TestSemaphoreBadInput)
	t.Run("SlotFiles", TestSemaphoreSlotFiles)
	t.Run("InProcess", TestSemaphoreInProcess)
	t.Run("FIFOAndCancel", TestSemaphoreFIFOAndCancel)
	t.Run("CapacityDisagreement", TestSemaphoreCapacityDisagreement)
}
