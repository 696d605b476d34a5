//go:build !linux

package witness

import "time"

// PythonClock names the Python function that reads the clock Now reads.
const PythonClock = "time.time_ns"

// Now reads the wall clock in nanoseconds: the one clock every process
// reads alike on every system (Python's time.time_ns reads the same). A
// step of the clock while intervals are recorded can make them wrong.
func Now() int64 { return time.Now().UnixNano() }
