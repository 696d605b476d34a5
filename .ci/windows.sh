#!/usr/bin/env bash
# Windows tests under Wine: bash .ci/windows.sh (from anywhere).
#
# Cross-compiles the package's test binary for windows/amd64 and runs its
# TestWindows* tests under Wine, then vets windows/arm64, which Wine cannot
# run. Works on a fresh Debian machine that has the Go toolchain: it
# installs Wine and the MinGW-w64 compiler with apt-get when they are
# missing (as root, no prompts), creates the Wine prefix without a display,
# and adds the bcryptprimitives.dll stand-in (internal/winestub) that Go
# binaries need on Wine 8. It also builds the gofrs/flock driver of the
# interop test from the bench module (bench/cmd/gofrsdriver). Tests that
# need real Windows skip under Wine and say why in the output.
#
# FLOCK_WINDOWS_RACE=1 also runs the tests built with the race detector
# (cgo through MinGW; about a minute more on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

export DISPLAY=                      # no GUI: Wine must not try to open windows
export WINEDEBUG=-all                # Wine's fixme and err chatter hides test output
export WINEDLLOVERRIDES="mscoree,mshtml=" # no Mono or Gecko install prompts
export WINEPREFIX=${WINEPREFIX:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.wine}
# Built for the target, not the host; nothing needs cgo but the race run.
export CGO_ENABLED=0

step "wine and mingw-w64"
need=()
command -v wine >/dev/null 2>&1 || need+=(wine wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need+=(gcc-mingw-w64-x86-64-win32)
if ((${#need[@]})); then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
wine --version
x86_64-w64-mingw32-gcc --version | head -n 1

tmp=$(mktemp -d)
cleanup() {
	rm -rf "$tmp"
	# Wine cannot delete what the tests leave in its temp directory
	# (os.RemoveAll fails there); remove it from the Linux side.
	find "$WINEPREFIX/drive_c/users" -maxdepth 4 -name 'flock-windows-test-*' -prune -exec rm -rf {} + 2>/dev/null || true
	timeout 30 wineserver -w 2>/dev/null || true
}
trap cleanup EXIT

step "wine prefix $WINEPREFIX"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
	timeout 300 wineboot -i </dev/null
fi
timeout 120 wineserver -w

# Go's runtime needs ProcessPrng from bcryptprimitives.dll, which Wine 8
# does not ship. Install the stand-in unless Wine has its own (Wine copies
# its DLLs into the prefix marked as builtin or placeholder DLLs).
dll="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -e "$dll" ] || ! grep -qE 'Wine (builtin|placeholder) DLL' "$dll"; then
	bash internal/winestub/build.sh "$tmp/stub" >/dev/null
	cp "$tmp/stub/bcryptprimitives.dll" "$dll"
	echo "installed the bcryptprimitives.dll stand-in"
else
	echo "wine ships bcryptprimitives.dll"
fi

run_tests() {
	local exe=$1
	local log="$tmp/$(basename "$exe" .exe).log"
	local rc=0
	# The test binary bounds itself; timeout is the backstop for a hung
	# Wine.
	timeout 600 wine "$exe" -test.v -test.run 'TestWindows' -test.timeout 5m </dev/null 2>&1 | tee "$log" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "Windows tests failed under wine (exit $rc)"
		return 1
	fi
	if ! grep -q '^--- PASS: TestWindows' "$log"; then
		echo "no Windows test passed"
		return 1
	fi
	printf 'windows: %d passed, %d failed, %d skipped\n' \
		"$(grep -c '^--- PASS: TestWindows' "$log")" \
		"$(grep -c '^--- FAIL: TestWindows' "$log" || true)" \
		"$(grep -c '^--- SKIP: TestWindows' "$log" || true)"
}

step "go vet (windows/amd64, windows/arm64)"
GOOS=windows GOARCH=amd64 go vet .
GOOS=windows GOARCH=arm64 go vet .

step "gofrs/flock driver for the interop test (bench/cmd/gofrsdriver)"
# Built from the bench module, which requires github.com/gofrs/flock (and a
# newer Go than the package); TestWindowsGofrsInterop runs it under wine.
(cd bench && GOOS=windows GOARCH=amd64 go build -o "$tmp/gofrsdriver.exe" ./cmd/gofrsdriver)
FLOCK_GOFRS_DRIVER=$(winepath -w "$tmp/gofrsdriver.exe" 2>/dev/null)
export FLOCK_GOFRS_DRIVER
echo "FLOCK_GOFRS_DRIVER=$FLOCK_GOFRS_DRIVER"

step "tests (windows/amd64 under wine)"
GOOS=windows GOARCH=amd64 go test -c -o "$tmp/flock.test.exe" .
run_tests "$tmp/flock.test.exe"

if [ "${FLOCK_WINDOWS_RACE:-}" = 1 ]; then
	step "tests (windows/amd64 under wine), race detector"
	CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc GOOS=windows GOARCH=amd64 \
		go test -race -c -o "$tmp/flock.race.test.exe" .
	run_tests "$tmp/flock.race.test.exe"
fi
