#!/usr/bin/env bash
# CI for the etcdlock module and its server-backed integration suite.
# Called by .ci/run; runs on its own too: bash etcdlock/ci.sh (from anywhere).
#
# Installs nothing. It builds the test etcd server (etcdlock/integration/
# cmd/etcdserver, on go.etcd.io/etcd/server/v3/embed, version-matched with the
# client) and runs the suite against it, and also against the etcd binary
# named by ETCD_BIN, or, if ETCD_BIN is unset, the `etcd` on PATH (Debian:
# apt-get install -y etcd-server). With CI=true a missing server is a failure.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n== etcdlock: %s\n' "$*"; }
took() { echo "   ($(( SECONDS - $1 ))s)"; }
start_all=$SECONDS

step "gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet (etcdlock, etcdlock/integration)"
t=$SECONDS
go vet ./...
(cd integration && go vet ./...)
took $t

step "unit tests, no server (cd etcdlock && go test -race ./...)"
t=$SECONDS
go test -race -count=1 -timeout 5m ./...
took $t

step "build the embed etcd server"
t=$SECONDS
bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT
(cd integration && go build -o "$bindir/etcdserver" ./cmd/etcdserver)
export ETCDLOCK_SERVER="$bindir/etcdserver"
took $t

if [ -z "${ETCD_BIN:-}" ] && command -v etcd >/dev/null 2>&1; then
	ETCD_BIN=$(command -v etcd)
fi
if [ -n "${ETCD_BIN:-}" ]; then
	export ETCD_BIN
	echo "also testing against $ETCD_BIN: $("$ETCD_BIN" --version 2>/dev/null | head -n 1)"
elif [ "${CI:-}" = "true" ]; then
	echo "no etcd binary: set ETCD_BIN or install one (apt-get install -y etcd-server)" >&2
	exit 1
else
	echo "no etcd binary (ETCD_BIN unset, none on PATH): testing against the embed server only"
fi

step "integration suite against real etcd server processes (race detector; benchmarks run once)"
t=$SECONDS
(cd integration && go test -race -count=1 -timeout 10m -bench . -benchtime 1x .)
took $t

step "done in $(( SECONDS - start_all ))s"
