#!/usr/bin/env bash
# Keeps the side-by-side benchmarks (bench/, a nested module) from rotting:
# vets them, runs every Go benchmark once, and builds the driver.
# Run from anywhere: bash .ci/bench.sh. The figures themselves come from
# `cd bench && go run . -quick` (about a minute) or `go run .`.
set -euo pipefail
cd "$(dirname "$0")/../bench"

echo "== bench: gofmt, go vet"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...

echo "== bench: every benchmark once"
go test -run '^$' -bench . -benchtime=1x ./...

echo "== bench: build the driver"
go build -o /dev/null .
