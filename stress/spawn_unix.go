//go:build unix

package main

// The parent's side of the worker processes: starting one (the stress
// binary re-executed with workerEnv set), waiting until it is ready, and
// reaping it.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// A proc is one worker process.
type proc struct {
	slot   int
	gen    uint64
	cmd    *exec.Cmd
	ready  chan struct{} // closed when the worker said "ready"
	exited chan struct{} // closed at EOF on its stdout: it has exited

	mu      sync.Mutex
	stdin   io.WriteCloser
	started bool // told "go"
	stopped bool // stdin closed
	autoGo  bool // say "go" as soon as it is ready

	killed bool // by us, on purpose
	reaped bool
}

func (p *proc) sendGo() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped && !p.started {
		p.started = true
		io.WriteString(p.stdin, "go\n")
	}
}

func (p *proc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.stopped = true
		p.stdin.Close()
	}
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// spawn starts the worker for slot i in the slot's current generation.
func (p *parent) spawn(i int, autoGo bool) error {
	gen := p.m.slot(i).state.Load() >> 1
	wc := workerConfig{
		Slot:        i,
		Gen:         gen,
		Shm:         filepath.Join(p.dir, "witness"),
		Paths:       p.paths,
		Goroutines:  p.cfg.Goroutines,
		ReadRatio:   p.cfg.ReadRatio,
		CancelRatio: p.cfg.CancelRatio,
		TryRatio:    p.cfg.TryRatio,
		Unsafe:      p.cfg.Unsafe,
		PathMode:    p.cfg.pathMode(),
		Churn:       p.cfg.Churn,
		Prio:        p.cfg.Prio,
		Remove:      p.cfg.Remove,
		UnsafeWrong: p.cfg.UnsafeWrong,
		Openers:     p.cfg.Openers,
		Hold:        p.cfg.Hold,
		MaxDeadline: p.cfg.MaxDeadline,
		Seed:        p.cfg.Seed + int64(i)*1000003 + int64(gen)*7919,
	}
	cmd, stdin, stdout, err := startWorker(p.exe, workerEnv, wc, p.log)
	if err != nil {
		return err
	}
	w := &proc{
		slot:   i,
		gen:    gen,
		cmd:    cmd,
		stdin:  stdin,
		ready:  make(chan struct{}),
		exited: make(chan struct{}),
		autoGo: autoGo,
	}
	p.procs[i] = w
	go func() {
		defer close(w.exited)
		in := bufio.NewScanner(stdout)
		for in.Scan() {
			line := in.Text()
			switch {
			case line == "ready":
				close(w.ready)
				if w.autoGo {
					w.sendGo()
				}
			case line == "done":
			default:
				// Counted by the worker in its slot; kept for the summary.
				p.note("worker %d (pid %d): %s", i, cmd.Process.Pid, line)
			}
		}
	}()
	return nil
}

// startWorker starts the stress binary exe as a worker: its configuration
// wc in JSON in the environment variable env, its standard error to log,
// and pipes to its standard input and output.
func startWorker(exe, env string, wc any, log io.Writer) (*exec.Cmd, io.WriteCloser, io.ReadCloser, error) {
	js, err := json.Marshal(wc)
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env+"="+string(js))
	cmd.Stderr = log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	return cmd, stdin, stdout, nil
}

func (p *parent) waitReady() error {
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	for _, w := range p.procs {
		select {
		case <-w.ready:
		case <-w.exited:
			p.reap(w)
			return fmt.Errorf("worker %d exited while starting: %v", w.slot, w.cmd.ProcessState)
		case <-t.C:
			return fmt.Errorf("worker %d did not start within %v", w.slot, startTimeout)
		}
	}
	return nil
}

func (p *parent) reap(w *proc) error {
	if w.reaped {
		return nil
	}
	<-w.exited // Wait closes stdout: read it all first
	w.reaped = true
	return w.cmd.Wait()
}
