#!/bin/bash
# tests/run.sh - the one test entry point (CI runs it through .ci/run).
#
# Installs missing dependencies (as root), builds from scratch in
# $OUTPOLICY_BUILD_ROOT (default ./build-test), runs the unit tests in a
# normal build, under ASan+UBSan and with --disable-milter, runs the fuzz
# targets for a bounded time, make distcheck, then every integration test
# (real Postfix on loopback).  Prints each step, then one line
# "N passed, N failed"; exits non-zero on any failure.
#
# Environment: FUZZ_SECONDS (default 20 per target), SKIP_DISTCHECK=1,
# SKIP_LOAD=1, SKIP_SANITIZED=1,
# ONLY_INTEGRATION=test_name (run just that integration test).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${OUTPOLICY_BUILD_ROOT:-$SRC/build-test}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
LOGS=$ROOT/logs
pass=0
fail=0
failed_steps=""

step() { # step NAME CMD... : run, log, count
    local name=$1 t0=$SECONDS
    shift
    if "$@" >"$LOGS/$name.log" 2>&1; then
        pass=$((pass + 1))
        echo "ok   $name ($((SECONDS - t0))s)"
    else
        fail=$((fail + 1))
        failed_steps="$failed_steps $name"
        echo "FAIL $name ($((SECONDS - t0))s); last lines of $LOGS/$name.log:"
        tail -40 "$LOGS/$name.log" | sed 's/^/    /'
    fi
}

copy_tree() { # copy_tree DEST: the working tree (tracked + untracked, not ignored)
    rm -rf "$1" && mkdir -p "$1"
    if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$SRC" && git ls-files -z -co --exclude-standard) |
            (cd "$SRC" && xargs -0 cp --parents -t "$1" 2>/dev/null)
    else
        (cd "$SRC" && tar --exclude=./build-test -cf - .) | tar -C "$1" -xf -
    fi
}

build() { # build NAME CONFIGURE-ARGS...: fresh tree, configure, make
    local dir=$ROOT/$1
    shift
    copy_tree "$dir" &&
        cd "$dir" && autoreconf -fi && ./configure --enable-werror "$@" &&
        make -j"$(nproc)"
}

unit() { # unit NAME: make check in that build; show Check's summary
    # libconfig 1.5 leaks a scanner buffer on some syntax errors (not ours)
    export LSAN_OPTIONS="suppressions=$SRC/tests/fuzz/lsan.supp:print_suppressions=0"
    export ASAN_OPTIONS="fast_unwind_on_malloc=0:detect_leaks=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    cd "$ROOT/$1" && make -j"$(nproc)" check
    local rc=$?
    grep -E '^[0-9]+%: Checks' "$ROOT/$1/tests/unit/test_policy.log" 2>/dev/null
    return $rc
}

distcheck() {
    cd "$ROOT/release" && make -j"$(nproc)" distcheck
}

# test data written by others lives beside the project (never copied in)
if [ -z "${OUTPOLICY_SHARED:-}" ]; then
    for d in "$SRC/../shared" /work/shared; do
        [ -d "$d/testdata" ] && OUTPOLICY_SHARED=$(cd "$d" && pwd) && break
    done
fi
if [ ! -d "${OUTPOLICY_SHARED:-/nonexistent}/testdata" ]; then
    echo "FAIL: shared test data not found (../shared); set OUTPOLICY_SHARED"
    echo "0 passed, 1 failed"
    exit 1
fi
export OUTPOLICY_SHARED
mkdir -p "$LOGS"
echo "outpolicy tests: build root $ROOT"
if ! "$SRC/contrib/install-deps.sh" >"$LOGS/install-deps.log" 2>&1; then
    echo "FAIL install-deps (see $LOGS/install-deps.log)"
    tail -20 "$LOGS/install-deps.log"
    echo "0 passed, 1 failed"
    exit 1
fi

if [ -z "${ONLY_INTEGRATION:-}" ]; then
    step build-release build release
    step unit-release unit release
    step build-asan build asan --enable-sanitizers
    step unit-asan unit asan
    step build-nomilter build nomilter --disable-milter
    step unit-nomilter unit nomilter
    step fuzz env FUZZ_OUT="$ROOT/fuzz" "$SRC/tests/fuzz/run.sh" "$FUZZ_SECONDS"
    [ "${SKIP_DISTCHECK:-0}" = 1 ] || step distcheck distcheck
    (cd "$ROOT/release" && make -j"$(nproc)" tests/conformance/spf_eval) >"$LOGS/build-conformance.log" 2>&1
    for c in "$SRC"/tests/conformance/run_*_suite.sh; do
        [ -e "$c" ] || continue
        name=$(basename "$c" .sh)
        step "conformance-${name#run_}" bash "$c" "$ROOT/release"
        grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGS/conformance-${name#run_}.log" | tail -1 | sed 's/^/     /'
    done
else
    [ -x "$ROOT/release/milter/outpolicyd" ] || step build-release build release
fi

if [ -z "${ONLY_INTEGRATION:-}" ] && [ "${SKIP_LOAD:-0}" != 1 ]; then
    # a short run of the reliability load (the full 20,000-message run and
    # its figures: docs/reliability.md)
    step reliability-load env OUTPOLICY_BUILD="$ROOT/release" bash "$SRC/tests/reliability/load.sh" -n 2000 -c 10
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGS/reliability-load.log" | tail -1 | sed 's/^/     /'
fi

for t in "$SRC"/tests/integration/test_*.sh; do
    name=$(basename "$t" .sh)
    [ -n "${ONLY_INTEGRATION:-}" ] && [ "$name" != "$ONLY_INTEGRATION" ] && continue
    step "integration-$name" env OUTPOLICY_BUILD="$ROOT/release" bash "$t"
    grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGS/integration-$name.log" | tail -1 | sed 's/^/     /'
done

if [ -z "${ONLY_INTEGRATION:-}" ]; then
    # the integration suite again against the ASan+UBSan build, every
    # daemon log searched for sanitizer reports
    if [ "${SKIP_SANITIZED:-0}" != 1 ]; then
        step integration-sanitized env OUTPOLICY_BUILD_ROOT="$ROOT" \
            "$SRC/tests/integration/run-sanitized.sh" "$ROOT/asan"
        grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGS/integration-sanitized.log" | tail -1 | sed 's/^/     /'
    fi
    # one valgrind memcheck run of outpolicyd: 200 messages, DKIM + ARC
    step valgrind env OUTPOLICY_BUILD="$ROOT/release" bash "$SRC/tests/hostile/run-valgrind.sh" 200
fi

[ -n "$failed_steps" ] && echo "failed steps:$failed_steps"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
