package main

// semWorkerEnv, when set, makes the program a semaphore-mode worker; its
// value is the worker's JSON-encoded configuration (semaphore_unix.go).
const semWorkerEnv = "FLOCK_STRESS_SEMAPHORE_WORKER"
