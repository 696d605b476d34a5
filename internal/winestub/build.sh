#!/usr/bin/env bash
# Builds the Wine stand-in for bcryptprimitives.dll (see bcryptprimitives.c)
# into the directory given as $1 (default: a new temporary directory) and
# prints the DLL's path. Needs x86_64-w64-mingw32-gcc (Debian package
# gcc-mingw-w64-x86-64-win32).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$(mktemp -d)}
mkdir -p "$out"
x86_64-w64-mingw32-gcc -shared -O2 -Wall -Wextra -Werror -s \
	-o "$out/bcryptprimitives.dll" \
	"$here/bcryptprimitives.c" "$here/bcryptprimitives.def" -ladvapi32
echo "$out/bcryptprimitives.dll"
