package testproc

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// A thread blocked in read(2) on a pipe is counted in read, and no more
// once it returns.
func TestThreadsIn(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd := int(r.Fd()) // blocking: the read sits in the kernel
	done := make(chan error)
	go func() {
		_, err := syscall.Read(fd, make([]byte, 1))
		done <- err
	}()
	deadline := time.Now().Add(Timeout)
	for {
		in, all, err := ThreadsIn(0, syscall.SYS_READ)
		if err != nil {
			t.Skipf("cannot read /proc/self/task: %v", err)
		}
		if in >= 1 && all >= in {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no thread seen in read(2)")
		}
		time.Sleep(time.Millisecond) // polling state another thread changes
	}
	w.Write([]byte{1})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
