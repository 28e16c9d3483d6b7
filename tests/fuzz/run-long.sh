#!/bin/bash
# tests/fuzz/run-long.sh - run every libFuzzer target of tests/fuzz for a
# long time each (default 1 hour), keeping the corpora between runs, and
# report crashes with a minimized input.
#
# Usage: tests/fuzz/run-long.sh [SECONDS-PER-TARGET] [TARGET...]
#   SECONDS-PER-TARGET  default 3600
#   TARGET              names as in tests/fuzz/run.sh (config, addr, arc,
#                       ...); default every tests/fuzz/fuzz_*.c
# Environment:
#   FUZZ_OUT      build directory (default tests/fuzz/build)
#   FUZZ_CORPUS   where the corpora are kept, one directory per target
#                 (default $FUZZ_OUT/long-corpus); tests/fuzz/corpus/TARGET
#                 seeds each run and is never written
#   FUZZ_FORK     N > 0: libFuzzer -fork=N with -ignore_crashes=1, i.e. N
#                 processes and the run goes on after a crash (default 0:
#                 one process, a target stops at its first crash)
#   FUZZ_RSS_MB   -rss_limit_mb (default 2048)
#
# The targets are built by tests/fuzz/run.sh itself (its clang flags, its
# target list), with a one-second run each.  Each crash or leak input is
# kept as $FUZZ_OUT/long-crash/TARGET-crash-* and minimized
# (-minimize_crash=1, at most 60 s) into a .min file beside it; add the
# minimized input to tests/fuzz/corpus/TARGET/ once the bug is fixed.
# Prints one line per target and "N passed, N failed"; exits non-zero when
# a target crashed (or did not build).
# shellcheck disable=SC2086  # FORK_ARGS is a word list
set -u
SECS=${1:-3600}
[ "$#" -gt 0 ] && shift
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${FUZZ_OUT:-$SRC/tests/fuzz/build}
CORPUS=${FUZZ_CORPUS:-$OUT/long-corpus}
CRASH=$OUT/long-crash
FORK=${FUZZ_FORK:-0}
RSS_MB=${FUZZ_RSS_MB:-2048}
export LSAN_OPTIONS="suppressions=$SRC/tests/fuzz/lsan.supp:print_suppressions=0"
mkdir -p "$OUT" "$CORPUS" "$CRASH"

case $SECS in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS-PER-TARGET] [TARGET...]" >&2
    exit 2
    ;;
esac

# build every target with run.sh's own logic (one second of fuzzing each)
echo "building the targets with tests/fuzz/run.sh in $OUT"
FUZZ_OUT=$OUT "$SRC/tests/fuzz/run.sh" 1 >"$OUT/long-build.log" 2>&1 ||
    echo "note: tests/fuzz/run.sh reported a failure (see $OUT/long-build.log)"
if [ "$#" -eq 0 ]; then
    # every target with a source file (one run.sh does not build fails)
    for f in "$SRC"/tests/fuzz/fuzz_*.c; do
        [ -e "$f" ] || continue
        f=${f##*/fuzz_}
        set -- "$@" "${f%.c}"
    done
fi
[ "$#" -gt 0 ] || { echo "no fuzz targets found" >&2; exit 2; }

FORK_ARGS=""
[ "$FORK" -gt 0 ] && FORK_ARGS="-fork=$FORK -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
pass=0 fail=0 t0=$SECONDS
for t in "$@"; do
    bin=$OUT/fuzz_$t
    if [ ! -x "$bin" ]; then
        echo "FAIL fuzz_$t: not built (see $OUT/fuzz_$t.build.log)"
        fail=$((fail + 1))
        continue
    fi
    mkdir -p "$CORPUS/$t"
    seeds=()
    [ -d "$SRC/tests/fuzz/corpus/$t" ] && seeds=("$SRC/tests/fuzz/corpus/$t")
    log=$OUT/long-$t.log
    : >"$log.start"     # crash inputs newer than this are this run's
    start=$SECONDS
    "$bin" -max_total_time="$SECS" -timeout=25 -rss_limit_mb="$RSS_MB" \
        -print_final_stats=1 -artifact_prefix="$CRASH/$t-" $FORK_ARGS \
        "$CORPUS/$t" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    runs=$(grep -oE '(Done [0-9]+ runs|stat::number_of_executed_units: *[0-9]+)' "$log" |
        tail -n 1 | grep -oE '[0-9]+$')
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
    size=$(find "$CORPUS/$t" -type f | wc -l)
    mapfile -t new < <(find "$CRASH" -name "$t-*" ! -name '*.min' ! -name '*.log' \
        -newer "$log.start" 2>/dev/null | sort)
    for a in "${new[@]}"; do
        # minimize what crashed (leaks and timeouts too); keep the original
        "$bin" -minimize_crash=1 -max_total_time=60 -timeout=25 \
            -exact_artifact_path="$a.min" "$a" >"$a.minimize.log" 2>&1
        [ -s "$a.min" ] || cp "$a" "$a.min"
    done
    line="${runs:-?} runs in $((SECONDS - start)) s, ${cov:-no coverage line}, corpus $size files"
    if [ "$rc" -eq 0 ] && [ "${#new[@]}" -eq 0 ]; then
        echo "ok   fuzz_$t: $line, no crash"
        pass=$((pass + 1))
    else
        echo "FAIL fuzz_$t: $line, exit $rc, ${#new[@]} crash input(s):"
        for a in "${new[@]}"; do
            echo "     $a ($(stat -c %s "$a") bytes; minimized: $a.min, $(stat -c %s "$a.min") bytes)"
        done
        grep -m1 -E 'ERROR: |runtime error|SUMMARY' "$log" | sed 's/^/     /'
        fail=$((fail + 1))
    fi
done
echo "corpora in $CORPUS; crash inputs in $CRASH; $((SECONDS - t0)) s in all"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
