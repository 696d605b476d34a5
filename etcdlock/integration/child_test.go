package integration

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-flock/flock/etcdlock"
	shared "github.com/go-flock/flock/internal/witness"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// witness is shared memory (an internal/witness file) that counts, per
// process slot, the writers and readers inside a critical section, and the
// violations seen. It does not trust the lock.
type witness struct{ s *shared.Shared }

const witnessSlots = 64

// witnessCells is what a witness file holds: the violations, then a
// writers and a readers cell per slot.
const witnessCells = 1 + 2*witnessSlots

// createWitness makes the witness file at path, which the children open.
func createWitness(path string) (*witness, error) {
	s, err := shared.Create(path, witnessCells)
	return &witness{s}, err
}

func openWitness(path string) (*witness, error) {
	s, err := shared.Open(path)
	return &witness{s}, err
}

func (w *witness) violations() *atomic.Int64      { return w.s.Cell(0) }
func (w *witness) writers(slot int) *atomic.Int64 { return w.s.Cell(1 + 2*slot) }
func (w *witness) readers(slot int) *atomic.Int64 { return w.s.Cell(2 + 2*slot) }

// enterWrite records a writer of slot and counts a violation if anyone else
// is inside.
func (w *witness) enterWrite(slot int) {
	w.writers(slot).Add(1)
	for s := 0; s < witnessSlots; s++ {
		wn, rn := w.writers(s).Load(), w.readers(s).Load()
		if s == slot {
			wn--
		}
		if wn != 0 || rn != 0 {
			w.violations().Add(1)
		}
	}
}

func (w *witness) exitWrite(slot int) { w.writers(slot).Add(-1) }

func (w *witness) enterRead(slot int) {
	w.readers(slot).Add(1)
	for s := 0; s < witnessSlots; s++ {
		if w.writers(s).Load() != 0 {
			w.violations().Add(1)
		}
	}
}

func (w *witness) exitRead(slot int) { w.readers(slot).Add(-1) }

// clear zeroes a dead process's slot.
func (w *witness) clear(slot int) {
	w.writers(slot).Store(0)
	w.readers(slot).Store(0)
}

func childClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(os.Getenv("ETCD_ENDPOINTS"), ","),
		DialTimeout: 5 * time.Second,
		Logger:      quietLogger,
	})
}

func childMutex(cli *clientv3.Client) (*etcdlock.RWMutex, error) {
	ttl, _ := time.ParseDuration(os.Getenv("LOCK_TTL"))
	if ttl == 0 {
		ttl = 2 * time.Second
	}
	return etcdlock.New(cli, os.Getenv("LOCK_NAME"), etcdlock.WithTTL(ttl), etcdlock.WithOpTimeout(2*time.Second))
}

func runChild(role string) int {
	var err error
	switch role {
	case "holder":
		err = childHolder()
	case "stress":
		err = childStress()
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Printf("error %v\n", err)
		return 1
	}
	return 0
}

// childHolder obeys line commands on stdin: lock, rlock, fencedwrite KEY VAL,
// unlock, exit; it answers on stdout.
func childHolder() error {
	cli, err := childClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	m, err := childMutex(cli)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "lock", "rlock":
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			if f[0] == "lock" {
				err = m.LockContext(ctx)
			} else {
				err = m.RLockContext(ctx)
			}
			cancel()
			if err != nil {
				return err
			}
			fmt.Printf("locked %d\n", m.Token())
		case "fencedwrite":
			// Deliberately does not look at Lost first: a paused holder
			// acts on what it believed before the pause.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := cli.Txn(ctx).If(m.Guard()).Then(clientv3.OpPut(f[1], f[2])).Commit()
			cancel()
			if err != nil {
				return err
			}
			fmt.Printf("write %v\n", resp.Succeeded)
		case "unlock":
			fmt.Printf("unlocking %d\n", time.Now().UnixNano())
			err := m.UnlockContext(context.Background())
			fmt.Printf("unlocked %v\n", err)
		case "exit":
			return m.Close()
		}
	}
	return nil
}

// childStress runs 8 goroutines of random RLock, Lock, TryLock, TryRLock and
// cancelled waits until told "stop" on stdin, recording every critical
// section in the witness, and bumping the counter in etcd through Guard in
// every write section.
func childStress() error {
	slot, _ := strconv.Atoi(os.Getenv("WITNESS_SLOT"))
	w, err := openWitness(os.Getenv("WITNESS_FILE"))
	if err != nil {
		return err
	}
	cli, err := childClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	m, err := childMutex(cli)
	if err != nil {
		return err
	}
	counter := os.Getenv("LOCK_NAME") + "-counter"
	sections := os.Getenv("LOCK_NAME") + "-sections/"
	stop := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "stop" {
				break
			}
		}
		close(stop)
	}()
	var (
		wg                                   sync.WaitGroup
		writes, reads, cancels, fenced, lost atomic.Int64
		firstErr                             atomic.Value
	)
	fmt.Println("ready")
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			seq := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				timeout := 10 * time.Second
				if rand.IntN(5) == 0 {
					timeout = time.Duration(1+rand.IntN(20)) * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				op := rand.IntN(10)
				var ok bool
				var err error
				write := op < 5
				switch {
				case op < 4:
					err = m.LockContext(ctx)
					ok = err == nil
				case op < 5:
					ok, err = m.TryLock()
				case op < 9:
					err = m.RLockContext(ctx)
					ok = err == nil
				default:
					ok, err = m.TryRLock()
				}
				if err != nil && ctx.Err() != nil {
					cancels.Add(1)
					err = nil
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
				}
				if !ok {
					cancel()
					continue
				}
				if write {
					w.enterWrite(slot)
					seq++
					gctx, gcancel := context.WithTimeout(context.Background(), 5*time.Second)
					resp, gerr := cli.Get(gctx, counter)
					if gerr == nil {
						n := 0
						if len(resp.Kvs) == 1 {
							n, _ = strconv.Atoi(string(resp.Kvs[0].Value))
						}
						t, terr := cli.Txn(gctx).If(m.Guard()).Then(
							clientv3.OpPut(counter, strconv.Itoa(n+1)),
							clientv3.OpPut(fmt.Sprintf("%s%d-%d-%d", sections, os.Getpid(), g, seq), ""),
						).Commit()
						if terr == nil && t.Succeeded {
							fenced.Add(1)
						}
					}
					gcancel()
					writes.Add(1)
					select {
					case <-m.Lost():
						lost.Add(1) // the hold ended under the section
					default:
					}
					w.exitWrite(slot)
					m.Unlock()
				} else {
					w.enterRead(slot)
					time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) // work
					reads.Add(1)
					w.exitRead(slot)
					m.RUnlock()
				}
				cancel()
			}
		}(g)
	}
	wg.Wait()
	cerr := m.Close() // reported, not fatal: a revoke can time out on a loaded machine
	e, _ := firstErr.Load().(string)
	fmt.Printf("done writes=%d fenced=%d reads=%d cancels=%d lost=%d firsterr=%q close=%v\n",
		writes.Load(), fenced.Load(), reads.Load(), cancels.Load(), lost.Load(), e, cerr)
	return nil
}
