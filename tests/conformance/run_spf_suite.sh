#!/usr/bin/env bash
# tests/conformance/run_spf_suite.sh - the RFC 7208 SPF test suite
# (../shared/testdata/spf-rfc7208/rfc7208-tests.yml) through libspf2 and
# outpolicy's DNS layer, each scenario's zone data served by a loopback
# unbound (see spf_suite.py for how the zones are built, spf_eval.c for
# the driver).
#
# Usage: tests/conformance/run_spf_suite.sh
# Environment: OUTPOLICY_BUILD (build tree with policy/libpolicy.la; default
# the repo root), OUTPOLICY_SHARED (default REPO/../shared), SPF_SUITE (the
# YAML file), SPF_SUITE_STRICT=1 (an unexpected pass of a listed expected
# failure fails the run), KEEP=1 (keep the scratch directory).
#
# Needs unbound, /usr/bin/python3 with python3-yaml, a C compiler and
# pkg-config (when make has not built tests/conformance/spf_eval).
# Prints a line per failing test and "N passed, N failed"; exits non-zero
# on a failure not listed in spf-expected-failures.txt.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-${OUTPOLICY_BUILD:-$SRC}}
BUILD=$(cd "$BUILD" && pwd)
SHARED=${OUTPOLICY_SHARED:-$SRC/../shared}
SUITE=${SPF_SUITE:-$SHARED/testdata/spf-rfc7208/rfc7208-tests.yml}
HERE=$SRC/tests/conformance
PY=/usr/bin/python3

fail() {
    echo "run_spf_suite: $*" >&2
    echo "0 passed, 1 failed"
    exit 2
}

[ -r "$SUITE" ] || fail "no suite at $SUITE (set OUTPOLICY_SHARED or SPF_SUITE)"
command -v unbound >/dev/null 2>&1 || fail "no unbound (Debian package unbound)"
"$PY" -c 'import yaml' 2>/dev/null || fail "$PY cannot import yaml (python3-yaml)"

WORK=$(mktemp -d /tmp/outpolicy-spfsuite.XXXXXX) || fail "mktemp failed"
cleanup() {
    local rc=$?
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "run_spf_suite: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT

# The driver: built by "make check" (check_PROGRAMS), else compiled here
# against the build tree's libpolicy, with pol_dns_query and
# SPF_request_query_mailfrom wrapped (see spf_eval.c).
DRIVER=$BUILD/tests/conformance/spf_eval
if [ ! -x "$DRIVER" ] || [ "$DRIVER" -ot "$HERE/spf_eval.c" ]; then
    LIB=$BUILD/policy/.libs/libpolicy.a
    [ -r "$LIB" ] || fail "no $LIB: build the project first (make)"
    DEPS="libconfig libcrypto libssl opendkim libunbound libpsl"
    DRIVER=$WORK/spf_eval
    # shellcheck disable=SC2046,SC2086  # DEPS and pkg-config output are word lists
    ${CC:-cc} -g -O1 -D_GNU_SOURCE -I"$SRC" -I"$SRC/policy" -I"$BUILD" \
        $(pkg-config --cflags $DEPS) -o "$DRIVER" "$HERE/spf_eval.c" "$LIB" \
        $(pkg-config --libs $DEPS) -lspf2 -lpthread -Wl,--wrap=pol_dns_query \
        -Wl,--wrap=SPF_request_query_mailfrom \
        >"$WORK/build.log" 2>&1 || fail "cannot build the driver: $(tail -n 5 "$WORK/build.log")"
fi

STRICT=()
[ "${SPF_SUITE_STRICT:-0}" = 1 ] && STRICT=(--strict)
"$PY" "$HERE/spf_suite.py" --driver "$DRIVER" --suite "$SUITE" \
    --xfail "$HERE/spf-expected-failures.txt" --work "$WORK" "${STRICT[@]}"
