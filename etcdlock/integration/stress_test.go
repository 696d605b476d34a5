package integration

import (
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestStress: 3 worker processes × 8 goroutines doing random RLock, Lock,
// TryLock, TryRLock and cancelled waits for several seconds, while the test
// SIGKILLs a random worker every 2 s (after 3 s without faults) and starts a replacement. A witness
// in shared memory counts exclusion violations (it does not trust the lock);
// every write section bumps a counter in etcd through Guard and records a
// key of its own in the same transaction, so a lost update shows as a
// counter below the number of section keys.
func TestStress(t *testing.T) {
	eachServer(t, func(t *testing.T, k serverKind) {
		c := startCluster(t, k, 1)
		cli := newClient(t, c.endpoints()...)
		wpath := filepath.Join(t.TempDir(), "witness")
		w, err := createWitness(wpath)
		if err != nil {
			t.Fatal(err)
		}
		name := "stress"
		slot := 0
		spawn := func() (*child, int) {
			s := slot
			slot++
			ch := startChild(t, "stress",
				"ETCD_ENDPOINTS="+strings.Join(c.endpoints(), ","), "LOCK_NAME="+name, "LOCK_TTL=2s",
				"WITNESS_FILE="+wpath, "WITNESS_SLOT="+strconv.Itoa(s))
			ch.expect("ready", 15*time.Second)
			return ch, s
		}
		type worker struct {
			ch   *child
			slot int
		}
		var workers []worker
		for i := 0; i < 3; i++ {
			ch, s := spawn()
			workers = append(workers, worker{ch, s})
		}
		kills := 0
		// The scenario: 3 s without faults, then a kill every 2 s, 3 kills.
		tick := time.NewTicker(2 * time.Second)
		first := time.NewTimer(3 * time.Second)
		<-first.C
		for kills < 3 {
			if kills > 0 {
				<-tick.C
			}
			i := rand.IntN(len(workers))
			victim := workers[i]
			within(t, 10*time.Second, "killed worker exit", victim.ch.Kill)
			w.clear(victim.slot)
			kills++
			ch, s := spawn()
			workers[i] = worker{ch, s}
		}
		tick.Stop()
		var total string
		for _, wk := range workers {
			wk.ch.send("stop")
		}
		for _, wk := range workers {
			total += wk.ch.expect("done", 30*time.Second) + "; "
		}
		resp, err := cli.Get(ctxT(t, 5*time.Second), name+"-counter")
		if err != nil {
			t.Fatal(err)
		}
		counter := 0
		if len(resp.Kvs) == 1 {
			counter, _ = strconv.Atoi(string(resp.Kvs[0].Value))
		}
		sec, err := cli.Get(ctxT(t, 5*time.Second), name+"-sections/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		v := w.violations().Load()
		t.Logf("kills=%d, violations=%d, etcd counter=%d, fenced write sections=%d; survivors: %s", kills, v, counter, sec.Count, total)
		if v != 0 {
			t.Errorf("%d exclusion violations", v)
		}
		if int64(counter) != sec.Count {
			t.Errorf("etcd counter %d != %d write sections: lost updates", counter, sec.Count)
		}
		if counter == 0 {
			t.Error("no write section completed")
		}
		if n := len(keys(t, cli, name)); n != 0 {
			// Killed workers' keys expire with their leases.
			t.Logf("%d keys of killed workers remain (they expire with the TTL)", n)
		}
	})
}
