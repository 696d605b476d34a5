// Command etcdserver is a minimal etcd server on go.etcd.io/etcd/server/v3/embed,
// version-matched with the client etcdlock uses. The integration tests start
// it as a child process (so that they can pause and kill it) with a subset of
// etcd's own flags, the same ones they pass to an etcd binary named by
// ETCD_BIN. It prints "ready to serve client requests" on stderr once it
// serves.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func urls(flagName, s string) []url.URL {
	var out []url.URL
	for _, p := range strings.Split(s, ",") {
		u, err := url.Parse(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcdserver: --%s: %v\n", flagName, err)
			os.Exit(2)
		}
		out = append(out, *u)
	}
	return out
}

func main() {
	cfg := embed.NewConfig()
	name := flag.String("name", "default", "member name")
	dir := flag.String("data-dir", "", "data directory")
	lc := flag.String("listen-client-urls", "http://127.0.0.1:2379", "client URLs to listen on")
	ac := flag.String("advertise-client-urls", "http://127.0.0.1:2379", "client URLs to advertise")
	lp := flag.String("listen-peer-urls", "http://127.0.0.1:2380", "peer URLs to listen on")
	ap := flag.String("initial-advertise-peer-urls", "http://127.0.0.1:2380", "peer URLs to advertise")
	ic := flag.String("initial-cluster", "", "initial cluster configuration")
	state := flag.String("initial-cluster-state", "new", "new or existing")
	token := flag.String("initial-cluster-token", "etcd-cluster", "initial cluster token")
	level := flag.String("log-level", "error", "log level")
	flag.Parse()

	cfg.Name = *name
	cfg.Dir = *dir
	cfg.ListenClientUrls = urls("listen-client-urls", *lc)
	cfg.AdvertiseClientUrls = urls("advertise-client-urls", *ac)
	cfg.ListenPeerUrls = urls("listen-peer-urls", *lp)
	cfg.AdvertisePeerUrls = urls("initial-advertise-peer-urls", *ap)
	if *ic != "" {
		cfg.InitialCluster = *ic
	} else {
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	}
	cfg.ClusterState = *state
	cfg.InitialClusterToken = *token
	cfg.LogLevel = *level

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcdserver: %v\n", err)
		os.Exit(1)
	}
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintln(os.Stderr, "ready to serve client requests")
	case <-time.After(2 * time.Minute):
		fmt.Fprintln(os.Stderr, "etcdserver: not ready after 2 minutes")
		os.Exit(1)
	}
	err = <-e.Err()
	fmt.Fprintf(os.Stderr, "etcdserver: %v\n", err)
	os.Exit(1)
}
