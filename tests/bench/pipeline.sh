#!/bin/bash
# tests/bench/pipeline.sh - end-to-end milter benchmark on a private Postfix
#
#   smtp-source -> private Postfix on loopback (smtpd_milters = the milter,
#   milter_default_action = tempfail) -> smtp-sink
#
# usage: pipeline.sh [options] MODE...      (MODE "all" = every mode)
#   MODEs: none opendkim opendkim-inet rspamd rspamd-inet
#          dkim dkim-inet dkim+arc dkim+arc-inet full full-inet
#          (dkim, dkim+arc, full are outpolicyd profiles; -inet = the milter
#          listens on inet:PORT@127.0.0.1 instead of a unix socket)
#   -n N       messages per run with more than one session (default 5000)
#   -1 N1      messages per run with one session (default N/10, >= 100)
#   -r RUNS    runs per point: median, min, max (default 3)
#   -b SIZES   body sizes in bytes, comma-separated (default 4096,102400)
#   -s LIST    concurrent SMTP sessions, comma-separated (default 10,1)
#   -q         quick look: -n 1000 -r 1 -b 4096
#   -o FILE    also append the result rows (TSV) to FILE
#
# One point = MODE x body size x sessions.  A run sends N messages with
# smtp-source (one message per SMTP session, so one milter connection per
# message, as most submission clients do) and ends when Postfix has logged N
# "status=sent"; it is VALID only if smtp-source succeeded, the sink received
# exactly N messages and Postfix logged exactly N status=sent and no
# reject/defer/bounce.  An invalid run is never reported as a speed.
#
# Reported per point: end-to-end msgs/s (median of RUNS, min, max), milter
# CPU ms per message (utime+stime of the milter processes, threads and
# rspamd's workers included, from /proc, before/after each run; median),
# peak RSS of the milter processes during the point (VmHWM after resetting
# it with clear_refs), and the load average before the point (other work on
# the machine skews figures: look at it).
#
# Before the measured runs of a mode, miltload sends one message straight to
# the milter and checks the header actions that come back (DKIM-Signature;
# + 3 ARC headers for rspamd, dkim+arc and full), and 50 warm-up messages go
# through Postfix (SPF/DMARC cache warm, processes forked).
#
# Environment: OUTPOLICY_BUILD=DIR (where milter/outpolicyd was built;
# default the repo root), B_KEEP=1 keeps the scratch directory.
# Duration: see BENCHMARKS.md (a default run of one mode takes minutes; -q
# is for trying).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/benchlib.sh"

N=5000 N1='' RUNS=3 SIZES=4096,102400 SESSIONS=10,1 OUT=''
while getopts "n:1:r:b:s:qo:h" o; do
    case $o in
    n) N=$OPTARG ;;
    1) N1=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    b) SIZES=$OPTARG ;;
    s) SESSIONS=$OPTARG ;;
    q) N=1000 RUNS=1 SIZES=4096 ;;
    o) OUT=$OPTARG ;;
    *) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: pipeline.sh [-n N] [-1 N1] [-r RUNS] [-b SIZES] [-s LIST] [-q] [-o FILE] MODE..." >&2; exit 2; }
[ -n "$N1" ] || N1=$((N / 10 < 100 ? 100 : N / 10))
MODES=()
for m in "$@"; do
    if [ "$m" = all ]; then read -r -a ALL <<<"$B_ALL_MODES"; MODES+=("${ALL[@]}"); else MODES+=("$m"); fi
done

b_init
b_keys
b_sink_start
MILTLOAD=$B_DIR/miltload
CC=${CC:-cc} CFLAGS="-O2" "$HERE/build.sh" "$B_DIR" >/dev/null || b_die "cannot build miltload"

IFS=, read -r -a SIZE_LIST <<<"$SIZES"
IFS=, read -r -a SESS_LIST <<<"$SESSIONS"
for s in "${SIZE_LIST[@]}"; do b_mkmsg "$s" "$B_DIR/msg/$s.eml"; done
RESULTS=$B_DIR/results.tsv
printf 'mode\tbody\tsessions\tmsgs\truns\tmedian_mps\tmin_mps\tmax_mps\tcpu_ms_per_msg\tpeak_rss_kb\tload\tstatus\trates\n' >"$RESULTS"

now() { date +%s.%N; }

# expected header actions per message, for the sanity check
expect_hdrs()
{
    case $1 in
    none) echo 0 ;;
    opendkim* | dkim | dkim-inet) echo 1 ;;
    *) echo 4 ;;
    esac
}

sanity_check()
{
    local mode=$1 out want
    [ "$mode" = none ] && return 0
    want=$(expect_hdrs "$mode")
    out=$("$MILTLOAD" -s "$B_MILTER_SOCK" -m "$B_DIR/msg/${SIZE_LIST[0]}.eml" -n 1 -c 1 -T 20 2>&1)
    case $out in
    RESULT*"hdr_actions_per_msg=$want.00"*) b_log "$mode: milter answers, adds $want header(s)" ;;
    *) b_log "$mode: sanity check failed (want $want header actions): $out"; return 1 ;;
    esac
}

# wait_sent TARGET TIMEOUT - until Postfix logged TARGET status=sent in total
sent_reached() { [ "$(b_sent_count)" -ge "$1" ]; }

# run_once SIZE SESSIONS COUNT - prints "rate cpu_ms status"
run_once()
{
    local size=$1 sess=$2 count=$3 sent0 sink0 cpu0 cpu1 t0 t1 rc st=VALID
    local log=$B_DIR/postfix/maillog lines0 bad
    b_milter_refresh_pids
    sent0=$(b_sent_count)
    sink0=$(b_sink_count)
    lines0=$(wc -l <"$log")
    cpu0=$(b_cpu_ticks "${B_MILTER_PIDS[@]}")
    t0=$(now)
    timeout $((60 + count)) smtp-source -s "$sess" -m "$count" -M client.bench.example \
        -f "$B_FROM" -t "$B_RCPT" -F "$B_DIR/msg/$size.eml" "127.0.0.1:$B_SMTP_PORT" \
        >"$B_DIR/source.log" 2>&1
    rc=$?
    # a failed smtp-source will not be followed by the missing deliveries
    if [ "$rc" -eq 0 ]; then
        it_wait_for 60 sent_reached $((sent0 + count)) >/dev/null
    else
        it_wait_for 5 sent_reached $((sent0 + count)) >/dev/null
    fi
    t1=$(now)
    b_milter_refresh_pids
    cpu1=$(b_cpu_ticks "${B_MILTER_PIDS[@]}")
    sleep 0.3 # the sink's counter line is written after its reply
    local sent=$(($(b_sent_count) - sent0)) sink=$(($(b_sink_count) - sink0))
    bad=$(tail -n +"$((lines0 + 1))" "$log" | grep -cE 'milter-reject|status=(deferred|bounced)|warning: milter|fatal')
    if [ "$rc" -ne 0 ] || [ "$sent" -ne "$count" ] || [ "$sink" -ne "$count" ] || [ "$bad" -ne 0 ]; then
        st="INVALID(source_rc=$rc,sent=$sent,sink=$sink,errors=$bad)"
        b_log "invalid run: $st; $(tail -n 2 "$B_DIR/source.log" | tr '\n' ' ')"
        tail -n +"$((lines0 + 1))" "$log" | grep -E 'milter|status=(deferred|bounced)|fatal' | head -n 3 >&2
    fi
    awk -v n="$count" -v a="$t0" -v b="$t1" -v c0="$cpu0" -v c1="$cpu1" -v hz="$B_CLK_TCK" -v st="$st" \
        'BEGIN { printf "%.1f %.3f %s\n", n / (b - a), (c1 - c0) * 1000 / hz / n, st }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2); else print "-" }'; }

T_START=$(date +%s)
for mode in "${MODES[@]}"; do
    b_log "=== mode $mode"
    b_milter_start "$mode"
    b_postfix_start "${B_MILTER_POSTFIX:-}"
    if ! sanity_check "$mode"; then
        printf '%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\tINVALID(sanity)\t-\n' "$mode" >>"$RESULTS"
        b_postfix_stop
        b_milter_stop
        continue
    fi
    # warm-up: processes forked, caches filled; not measured
    run_once "${SIZE_LIST[0]}" 5 50 >/dev/null
    for size in "${SIZE_LIST[@]}"; do
        for sess in "${SESS_LIST[@]}"; do
            if ! b_milter_alive; then
                b_log "$mode: the milter is gone; skipping the rest of this mode"
                printf '%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\tINVALID(milter gone)\t-\n' \
                    "$mode" "$size" "$sess" >>"$RESULTS"
                continue
            fi
            count=$N
            [ "$sess" -eq 1 ] && count=$N1
            load=$(cut -d' ' -f1 /proc/loadavg)
            b_milter_refresh_pids
            for p in "${B_MILTER_PIDS[@]}"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null; done
            rates=() cpus=() status=VALID
            for ((r = 1; r <= RUNS; r++)); do
                read -r rate cpu st < <(run_once "$size" "$sess" "$count")
                b_log "$mode body=$size sessions=$sess run $r: $rate msgs/s, milter cpu $cpu ms/msg, $st"
                rates+=("$rate")
                cpus+=("$cpu")
                if [ "$st" != VALID ]; then
                    status=$st
                    break # an invalid run ends the point: no speed from it
                fi
            done
            b_milter_refresh_pids
            hwm=$(b_hwm_kb "${B_MILTER_PIDS[@]}")
            if [ "$status" = VALID ]; then
                med=$(printf '%s\n' "${rates[@]}" | median)
                mn=$(printf '%s\n' "${rates[@]}" | sort -g | head -n 1)
                mx=$(printf '%s\n' "${rates[@]}" | sort -g | tail -n 1)
                cpu=$(printf '%s\n' "${cpus[@]}" | median)
            else
                med=- mn=- mx=- cpu=-
            fi
            [ "$mode" = none ] && cpu=- hwm=-
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$size" "$sess" \
                "$count" "$RUNS" "$med" "$mn" "$mx" "$cpu" "$hwm" "$load" "$status" \
                "$(IFS=,; echo "${rates[*]}")" >>"$RESULTS"
        done
    done
    if [ "$B_MILTER_KIND" = outpolicyd ] && [ -f "$B_DIR/outpolicyd/events/events.json" ]; then
        b_log "$mode: $(wc -l <"$B_DIR/outpolicyd/events/events.json") event lines written"
    fi
    b_postfix_stop
    b_milter_stop
    rm -rf "$B_DIR/postfix"
done
T_END=$(date +%s)

[ -n "$OUT" ] && tail -n +2 "$RESULTS" >>"$OUT"
echo
echo "| mode | body | sessions | msgs | msgs/s median (min-max) | milter CPU ms/msg | peak RSS MB | load | status |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
tail -n +2 "$RESULTS" | awk -F'\t' '{
    rss = ($10 ~ /^[0-9]+$/) ? sprintf("%.1f", $10 / 1024) : "-"
    rng = ($6 == "-") ? "-" : sprintf("%s (%s-%s)", $6, $7, $8)
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, ($2 >= 1024 ? int($2 / 1024) " KB" : $2), $3, $4, rng, $9, rss, $11, ($12 == "VALID" ? "valid" : $12)
}'
echo
echo "wall time: $((T_END - T_START)) s; raw rows: $RESULTS (kept with B_KEEP=1; -o FILE copies them)"
