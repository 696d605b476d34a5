//go:build linux

package main

// Scenario 4: cancellation latency, from cancel() to the return of a
// waiting call, with the lock held by another process.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"
)

// cancelWaiter is the goroutine whose wait is cancelled; its name is how
// parkedGoroutines finds it.
func cancelWaiter(lock func(context.Context) error, ctx context.Context, done chan<- acquired) {
	err := lock(ctx)
	done <- acquired{time.Now().UnixNano(), err}
}

func scenario4(cfg *config, res *results) ([]*table, error) {
	path := filepath.Join(cfg.dir, "s4.lock")
	vs, closeAll, err := waitVariants(path)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	vs = append(vs, waitVariant{"floor: a goroutine blocked on <-ctx.Done()", true, 0, false,
		func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, noop})

	h, err := spawn("holder", path)
	if err != nil {
		return nil, err
	}
	defer h.close()
	if _, err := h.expectAfter("l", "ok"); err != nil {
		return nil, err
	}

	t := &table{
		title:  fmt.Sprintf("4. Cancellation: from cancel() to the waiting call's return, lock held by another process (%d cancellations each)", cfg.cancels),
		header: []string{"waiter", "p50", "p90", "p99", "max", "ours ÷ this (p99)"},
	}
	lat := map[string]sample{}
	for i := 0; i < cfg.cancels; i++ {
		for _, k := range rand.Perm(len(vs)) { // see scenario3
			v := vs[k]
			if !v.cancellable || v.leavesThread {
				continue
			}
			d, err := cancelOnce(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			lat[v.name] = append(lat[v.name], d)
		}
	}
	oursP99 := lat["ours LockContext"].pct(99)
	for _, v := range vs {
		if !v.cancellable {
			t.row(v.name, "cannot be cancelled", "—", "—", "—", "—")
			continue
		}
		if v.leavesThread {
			t.row(v.name, "not measured: each cancelled wait leaves a thread in flock(2) until the lock is granted", "—", "—", "—", "—")
			continue
		}
		s := lat[v.name]
		t.row(v.name, fmtDur(s.median()), fmtDur(s.pct(90)), fmtDur(s.pct(99)), fmtDur(s.max()), fmtRatio(float64(oursP99)/float64(s.pct(99))))
	}
	t.note("Time from the clock read right before cancel() to the waiting call's return (wall clock, same process). ours waits on a wait already in the kernel (the wait outlives the cancelled call and is adopted by the next one). gofrs TryLockContext is cancelled at a random moment between one and two retry periods after it started. The peer's Lock and raw flock(2) block in the kernel with no way out but the lock.")
	res.cancelP99 = oursP99
	res.has4 = true
	return []*table{t}, nil
}

// cancelOnce starts v waiting, cancels it once it waits, and returns how
// long after cancel() the call returned.
func cancelOnce(v waitVariant) (time.Duration, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan acquired, 1)
	go cancelWaiter(v.lock, ctx, done)
	var err error
	switch {
	case v.poll > 0:
		time.Sleep(v.poll + rand.N(v.poll)) // cancel at a random phase of the polling
	case strings.HasPrefix(v.name, "ours"):
		err = waitFor("LockContext waits on the kernel wait", func() bool {
			return threadsInFlock() > 0 && parkedGoroutines("main.cancelWaiter") > 0
		})
	default:
		err = waitFor("the goroutine parks", func() bool { return parkedGoroutines("main.cancelWaiter") > 0 })
	}
	if err != nil {
		return 0, err
	}
	t0 := time.Now().UnixNano()
	cancel()
	a := <-done
	if !errors.Is(a.err, context.Canceled) {
		return 0, fmt.Errorf("returned %v, want context.Canceled", a.err)
	}
	return time.Duration(a.at - t0), nil
}
