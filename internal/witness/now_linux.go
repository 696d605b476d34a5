package witness

import "golang.org/x/sys/unix"

// PythonClock names the Python function that reads the clock Now reads.
const PythonClock = "time.monotonic_ns"

// Now reads CLOCK_MONOTONIC in nanoseconds: one clock for every process of
// the machine, which time steps do not move (Python's time.monotonic_ns
// reads the same).
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("witness: clock_gettime: " + err.Error())
	}
	return ts.Nano()
}
