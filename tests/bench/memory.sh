#!/bin/bash
# tests/bench/memory.sh - RSS of a milter while a 1 KB, a 1 MB and a 50 MB
# message pass (sent straight to the milter with miltload, 3 of each, one
# connection).  The body is streamed, never buffered: RSS must stay flat.
#
# usage: memory.sh [MODE...]   (default: full opendkim; MODEs as pipeline.sh)
# Prints, per size: RSS before, peak RSS while the messages passed (VmHWM
# after resetting it with clear_refs), RSS after.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/benchlib.sh"
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(full opendkim)
b_init
MILTLOAD=$B_DIR/miltload
CFLAGS="-O2" "$HERE/build.sh" "$B_DIR" >/dev/null || b_die "cannot build miltload"
for s in 1024 1048576 52428800; do b_mkmsg "$s" "$B_DIR/msg/$s.eml"; done
echo "| milter | message | RSS before MB | peak RSS MB | RSS after MB | hdrs/msg | status |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for mode in "${MODES[@]}"; do
    b_milter_start "$mode"
    "$MILTLOAD" -s "$B_MILTER_SOCK" -m "$B_DIR/msg/1024.eml" -n 20 -c 2 >/dev/null # warm-up
    for s in 1024 1048576 52428800; do
        b_milter_refresh_pids
        before=$(b_rss_kb "${B_MILTER_PIDS[@]}")
        for p in "${B_MILTER_PIDS[@]}"; do echo 5 >"/proc/$p/clear_refs"; done
        out=$("$MILTLOAD" -s "$B_MILTER_SOCK" -m "$B_DIR/msg/$s.eml" -n 3 -c 1 -T 120 2>&1 | tail -n 1)
        peak=$(b_hwm_kb "${B_MILTER_PIDS[@]}")
        after=$(b_rss_kb "${B_MILTER_PIDS[@]}")
        case $out in RESULT*) st=valid ;; *) st="INVALID: ${out:0:100}" ;; esac
        label=$([ "$s" -ge 1048576 ] && echo "$((s / 1048576)) MB" || echo "$((s / 1024)) KB")
        printf '| %s | %s | %.1f | %.1f | %.1f | %s | %s |\n' "$mode" "$label" \
            "$(echo "$before / 1024" | bc -l)" "$(echo "$peak / 1024" | bc -l)" \
            "$(echo "$after / 1024" | bc -l)" \
            "$(sed -n 's/.* hdr_actions_per_msg=\([^ ]*\).*/\1/p' <<<"$out")" "$st"
    done
    b_milter_stop
done
