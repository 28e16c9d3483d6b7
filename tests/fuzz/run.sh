#!/bin/sh
# tests/fuzz/run.sh - build the libFuzzer targets with clang (ASan+UBSan)
# and run each for a bounded time.  Usage: tests/fuzz/run.sh [SECONDS]
# (default 30 per target; FUZZ_OUT=dir for the build).  Exits non-zero
# when a target finds a crash; prints "N passed, N failed".
# shellcheck disable=SC2086  # DEPS, CFLAGS, LIBS are word lists
set -u
SECS=${1:-30}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${FUZZ_OUT:-$SRC/tests/fuzz/build}
mkdir -p "$OUT"
DEPS="libconfig libcrypto libssl opendkim libunbound libpsl"
CFLAGS="-g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$SRC -I$SRC/policy $(pkg-config --cflags $DEPS)"
LIBS="$(pkg-config --libs $DEPS) -lspf2 -lpthread"
POLICY="arena addrlist addr tlsver json verdict config config_schema events msg checks report check_submission_tls check_tls_required keys dkim dns spf dmarc check_spf check_dmarc canon arc arckey tlsmap maillog"
export LSAN_OPTIONS="suppressions=$SRC/tests/fuzz/lsan.supp:print_suppressions=0"
pass=0 fail=0
for t in config addr arc tlsmap dmarc maillog; do
    srcs=""
    for f in $POLICY; do srcs="$srcs $SRC/policy/$f.c"; done
    # shellcheck disable=SC2086
    if ! clang $CFLAGS -o "$OUT/fuzz_$t" "$SRC/tests/fuzz/fuzz_$t.c" $srcs $LIBS 2>"$OUT/fuzz_$t.build.log"; then
        echo "FAIL fuzz_$t: build failed (see $OUT/fuzz_$t.build.log)"
        fail=$((fail + 1))
        continue
    fi
    mkdir -p "$OUT/corpus_$t"
    if "$OUT/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=1024 \
        -artifact_prefix="$OUT/crash_$t-" "$OUT/corpus_$t" \
        "$SRC/tests/fuzz/corpus/$t" >"$OUT/fuzz_$t.log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs' "$OUT/fuzz_$t.log" | tail -1)
        echo "ok fuzz_$t: ${runs:-ran} in ${SECS}s, no crash"
        pass=$((pass + 1))
    else
        echo "FAIL fuzz_$t: crash or error; tail of $OUT/fuzz_$t.log:"
        tail -30 "$OUT/fuzz_$t.log"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
