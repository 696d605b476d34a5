package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
)

// signals makes flock end as util-linux flock does when it gets a
// terminating signal (SIGINT from the terminal, SIGTERM from timeout(1) or
// a service manager, SIGHUP when the terminal goes): at once, by that
// signal, leaving a command that is running to itself, with the lock if it
// inherited it. A lock wait in progress is cancelled first, so that flock
// never dies halfway through the package's bookkeeping. Signals that the
// caller ignored (nohup, background jobs) stay ignored, for flock and for
// the command.
type signals struct {
	ch     chan os.Signal
	caught atomic.Bool

	mu     sync.Mutex         // guards cancel
	cancel context.CancelFunc // of the wait in progress, if any

	waiting sync.Mutex // held while a lock wait is in progress
}

func catchSignals() *signals {
	s := &signals{ch: make(chan os.Signal, 1)}
	for _, sig := range terminating {
		if !signal.Ignored(sig) {
			signal.Notify(s.ch, sig)
		}
	}
	go s.loop()
	return s
}

func (s *signals) loop() {
	sig := <-s.ch
	s.caught.Store(true)
	s.mu.Lock()
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.waiting.Lock() // let a cancelled wait return first
	die(sig)
}

// wait runs the lock wait f with a context that a terminating signal
// cancels. If a signal arrives, wait does not return: the process dies by
// the signal once f has returned.
func (s *signals) wait(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.waiting.Lock()
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	if s.caught.Load() {
		cancel()
	}
	err := f(ctx)
	s.mu.Lock()
	s.cancel = nil
	s.mu.Unlock()
	s.waiting.Unlock()
	if s.caught.Load() {
		select {} // loop ends the process
	}
	return err
}
