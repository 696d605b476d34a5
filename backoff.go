package flock

import (
	"math/rand"
	"time"
)

// A backoff spaces retries where the OS gives no wait to block in (spurious
// EDEADLK from fcntl, Windows lock waits under wine): capped, so that a
// retry is never far behind a release, and jittered, so that retrying
// processes do not move in step.
type backoff time.Duration

const (
	backoffFirst = backoff(time.Millisecond)
	backoffCap   = backoff(64 * time.Millisecond)
)

// wait sleeps about the current delay, then doubles it up to the cap. It
// returns false at once if abandon is closed first.
func (b *backoff) wait(abandon <-chan struct{}) bool {
	d := time.Duration(*b)
	t := time.NewTimer(d/2 + time.Duration(rand.Int63n(int64(d))))
	defer t.Stop()
	select {
	case <-t.C:
	case <-abandon:
		return false
	}
	if *b < backoffCap {
		*b *= 2
	}
	return true
}
