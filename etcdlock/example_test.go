package etcdlock_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/go-flock/flock/etcdlock"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The example needs an etcd server (ETCD_ENDPOINTS, default
// 127.0.0.1:2379), so it has no Output comment: go test compiles it but
// does not run it. The integration module runs the same steps against a
// real server.
func Example() {
	ep := os.Getenv("ETCD_ENDPOINTS")
	if ep == "" {
		ep = "127.0.0.1:2379"
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	m, err := etcdlock.New(cli, "jobs/nightly-report", etcdlock.WithTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.LockContext(ctx); err != nil {
		log.Fatal(err) // timed out, or etcd unreachable
	}
	// Work under the lock; stop at once if the hold is lost.
	work, stop := context.WithCancel(ctx)
	go func() {
		select {
		case <-m.Lost():
			stop()
		case <-work.Done():
		}
	}()
	// Writes to etcd itself are fenced: refused once the hold is gone.
	_, err = cli.Txn(work).If(m.Guard()).Then(clientv3.OpPut("reports/last", "today")).Commit()
	stop()
	if err := m.UnlockContext(context.Background()); err != nil {
		log.Printf("the hold did not last: %v", err)
	}
	if err != nil {
		log.Print(err)
	}
}
