#!/usr/bin/env bash
# Bounded fuzzing of the flock package: runs every fuzz target in ./fuzz
# (FuzzOps, and FuzzOpen on Unix) for FUZZTIME each (default 20s), after
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

FUZZTIME=${FUZZTIME:-20s}
read -r -a extra <<<"${FUZZFLAGS:-}"

# The seed corpus alone, as go test ./... runs it.
go test -count=1 ${extra[@]+"${extra[@]}"} ./fuzz

targets=$(go test -list '^Fuzz' ./fuzz | grep '^Fuzz' || true)
if [ -z "$targets" ]; then
	echo "no fuzz targets found in ./fuzz" >&2
	exit 1
fi
for target in $targets; do
	printf '\n-- %s for %s\n' "$target" "$FUZZTIME"
	# -timeout bounds a hung run; the fuzzing engine stops at -fuzztime.
	go test ./fuzz -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZMINIMIZETIME:-10s}" -timeout 30m ${extra[@]+"${extra[@]}"}
done
