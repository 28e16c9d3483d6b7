#!/bin/bash
# tests/integration/run-sanitized.sh - the whole integration suite against
# an AddressSanitizer + UndefinedBehaviorSanitizer build of outpolicyd and
# outpolicyctl (issue 10): every tests/integration/test_*.sh runs with
# OUTPOLICY_BUILD pointing at that build and IT_KEEP=1; then every file the
# test kept (daemon logs of both instances, outpolicyctl output, ...) and
# the test's own output are searched for sanitizer reports (ASan, LSan at
# exit, UBSan "runtime error:").  A test passes when it passed and no
# report was found; its scratch directory is then removed.
#
# Usage: tests/integration/run-sanitized.sh [BUILD-DIR] [TEST-NAME...]
#   BUILD-DIR   a configured and built "--enable-sanitizers" tree; default:
#               build one in $OUTPOLICY_BUILD_ROOT/asan-it (default
#               build-test/asan-it), a fresh copy of the working tree
#   TEST-NAME   e.g. test_dkim (default: every test_*.sh)
# Environment: ASAN_OPTIONS, UBSAN_OPTIONS, LSAN_OPTIONS override the
# defaults below; IT_TIMEOUT (default 900) bounds each test in seconds.
# Logs go to $OUTPOLICY_BUILD_ROOT/logs-sanitized/.  Prints one line per
# test and "N passed, N failed"; exits non-zero when any failed.
#
# Leak checking: LeakSanitizer runs when each outpolicyd exits (the tests
# stop it), with tests/fuzz/lsan.supp for libconfig's and libopendkim's own
# leaks.  fast_unwind_on_malloc=0 gives full allocation stacks, so that a
# suppression can match a library frame under OpenSSL (built without frame
# pointers); it makes allocation slower (roughly 3x per message).
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=${OUTPOLICY_BUILD_ROOT:-$SRC/build-test}
LOGS=$ROOT/logs-sanitized
TIMEOUT=${IT_TIMEOUT:-900}
RE='ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: AddressSanitizer|runtime error:|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)'
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=30}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$SRC/tests/fuzz/lsan.supp:print_suppressions=0}
mkdir -p "$LOGS"

BUILD=
if [ "$#" -gt 0 ] && [ -d "$1" ]; then
    BUILD=$(cd "$1" && pwd)
    shift
fi
if [ -z "$BUILD" ]; then
    BUILD=$ROOT/asan-it
    echo "building $BUILD (--enable-sanitizers)"
    rm -rf "$BUILD" && mkdir -p "$BUILD"
    if ! (cd "$SRC" && git ls-files -z -co --exclude-standard |
        xargs -0 cp --parents -t "$BUILD" && cd "$BUILD" && autoreconf -fi &&
        ./configure --enable-sanitizers && make -j"$(nproc)") >"$LOGS/build.log" 2>&1; then
        echo "FAIL build (see $LOGS/build.log)"
        echo "0 passed, 1 failed"
        exit 1
    fi
fi
if ! ldd "$BUILD/milter/outpolicyd" 2>/dev/null | grep -q libasan; then
    echo "FAIL $BUILD/milter/outpolicyd is not built with AddressSanitizer"
    echo "0 passed, 1 failed"
    exit 1
fi

tests=()
if [ "$#" -gt 0 ]; then
    for n in "$@"; do tests+=("$SRC/tests/integration/${n%.sh}.sh"); done
else
    tests=("$SRC"/tests/integration/test_*.sh)
fi

pass=0 fail=0 t0=$SECONDS
echo "sanitized integration run: build $BUILD, logs $LOGS"
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    log=$LOGS/$name.log
    start=$SECONDS
    IT_KEEP=1 OUTPOLICY_BUILD=$BUILD timeout -k 30 "$TIMEOUT" bash "$t" >"$log" 2>&1
    rc=$?
    secs=$((SECONDS - start))
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    # the scratch directories the test kept (the second instance is inside)
    mapfile -t dirs < <(sed -n 's/^\[it\] kept \(\/tmp\/outpolicy-it\.[A-Za-z0-9]*\)$/\1/p' "$log" | sort -u)
    reports=$(grep -caE -- "$RE" "$log")
    found=()
    for d in "${dirs[@]}"; do
        [ -d "$d" ] || continue
        while IFS= read -r f; do
            found+=("$f")
            reports=$((reports + $(grep -caE -- "$RE" "$f")))
        done < <(grep -rlaE --exclude-dir=sink --exclude-dir=queue --exclude-dir=rcv \
            --exclude-dir=swaks -- "$RE" "$d" 2>/dev/null)
    done
    if [ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]; then
        echo "ok   $name (${secs}s; ${summary:-no summary line})"
        pass=$((pass + 1))
        for d in "${dirs[@]}"; do rm -rf "$d"; done
    else
        fail=$((fail + 1))
        echo "FAIL $name (${secs}s; exit $rc; ${summary:-no summary line}; $reports sanitizer report line(s))"
        for f in "${found[@]}"; do
            echo "     report in $f:"
            grep -aE -A3 -- "ERROR: |runtime error:" "$f" | head -n 8 | sed 's/^/       /'
        done
        [ "$reports" -gt 0 ] && grep -aE -A3 -- "ERROR: |runtime error:" "$log" | head -n 8 | sed 's/^/       /'
        [ "$rc" -ne 0 ] && grep -E '^FAIL' "$log" | head -n 5 | sed 's/^/     /'
        echo "     kept: ${dirs[*]:-none}; output: $log"
    fi
done
echo "$((SECONDS - t0)) s in all"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
