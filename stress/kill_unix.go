//go:build unix

package main

// Kill injection: SIGKILL of a random worker at random moments (-kill),
// the replacement that takes its slot, and what its death leaves in the
// witness.

import (
	"time"
)

func (p *parent) nextKill() time.Duration {
	return time.Duration(p.rnd.ExpFloat64() / p.cfg.KillRate * float64(time.Second))
}

// killOne SIGKILLs a random running worker, half the time waiting (briefly)
// for a moment it holds the lock, reaps it, clears its slot and starts a
// replacement in the slot.
func (p *parent) killOne() {
	var live []*proc
	for _, w := range p.procs {
		if !w.hasExited() && !w.killed {
			live = append(live, w)
		}
	}
	if len(live) == 0 {
		return
	}
	w := live[p.rnd.Intn(len(live))]
	s := p.m.slot(w.slot)
	if p.rnd.Intn(2) == 0 {
		// Aim at a moment the worker is inside a section. This polls
		// the witness to pick the moment; it synchronises nothing.
		for t := time.Now(); !s.inside() && time.Since(t) < 20*time.Millisecond; {
			time.Sleep(20 * time.Microsecond)
		}
	}
	st := s.state.Load()
	s.state.Store(st | 1) // from now on its counts are not trusted
	holding := s.inside()
	w.killed = true
	if err := w.cmd.Process.Kill(); err != nil {
		p.error("killing worker %d: %v", w.slot, err)
	}
	select {
	case <-w.exited:
	case <-time.After(killTimeout):
		p.error("worker %d (pid %d) did not die within %v of SIGKILL", w.slot, w.cmd.Process.Pid, killTimeout)
		return
	}
	p.reap(w)
	p.kills++
	if holding {
		p.killsHolding++
	}
	p.clearSlot(s)
	s.state.Store((st>>1 + 1) << 1)
	if err := p.spawn(w.slot, true); err != nil {
		p.error("starting a replacement for worker %d: %v", w.slot, err)
		return
	}
	p.replacements++
}

// clearSlot forgets what a dead worker was doing. Only for a reaped worker:
// until then it may still hold the lock.
func (p *parent) clearSlot(s *slot) {
	p.cut += s.writeInFlight.Swap(0)
	s.section.Store(0)
	for i := range s.psection {
		s.psection[i].Store(0)
		s.removing[i].Store(0)
	}
	for i := range s.watch {
		s.watch[i].clear()
	}
	s.pid.Store(0)
	p.m.hdr.seq.Add(1)
}

// checkExits notices workers that exited without being told to.
func (p *parent) checkExits() {
	for _, w := range p.procs {
		if w.killed || w.reaped || !w.hasExited() {
			continue
		}
		s := p.m.slot(w.slot)
		st := s.state.Load()
		s.state.Store(st | 1)
		err := p.reap(w)
		p.error("worker %d (pid %d) exited unexpectedly: %v", w.slot, w.cmd.Process.Pid, err)
		p.clearSlot(s)
		s.state.Store(st | 1) // stays out of the checks
	}
}
