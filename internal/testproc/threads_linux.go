package testproc

import (
	"os"
	"strconv"
	"strings"
)

// ThreadsIn counts the threads of process pid (0: this one) and those of
// them that are in system call nr now (blocked in it, for a blocking call),
// from /proc/PID/task/*/syscall: how a test sees that a wait is in the
// kernel, and how many threads wait there, without a sleep.
func ThreadsIn(pid int, nr uintptr) (in, all int, err error) {
	dir := "/proc/self/task/"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/task/"
	}
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	want := strconv.FormatUint(uint64(nr), 10)
	for _, task := range tasks {
		b, err := os.ReadFile(dir + task.Name() + "/syscall")
		if err != nil {
			continue // the thread exited
		}
		all++
		if f := strings.Fields(string(b)); len(f) > 0 && f[0] == want {
			in++
		}
	}
	return in, all, nil
}
