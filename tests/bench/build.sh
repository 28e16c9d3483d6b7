#!/bin/sh
# tests/bench/build.sh [OUTDIR] - build miltload (no autotools needed).
# OUTDIR defaults to this directory; CC and CFLAGS are honoured.
set -e
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
${CC:-cc} ${CFLAGS:--O2 -g -Wall -Wextra} -pthread -o "$out/miltload" "$here/miltload.c"
echo "$out/miltload"
