//go:build unix && !linux

package main

// lockOwners would list the holders of the lock; only Linux has /proc/locks.
func lockOwners(path string) string { return "" }
