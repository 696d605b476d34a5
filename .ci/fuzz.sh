#!/usr/bin/env bash
# Bounded fuzzing of the flock package: runs every fuzz target in ./fuzz
# (FuzzOps, and FuzzOpen on Unix) for FUZZTIME each (default: a count of
# executions per target, see below), after
# the seed corpus in fuzz/testdata/fuzz has passed as ordinary tests.
#
#   FUZZTIME=2m bash .ci/fuzz.sh          # longer
#   FUZZFLAGS='-race' bash .ci/fuzz.sh    # extra go test flags
#   FUZZMINIMIZETIME=60s bash .ci/fuzz.sh # time spent minimizing each new input
#
# A failing input is written by go test to fuzz/testdata/fuzz/<Target>/;
# commit it with the fix so that it stays a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Budgets are counts of executions by default, not durations: with a
# duration, Go's fuzzing coordinator (go1.26 and older, golang/go#75804) can
# report a bare "context deadline exceeded" failure, with no input written,
# when -fuzztime ends while a worker is mid-execution. A count has no such
# deadline. They are about 20 s each on this project's 2-core machines.
FUZZTIME=${FUZZTIME:-}
budget() {
	if [ -n "$FUZZTIME" ]; then
		echo "$FUZZTIME"
		return
	fi
	case $1 in
	FuzzOps) echo 6000x ;;
	*) echo 20000x ;;
	esac
}
read -r -a extra <<<"${FUZZFLAGS:-}"

# The seed corpus alone, as go test ./... runs it.
go test -count=1 ${extra[@]+"${extra[@]}"} ./fuzz

targets=$(go test -list '^Fuzz' ./fuzz | grep '^Fuzz' || true)
if [ -z "$targets" ]; then
	echo "no fuzz targets found in ./fuzz" >&2
	exit 1
fi
for target in $targets; do
	printf '\n-- %s for %s\n' "$target" "$(budget "$target")"
	# -timeout bounds a hung run; the fuzzing engine stops at -fuzztime.
	go test ./fuzz -run '^$' -fuzz "^${target}\$" -fuzztime "$(budget "$target")" -fuzzminimizetime "${FUZZMINIMIZETIME:-10s}" -timeout 30m ${extra[@]+"${extra[@]}"}
done
