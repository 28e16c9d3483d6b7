#!/bin/bash
# tests/bench/miltload.sh - the milters alone, without Postfix: miltload
# replays the same messages at each milter's socket.
#
# usage: miltload.sh [-n N] [-1 N1] [-b SIZES] [-c LIST] [MODE...]
#   MODEs as in pipeline.sh except none (default: opendkim opendkim-inet
#   rspamd dkim dkim-inet dkim+arc full full-inet)
#   -n N      messages per point with more than one connection (default 3000)
#   -1 N1     messages per point with one connection (default 300)
#   -b SIZES  body sizes, comma-separated (default 4096,102400)
#   -c LIST   concurrent milter connections (default 10,1)
# One message per milter connection (as Postfix does for one message per SMTP
# session).  Reports msgs/s, p50/p99/max latency per message, and the milter's
# CPU ms per message (utime+stime from /proc).  Bounded: every read/write
# times out after 30 s and N caps every point.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/benchlib.sh"
N=3000 N1=300 SIZES=4096,102400 CONC=10,1
while getopts "n:1:b:c:h" o; do
    case $o in
    n) N=$OPTARG ;; 1) N1=$OPTARG ;; b) SIZES=$OPTARG ;; c) CONC=$OPTARG ;;
    *) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(opendkim opendkim-inet rspamd dkim dkim-inet dkim+arc full full-inet)
b_init
MILTLOAD=$B_DIR/miltload
CFLAGS="-O2" "$HERE/build.sh" "$B_DIR" >/dev/null || b_die "cannot build miltload"
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
IFS=, read -r -a CONC_LIST <<<"$CONC"
for s in "${SIZE_LIST[@]}"; do b_mkmsg "$s" "$B_DIR/msg/$s.eml"; done
echo "| milter | body | conn | msgs | msgs/s | p50 ms | p99 ms | max ms | milter CPU ms/msg | hdrs/msg | status |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for mode in "${MODES[@]}"; do
    b_milter_start "$mode"
    "$MILTLOAD" -s "$B_MILTER_SOCK" -m "$B_DIR/msg/${SIZE_LIST[0]}.eml" -n 50 -c 2 >/dev/null # warm-up
    for size in "${SIZE_LIST[@]}"; do
        for c in "${CONC_LIST[@]}"; do
            n=$N
            [ "$c" -eq 1 ] && n=$N1
            b_milter_refresh_pids
            c0=$(b_cpu_ticks "${B_MILTER_PIDS[@]}")
            out=$("$MILTLOAD" -s "$B_MILTER_SOCK" -m "$B_DIR/msg/$size.eml" -n "$n" -c "$c" 2>&1 | tail -n 1)
            b_milter_refresh_pids
            c1=$(b_cpu_ticks "${B_MILTER_PIDS[@]}")
            get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$out"; }
            st=valid
            case $out in RESULT*) ;; *) st="INVALID: ${out:0:120}" ;; esac
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$mode" \
                "$((size / 1024)) KB" "$c" "$(get msgs)" "$(get rate)" "$(get p50_ms)" \
                "$(get p99_ms)" "$(get max_ms)" \
                "$(awk -v a="$c0" -v b="$c1" -v hz="$B_CLK_TCK" -v n="$n" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }')" \
                "$(get hdr_actions_per_msg)" "$st"
        done
    done
    b_milter_stop
done
