//go:build unix

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// Semaphore-mode workers started by a test are this test binary
// re-executed with semWorkerEnv set; init runs before TestMain.
func init() {
	if w := os.Getenv(semWorkerEnv); w != "" {
		os.Exit(semWorkerMain(w))
	}
}

func runSemStress(t *testing.T, c config) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := runMain(c, &out, &logWriter{t: t})
	return code, out.String()
}

func TestSemaphoreMode(t *testing.T) {
	c := testConfig(time.Second)
	c.Semaphore = 3
	c.KillRate = 4
	c.Quiet = true
	code, out := runSemStress(t, c)
	t.Log("\n" + out)
	if code != 0 || !strings.Contains(out, "violations: 0") || !strings.Contains(out, "PASS") {
		t.Fatalf("semaphore mode: exit %d", code)
	}
}

// The witness does not trust the semaphore: without it, it sees more
// units held than the capacity.
func TestSemaphoreModeWitness(t *testing.T) {
	c := testConfig(500 * time.Millisecond)
	c.Semaphore = 2
	c.Unsafe = true
	c.Quiet = true
	c.Hold = time.Millisecond
	code, out := runSemStress(t, c)
	if code != 1 || !strings.Contains(out, "FAIL") || strings.Contains(out, "violations: 0") {
		t.Fatalf("semaphore mode without the semaphore: exit %d\n%s", code, out)
	}
}
