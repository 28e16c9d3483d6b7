#!/bin/sh
# tests/bench/build.sh [OUTDIR] - build miltload and keycost (no autotools
# needed).  OUTDIR defaults to this directory; CC and CFLAGS are honoured.
# keycost needs libopendkim-dev and libssl-dev; it is skipped without them.
set -e
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
cflags=${CFLAGS:--O2 -g -Wall -Wextra}
${CC:-cc} $cflags -pthread -o "$out/miltload" "$here/miltload.c"
echo "$out/miltload"
if [ -r /usr/include/opendkim/dkim.h ]; then
    ${CC:-cc} $cflags -o "$out/keycost" "$here/keycost.c" -lopendkim -lcrypto
    echo "$out/keycost"
fi
