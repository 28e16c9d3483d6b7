#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/reliability/load.sh - load, crash-and-restart and reload-under-load
# reliability test of outpolicyd on the private Postfix harness (issue 10).
#
# usage: load.sh [-n N] [-c CONC] [-r M] [-p PHASES] [-R MB] [-H HUPS]
#   -n N       messages in the load phase (default 20000)
#   -c CONC    concurrent SMTP sessions (default 20, at least 6)
#   -r M       messages in the crash and in the reload phase (default N/4,
#              at least 200)
#   -p PHASES  comma-separated subset of load,crash,reload (default all)
#   -R MB      bound on outpolicyd's RSS growth, peak - start, per phase
#              (default 256)
#   -H HUPS    SIGHUPs in the reload phase, half of them with a broken
#              config (default 50)
# Run as root from the source tree; OUTPOLICY_BUILD=DIR names the build
# (milter/outpolicyd, ctl/outpolicyctl).  IT_KEEP=1 keeps the scratch dir.
# Quick CI variant: load.sh -n 2000 -c 10.
#
# What runs (all on loopback):
#   smtp-source batches -> Postfix "gateway" (smtpd_milters = outpolicyd,
#   milter_default_action = tempfail) -> smtp-sink; the crash phase puts a
#   second, milter-less Postfix ("front", a queueing client) before it.
#   outpolicyd signs with DKIM (RSA-2048 + Ed25519 for rsa-ed.example,
#   RSA for rsa.example, nothing for nokey.example), seals every message
#   with ARC (arc.key, i=1), checks SPF for egress 192.0.2.10 against a
#   loopback unbound (pass, pass through include:, none -> warn) and
#   predicts DMARC; Postfix asks its TLS policy socketmap for every
#   delivery.  Six concurrent smtp-source batches mix body sizes 1 KB,
#   1 KB, 10 KB, 100 KB, 1 MB and 5 MB (35/20/25/14/4.5/1.5 % of messages)
#   and the three signing paths; each batch names itself in its Message-Ids
#   (smtp-source -M bN.PHASE.rel).
#
#   The sink's dump files are summarised (Message-Id, DKIM d=/a=/x=, ARC
#   sets) and deleted as they complete by sinkreap.py, which keeps a small
#   sample; the samples are verified with ../shared/tools/mailauth-verify
#   (dkimpy).  relcheck.py joins Postfix's log and the sink manifest.
#
# Phases and what each asserts:
#   load    N messages: every message accepted (no client-visible error),
#           each accepted message delivered exactly once (Postfix status=sent
#           = sink files = distinct Message-Ids, none missing), every one
#           carrying the configured DKIM signatures and an ARC set; sample
#           verified by dkimpy; outpolicyd RSS start/peak/end printed and
#           peak - start < -R MB; open fds with Postfix stopped equal before
#           and after.
#   crash   M messages through the front Postfix; outpolicyd is killed with
#           SIGKILL once a third has arrived, restarted 3 s later; the
#           front's deferred mail is flushed (postqueue -f) until every
#           message arrived (bounded): each delivered exactly once, none
#           unsigned; the kill must have hit mail (deferrals counted).
#   reload  M messages straight to the gateway, plus a 2-session filler of
#           1 KB messages that runs until the last SIGHUP (so every reload
#           meets mail in flight), while 50 SIGHUPs arrive, the even ones
#           with a broken config (unknown key, syntax error, out-of-range
#           value): no message fails (no milter-reject, no milter warning,
#           no client error), 25 "reload refused: FILE:LINE: ..." and 25
#           "reloaded configuration" lines, each good config took effect
#           (dkim.expire = 100000 + k shows in x= - t=; mail sent after the
#           last SIGHUP carries k = 25), idle fds unchanged, RSS peak -
#           start < -R MB.
#
# Scratch space: the sink never holds more than the messages in flight
# plus the samples (tens of MB); Postfix's log and the events file grow by
# about 0.8 and 1.8 KB per message.  Figures are printed at the end.
# Ends with "N passed, N failed".
set -u
HERE=$(cd "$(dirname "$0")" && pwd)

N=20000
CONC=20
M=
PHASES=load,crash,reload
RSS_BOUND_MB=256
HUPS=50
while getopts "n:c:r:p:R:H:h" o; do
    case $o in
        n) N=$OPTARG ;;
        c) CONC=$OPTARG ;;
        r) M=$OPTARG ;;
        p) PHASES=$OPTARG ;;
        R) RSS_BOUND_MB=$OPTARG ;;
        H) HUPS=$OPTARG ;;
        *)
            sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'
            exit 2
            ;;
    esac
done
case "$N$CONC${M:-0}$RSS_BOUND_MB$HUPS" in *[!0-9]*) echo "load.sh: numbers expected" >&2; exit 2 ;; esac
[ "$CONC" -ge 6 ] || { echo "load.sh: -c must be at least 6 (one session per batch)" >&2; exit 2; }
if [ $((HUPS % 2)) != 0 ] || [ "$HUPS" -lt 2 ]; then echo "load.sh: -H must be even" >&2; exit 2; fi
[ "$N" -ge 100 ] || { echo "load.sh: -n must be at least 100" >&2; exit 2; }
[ -n "$M" ] || M=$((N / 4))
[ "$M" -ge 200 ] || M=200
phase_on() { case ",$PHASES," in *",$1,"*) return 0 ;; esac; return 1; }

# shellcheck source=../integration/lib.sh
. "$HERE/../integration/lib.sh"

it_init reliability
T_START=$SECONDS
VERIFY=$SHARED/tools/mailauth-verify
it_need_ctl
command -v smtp-source >/dev/null 2>&1 || it_die "no smtp-source (Debian: postfix)"
command -v unbound >/dev/null 2>&1 || it_die "no unbound (Debian: unbound)"

CONF=$IT_DIR/outpolicyd.conf
KEYDIR=$IT_DIR/keys
KEYZONE=$IT_DIR/keys.zone
TSOCK=$IT_RUN/tlspolicy.sock
REL=$IT_DIR/rel            # reaper output, figures, batch logs
EGRESS=192.0.2.10
SRVID=mx.outpolicy.example
EXPECT="rsa-ed.example=rsa-ed.example:rsa-sha256+rsa-ed.example:ed25519-sha256;rsa.example=rsa.example:rsa-sha256;nokey.example="
EXPIRE0=100000             # dkim.expire; reload k sets EXPIRE0 + k
mkdir -p "$KEYDIR" "$REL/batch"
chmod 755 "$KEYDIR"
: >"$KEYZONE"
FIG=$REL/figures.txt
: >"$FIG"
REL_BG=()                  # background PIDs started here (reaper, sampler)
BATCH_PIDS=()

# fig TEXT - a figure line: printed and kept for the summary
fig()
{
    printf '    %s\n' "$*"
    printf '%s\n' "$*" >>"$FIG"
}

# ------------------------------------------------------------ keys and DNS

# mk_key ID DOMAIN SELECTOR ALG - outpolicyctl keygen; record into KEYZONE
mk_key() { it_mk_key "$KEYDIR" "$KEYZONE" "$@"; }

# key ID DOMAIN SELECTOR ALG - one keys entry
key() { it_key_entry "$KEYDIR" "$@"; }

mk_key rsaed-r rsa-ed.example r1 rsa
mk_key rsaed-e rsa-ed.example e1 ed25519
mk_key rsa rsa.example r1 rsa
mk_key seal gw.example arc1 rsa
it_check "keys: four keys written, mode 600" \
    test "$(stat -c %a "$KEYDIR"/*.pem | sort -u)" = 600

it_dns_zone \
    "rsa-ed.example. 3600 IN TXT \"v=spf1 ip4:$EGRESS -all\"" \
    '_dmarc.rsa-ed.example. 3600 IN TXT "v=DMARC1; p=reject"' \
    'rsa.example. 3600 IN TXT "v=spf1 include:_spf.rsa.example -all"' \
    '_spf.rsa.example. 3600 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"' \
    '_dmarc.rsa.example. 3600 IN TXT "v=DMARC1; p=quarantine"' \
    'nokey.example. 3600 IN A 192.0.2.99'
it_dns_zone -f "$KEYZONE"
it_dns_start || it_die "the loopback DNS server did not start"

# ------------------------------------------------------------ config

# config EXPIRE [OVERLAY...] - the daemon config (atomically replaced)
config()
{
    local expire=$1
    shift
    it_daemon_config "$CONF" \
        'daemon.log_level=1' \
        'daemon.shutdown_timeout=10' \
        'submission_tls.exempt_hosts=[ "127.0.0.1" ]' \
        'events.buffer=true' \
        "dns.nameservers=[ \"127.0.0.1@$IT_DNS_PORT\" ]" \
        'dns.timeout=5' \
        "egress.ips=[ \"$EGRESS\" ]" \
        "keys=( $(key rsaed-r rsa-ed.example r1 rsa-sha256), $(key rsaed-e rsa-ed.example e1 ed25519-sha256), $(key rsa rsa.example r1 rsa-sha256), $(key seal gw.example arc1 rsa-sha256) )" \
        'dkim.signing=( { from = "rsa-ed.example"; keys = [ "rsaed-r", "rsaed-e" ]; }, { from = "rsa.example"; keys = [ "rsa" ]; } )' \
        'dkim.on_no_key="accept"' \
        "dkim.expire=$expire" \
        'arc.enabled=true' \
        "arc.authserv_id=\"$SRVID\"" \
        'arc.key="seal"' \
        "tls_policy.socket=\"unix:$TSOCK\"" \
        "tls_policy.destinations=( { match = \"[127.0.0.1]:$IT_SINK_PORT\"; policy = \"may\"; } )" \
        'tls_policy.events=true' \
        "$@"
}

# ------------------------------------------------------------ processes

it_sink_start
# the reaper summarises and deletes what the sink wrote
"$IT_PY" "$HERE/sinkreap.py" "$IT_DIR/sink" "$IT_SINK_PID" "$REL" "$$" 2 500 \
    >>"$REL/reaper.log" 2>&1 &
REAPER_PID=$!
REL_BG+=("$REAPER_PID")

config "$EXPIRE0"
it_check "config: outpolicyctl check-config accepts it" "$CTL" check-config "$CONF"
it_daemon_start "$CONF" || it_die "outpolicyd did not start"
it_postconf "smtp_tls_policy_maps=socketmap:unix:$TSOCK:tlspolicy" \
    "smtpd_client_connection_count_limit=0" \
    "smtpd_client_connection_rate_limit=0" \
    "smtpd_client_message_rate_limit=0"
IT_MILTER="unix:$IT_SOCK" it_postfix_start

if phase_on crash; then
    # the front instance: no milter, relays everything to the gateway and
    # keeps what the gateway defers (a real client's queue)
    it_second_init
    it_second it_postconf "relayhost=[127.0.0.1]:$IT_SMTP_PORT" \
        "smtpd_client_connection_count_limit=0"
    IT_MILTER='' it_second it_postfix_start
fi

# the sampler: outpolicyd's RSS, threads and fds every 0.5 s
rel_sampler()
{
    local pid rss thr fds end=$((SECONDS + 6 * 3600))
    while [ ! -e "$REL/sampler.stop" ] && [ "$SECONDS" -lt "$end" ] &&
        kill -0 "$$" 2>/dev/null; do
        pid=$(cat "$IT_PIDFILE" 2>/dev/null)
        if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
            rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
            thr=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
            fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
            [ -n "$rss" ] && printf '%s %s %s %s %s\n' "$EPOCHREALTIME" "$pid" "$rss" "${thr:-0}" "$fds"
        fi
        sleep 0.5
    done >>"$REL/rss.tsv"
}
rel_sampler &
SAMPLER_PID=$!
REL_BG+=("$SAMPLER_PID")

# rel_on_exit - stop what this script started (by PID), then the harness
rel_on_exit()
{
    local rc=$? p
    touch "$REL/sampler.stop" "$REL/stop" 2>/dev/null
    for p in "${BATCH_PIDS[@]}" "${REL_BG[@]}"; do
        [ -n "$p" ] && it_stop_pid "$p" 5 >/dev/null 2>&1
    done
    (exit "$rc")
    "${REL_PREV_TRAP:-it_cleanup}"
}
REL_PREV_TRAP=$(trap -p EXIT)
REL_PREV_TRAP=${REL_PREV_TRAP#trap -- \'}
REL_PREV_TRAP=${REL_PREV_TRAP%\' EXIT}
[[ $REL_PREV_TRAP =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || REL_PREV_TRAP=it_cleanup
trap rel_on_exit EXIT

# ------------------------------------------------------------ helpers

daemon_pid() { cat "$IT_PIDFILE" 2>/dev/null; }

# rss_kb / fds_now / threads_now - of the running outpolicyd
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$(daemon_pid)/status" 2>/dev/null; }
fds_now() { find "/proc/$(daemon_pid)/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
threads_now() { awk '/^Threads:/ { print $2 }' "/proc/$(daemon_pid)/status" 2>/dev/null; }

# rss_window T0 T1 - "peak_kb max_threads max_fds samples" between two times
rss_window()
{
    awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b {
            n++; if ($3 > p) p = $3; if ($4 > t) t = $4; if ($5 > f) f = $5 }
        END { printf "%d %d %d %d\n", p, t, f, n }' "$REL/rss.tsv"
}

# fds_stable - outpolicyd's fd count once it has not changed for 1 s (10 s max)
fds_stable()
{
    local a b i
    a=$(fds_now)
    for ((i = 0; i < 20; i++)); do
        sleep 0.5
        b=$(fds_now)
        if [ "$a" = "$b" ]; then
            sleep 0.5
            [ "$(fds_now)" = "$b" ] && break
        fi
        a=$b
    done
    fds_now
}

# idle_fds - the daemon's open fds with no client at all: the gateway
# Postfix is stopped (its smtpd and smtp processes hold milter and
# socketmap connections), counted, and started again
idle_fds()
{
    local n
    it_postfix_stop >/dev/null 2>&1 || it_log "gateway postfix stop: still running?"
    n=$(fds_stable)
    IT_MILTER="unix:$IT_SOCK" it_postfix_start
    echo "$n"
}

# manifest_count PHASE - delivered dump files of PHASE so far
manifest_count()
{
    grep -c "\.$1\.rel>" "$REL/manifest.tsv" 2>/dev/null
}

manifest_has() { [ "$(manifest_count "$1")" -ge "$2" ]; }

# batches PHASE TOTAL PORT - start six smtp-source batches (sizes and
# From domains mixed) sending TOTAL messages over CONC sessions to PORT
batches()
{
    local phase=$1 total=$2 port=$3 i m s rest used=0 sused=0 tmo
    # size bytes, message share (per mille), session weight (of 20), domain
    local -a size=(1024 1024 10240 102400 1048576 5242880)
    local -a share=(350 200 250 140 45 15)
    local -a sw=(6 3 4 3 2 2)
    local -a dom=(rsa-ed.example nokey.example rsa.example rsa-ed.example nokey.example rsa.example)
    local -a msgs=() sess=()
    for i in 0 1 2 3 4 5; do
        m=$((total * share[i] / 1000))
        [ "$m" -ge 1 ] || m=1
        s=$(((CONC * sw[i] + 10) / 20))
        [ "$s" -ge 1 ] || s=1
        msgs+=("$m")
        sess+=("$s")
        used=$((used + m))
        sused=$((sused + s))
    done
    msgs[0]=$((msgs[0] + total - used))        # rounding: the small batch
    rest=$((CONC - sused))
    sess[0]=$((sess[0] + rest))
    [ "${sess[0]}" -ge 1 ] || sess[0]=1
    tmo=$((600 + total / 5))
    BATCH_PIDS=()
    for i in 0 1 2 3 4 5; do
        timeout "$tmo" smtp-source -A -s "${sess[i]}" -m "${msgs[i]}" -l "${size[i]}" \
            -M "b$i.$phase.rel" -f "$phase-b$i@${dom[i]}" -t "rcpt-b$i@remote.example" \
            -S "reliability $phase batch $i (${size[i]} bytes)" \
            "127.0.0.1:$port" >"$REL/batch/$phase-b$i.log" 2>&1 &
        BATCH_PIDS+=($!)
    done
    fig "$phase: $total messages in 6 batches, sessions ${sess[*]} (sum $CONC), messages ${msgs[*]}, bodies ${size[*]} bytes"
}

batches_running()
{
    local p
    for p in "${BATCH_PIDS[@]}"; do
        it_pid_gone "$p" || return 0
    done
    return 1
}

batches_running_not() { ! batches_running; }

# batches_wait PHASE - reap the batches; the client saw how many errors
batches_wait()
{
    local p rc bad=0
    for p in "${BATCH_PIDS[@]}"; do
        wait "$p"
        rc=$?
        [ "$rc" -eq 0 ] || bad=$((bad + 1))
    done
    BATCH_PIDS=()
    CLIENT_ERRORS=$(cat "$REL/batch/$1"-b*.log | grep -c 'smtp-source: \(warning\|fatal\)')
    BATCH_FAILED=$bad
}

# relcheck PHASE FROM_LINE [FRONT] - load relcheck.py's KEY=VALUE output
# into R_KEY variables ("x" when relcheck.py did not print one)
relcheck()
{
    local line k v front=()
    R_accepted=x R_queued_twice=x R_sent=x R_not_sent=x R_deferred=x R_bounced=x
    R_milter_reject=x R_milter_warn=x R_reject_lines=x R_sink=x R_sink_unique=x
    R_sink_dup=x R_missing=x R_unexpected=x R_unsigned=x R_no_arc=x
    R_bad_examples=x R_expiry=x R_front_accepted=x R_front_deferred=x R_front_sent=x
    [ -n "${3:-}" ] && front=("$3" 1)
    while IFS= read -r line; do
        k=${line%%=*}
        v=${line#*=}
        printf -v "R_$k" '%s' "$v"
    done < <("$IT_PY" "$HERE/relcheck.py" "$IT_DIR/postfix/maillog" "$2" \
        "$REL/manifest.tsv" "$1" "$EXPECT" "${front[@]}")
}

maillog_lines() { wc -l <"$IT_DIR/postfix/maillog"; }
dlog_count() { grep -c -- "$1" "$IT_DIR/outpolicyd.log"; }

# common_checks PHASE WANT - exactly-once delivery and signatures
common_checks()
{
    local p=$1 want=$2
    fig "$p: gateway accepted $R_accepted, status=sent $R_sent, sink files $R_sink ($R_sink_unique distinct Message-Ids), deferred $R_deferred, bounced $R_bounced"
    it_check_eq "$p: every message delivered to the sink (distinct Message-Ids)" "$want" "$R_sink_unique"
    it_check_eq "$p: none delivered twice" 0 "$R_sink_dup"
    it_check_eq "$p: sink files = status=sent = accepted" "$R_accepted $R_accepted" "$R_sink $R_sent"
    it_check_eq "$p: no accepted message missing at the sink" 0 "$R_missing"
    it_check_eq "$p: no queued message without status=sent" 0 "$R_not_sent"
    it_check_eq "$p: nothing at the sink the gateway did not accept" 0 "$R_unexpected"
    it_check_eq "$p: the gateway queued no message twice" 0 "$R_queued_twice"
    it_check_eq "$p: every message carries the configured DKIM signatures" 0 "$R_unsigned"
    it_check_eq "$p: every message carries an ARC set i=1" 0 "$R_no_arc"
    it_check_eq "$p: nothing bounced" 0 "$R_bounced"
    [ "$R_bad_examples" = - ] || it_log "$p: examples: $R_bad_examples"
}

# verify_samples PHASE - mailauth-verify (dkimpy) on the kept samples of PHASE
verify_samples()
{
    local p=$1 f d n=0 bad=0 eml args
    if [ ! -x "$VERIFY" ] || ! "$IT_PY" -c 'import dkim, nacl' 2>/dev/null; then
        it_skip "$p: samples verified by dkimpy" "needs $VERIFY, python3-dkim, python3-nacl"
        return 0
    fi
    mkdir -p "$REL/verify"
    while IFS= read -r f; do
        d=$(it_sink_header "$f" from | sed -n 's/.*@\([A-Za-z0-9.-]*\).*/\1/p' | head -n 1)
        eml=$REL/verify/$(basename "$f").eml
        it_sink_message_body "$f" crlf >"$eml"
        args=(--zone "$KEYZONE" --expect-arc pass)
        case $d in
            nokey.example) args+=(--expect-dkim none) ;;
            *) args+=(--expect-dkim pass --require-dkim-domain "$d") ;;
        esac
        n=$((n + 1))
        if ! "$VERIFY" "${args[@]}" "$eml" >"$eml.json" 2>"$eml.err"; then
            bad=$((bad + 1))
            it_log "$p: dkimpy rejects $(basename "$f"): $(head -c 400 "$eml.json")"
        fi
        rm -f "$eml"
    done < <(grep -l "^Message-Id: <.*\.$p\.rel>" "$REL/samples/"* 2>/dev/null)
    fig "$p: $n sample messages verified by dkimpy (DKIM + ARC), $bad failed"
    it_check "$p: at least 6 samples verified" test "$n" -ge 6
    it_check_eq "$p: samples pass DKIM and ARC (dkimpy)" 0 "$bad"
}

# wait_delivered PHASE WANT TIMEOUT - bounded wait for the sink manifest
wait_delivered()
{
    it_wait_for "$3" manifest_has "$1" "$2"
}

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ------------------------------------------------------------ warm-up

echo "# warm-up: every path once (processes forked, DNS cache warm)"
batches warm 60 "$IT_SMTP_PORT"
it_wait_for 120 batches_running_not
batches_wait warm
it_check "warm-up: delivered" wait_delivered warm 60 60
relcheck warm 1
it_check_eq "warm-up: signed as configured" "0 0" "$R_unsigned $R_no_arc"
[ "$R_bad_examples" = - ] || it_log "warm-up: $R_bad_examples"
verify_samples warm

# ------------------------------------------------------------ load

if phase_on load; then
    echo "# load: $N messages, $CONC sessions"
    FD0=$(idle_fds)
    THR0=$(threads_now)
    RSS0=$(rss_kb)
    L0=$(maillog_lines)
    t0=$EPOCHREALTIME
    s0=$SECONDS
    batches load "$N" "$IT_SMTP_PORT"
    it_wait_for $((600 + N / 5)) batches_running_not
    batches_wait load
    wait_delivered load "$N" $((120 + N / 50))
    t1=$EPOCHREALTIME
    dur=$((SECONDS - s0))
    RSS1=$(rss_kb)
    read -r PEAK THRMAX FDMAX NS <<<"$(rss_window "$t0" "$t1")"
    relcheck load "$L0"
    it_check_eq "load: smtp-source saw no error (warnings/fatal lines)" 0 "$CLIENT_ERRORS"
    it_check_eq "load: every smtp-source batch exited 0" 0 "$BATCH_FAILED"
    it_check_eq "load: the gateway accepted all $N" "$N" "$R_accepted"
    it_check_eq "load: no milter-reject, milter warning or smtpd reject" "0 0 0" \
        "$R_milter_reject $R_milter_warn $R_reject_lines"
    common_checks load "$N"
    fig "load: $dur s, $(awk -v n="$N" -v d="$dur" 'BEGIN { printf "%.1f", n / (d ? d : 1) }') msg/s end to end"
    fig "load: outpolicyd RSS start $(mb "$RSS0") MB, peak $(mb "$PEAK") MB, end $(mb "$RSS1") MB ($NS samples); threads idle $THR0, peak $THRMAX; fds peak $FDMAX"
    it_check "load: RSS peak - start < $RSS_BOUND_MB MB" \
        test $(((PEAK - RSS0) / 1024)) -lt "$RSS_BOUND_MB"
    it_check "load: RSS end - start < $((RSS_BOUND_MB / 2)) MB" \
        test $(((RSS1 - RSS0) / 1024)) -lt $((RSS_BOUND_MB / 2))
    FD1=$(idle_fds)
    fig "load: outpolicyd open fds with no client: before $FD0, after $FD1"
    it_check_eq "load: no fd leaked (idle fds before = after)" "$FD0" "$FD1"
    it_check_eq "load: expiry (x= - t=) of every RSA signature = dkim.expire" \
        "$EXPIRE0" "$(printf '%s\n' "$R_expiry" | tr ',' '\n' | cut -d: -f1 | sort -u | tr '\n' ' ' | sed 's/ $//')"
    verify_samples load
fi

# ------------------------------------------------------------ crash

if phase_on crash; then
    echo "# crash: $M messages through the front Postfix, outpolicyd killed with SIGKILL mid-load"
    L0=$(maillog_lines)
    s0=$SECONDS
    batches crash "$M" "$IT2_SMTP_PORT"
    it_check "crash: a third of the messages arrived before the kill" \
        wait_delivered crash $((M / 3)) $((120 + M / 10))
    AT_KILL=$(manifest_count crash)
    OLD=$IT_DAEMON_PID
    kill -KILL "$OLD"
    wait "$OLD" 2>/dev/null
    IT_DAEMON_PID=
    it_check "crash: outpolicyd is gone after SIGKILL" it_pid_gone "$OLD"
    RUNNING_AT_KILL=no
    batches_running && RUNNING_AT_KILL=yes
    sleep 3
    STARTS=$(dlog_count 'started, version')
    it_check "crash: outpolicyd restarts over its stale sockets" it_daemon_start "$CONF"
    started_again() { [ "$(dlog_count 'started, version')" -gt "$STARTS" ]; }
    it_check "crash: the new outpolicyd logged 'started'" it_wait_for 10 started_again
    fig "crash: killed at $AT_KILL of $M delivered (smtp-source still submitting: $RUNNING_AT_KILL); restarted after 3 s"
    it_wait_for $((600 + M / 5)) batches_running_not
    batches_wait crash
    it_check_eq "crash: the front accepted every message (no client error)" 0 "$CLIENT_ERRORS"
    # flush the front's deferred mail until everything arrived (bounded)
    flushes=0
    deadline=$((SECONDS + 300 + M / 20))
    while ! manifest_has crash "$M" && [ "$SECONDS" -lt "$deadline" ]; do
        it_second it_postfix_flush >/dev/null 2>&1
        flushes=$((flushes + 1))
        it_wait_for 5 manifest_has crash "$M"
    done
    dur=$((SECONDS - s0))
    relcheck crash "$L0" "$IT2_DIR/postfix/maillog"
    fig "crash: front accepted $R_front_accepted, deferred $R_front_deferred deliveries to the gateway, sent $R_front_sent; gateway milter warnings $R_milter_warn; $flushes postqueue -f; all in $dur s"
    it_check_eq "crash: the front accepted all $M" "$M" "$R_front_accepted"
    it_check "crash: the kill hit mail in flight (front deferrals or milter errors > 0)" \
        test $((R_front_deferred + R_milter_warn)) -gt 0
    common_checks crash "$M"
    verify_samples crash
fi

# ------------------------------------------------------------ reload

# bad_config I - a broken config for SIGHUP number I (three kinds)
bad_config()
{
    case $(($1 % 3)) in
        0) config "$EXPIRE0" "bogus_setting_$1 = 1;" ;;
        1) config "$EXPIRE0" "dns = { timeout = 5 " ;;
        2) config "$EXPIRE0" 'dns.timeout=0' ;;
    esac
}

reloads_done() { [ $(($(dlog_count 'reloaded configuration') + $(dlog_count 'reload refused'))) -ge "$1" ]; }

# filler PORT - 1 KB messages over 2 sessions, 10 per smtp-source run, until
# $REL/filler.stop exists (at most 2000 runs): the gateway always has mail
# in flight while the SIGHUPs arrive.  Runs done go to $REL/filler.runs.
filler()
{
    local runs=0
    while [ ! -e "$REL/filler.stop" ] && [ "$runs" -lt 2000 ]; do
        runs=$((runs + 1))
        timeout 120 smtp-source -A -s 2 -m 10 -l 1024 -M "r$runs.b6.reload.rel" \
            -f reload-b6@rsa.example -t rcpt-b6@remote.example \
            -S "reliability reload filler" "127.0.0.1:$1" \
            >"$REL/batch/reload-b6-$runs.log" 2>&1
        echo "$runs" >"$REL/filler.runs"
    done
}

if phase_on reload; then
    GOOD=$((HUPS / 2))
    echo "# reload: $M messages (+ a 2-session filler) straight to the gateway, $HUPS SIGHUPs ($GOOD with a broken config)"
    FD0=$(idle_fds)
    RSS0=$(rss_kb)
    OK0=$(dlog_count 'reloaded configuration')
    BAD0=$(dlog_count 'reload refused')
    L0=$(maillog_lines)
    t0=$EPOCHREALTIME
    s0=$SECONDS
    batches reload "$M" "$IT_SMTP_PORT"
    rm -f "$REL/filler.stop" "$REL/filler.runs"
    filler "$IT_SMTP_PORT" &
    FILLER_PID=$!
    REL_BG+=("$FILLER_PID")
    wait_delivered reload $((M / 20 > 10 ? M / 20 : 10)) 120
    under=0
    mixed=0
    lat_max=0
    for i in $(seq 1 "$HUPS"); do
        if [ $((i % 2)) = 1 ]; then
            config $((EXPIRE0 + (i + 1) / 2))
        else
            bad_config "$i"
        fi
        { batches_running || ! it_pid_gone "$FILLER_PID"; } && under=$((under + 1))
        batches_running && mixed=$((mixed + 1))
        h0=$EPOCHREALTIME
        it_daemon_hup
        if ! it_wait_for 10 reloads_done $((OK0 + BAD0 + i)); then
            it_fail "reload: SIGHUP $i answered within 10 s"
            break
        fi
        lat_max=$(awk -v a="$h0" -v b="$EPOCHREALTIME" -v m="$lat_max" 'BEGIN { d = b - a; print (d > m ? d : m) }')
        sleep 0.1
    done
    touch "$REL/filler.stop"
    RSS_HUP=$(rss_kb)
    # mail submitted after the last SIGHUP: signed with the last good config
    timeout 300 smtp-source -A -s 2 -m 20 -l 2048 -M "b0.after.rel" \
        -f after@rsa-ed.example -t rcpt@remote.example -S "after the reloads" \
        "127.0.0.1:$IT_SMTP_PORT" >"$REL/batch/after-b0.log" 2>&1
    AFTER_RC=$?
    it_wait_for $((600 + M / 5)) batches_running_not
    it_wait_for 150 it_pid_gone "$FILLER_PID"
    wait "$FILLER_PID"
    FILL=$(($(cat "$REL/filler.runs" 2>/dev/null || echo 0) * 10))
    batches_wait reload
    WANT=$((M + FILL))
    wait_delivered reload "$WANT" $((120 + WANT / 50))
    wait_delivered after 20 60
    t1=$EPOCHREALTIME
    dur=$((SECONDS - s0))
    read -r PEAK THRMAX FDMAX NS <<<"$(rss_window "$t0" "$t1")"
    OK=$(($(dlog_count 'reloaded configuration') - OK0))
    BAD=$(($(dlog_count 'reload refused') - BAD0))
    relcheck reload "$L0"
    fig "reload: $HUPS SIGHUPs, $under with mail in flight ($mixed during the mixed batches); slowest reload $(printf '%.2f' "$lat_max") s; $OK reloaded, $BAD refused; filler $FILL messages; $dur s"
    it_check_eq "reload: all $HUPS SIGHUPs arrived with mail in flight" "$HUPS" "$under"
    it_check_eq "reload: $GOOD broken configs refused and logged" "$GOOD" "$BAD"
    it_check_eq "reload: $GOOD good configs loaded" "$GOOD" "$OK"
    for kind in "unknown option" "syntax error" "out of range"; do
        it_check "reload: a refusal names the problem with file:line ($kind)" \
            grep -q "reload refused: $CONF:[0-9]*: .*$kind" "$IT_DIR/outpolicyd.log"
    done
    it_check_eq "reload: smtp-source saw no error" 0 "$CLIENT_ERRORS"
    it_check_eq "reload: the gateway accepted all $WANT" "$WANT" "$R_accepted"
    it_check_eq "reload: no milter-reject, milter warning or smtpd reject" "0 0 0" \
        "$R_milter_reject $R_milter_warn $R_reject_lines"
    common_checks reload "$WANT"
    # which config signed what: x= - t= is EXPIRE0 + k
    fig "reload: x= - t= of RSA signatures (value:messages): $R_expiry"
    ks=$(printf '%s\n' "$R_expiry" | tr ',' '\n' | cut -d: -f1 |
        awk -v e="$EXPIRE0" -v g="$GOOD" '$1 >= e && $1 <= e + g { n++ } END { print n + 0 }')
    kall=$(printf '%s\n' "$R_expiry" | tr ',' '\n' | grep -c .)
    it_check_eq "reload: every signature's expiry comes from a loaded config" "$kall" "$ks"
    it_check "reload: at least $((GOOD / 2)) configs signed mail during the load ($ks seen)" \
        test "$ks" -ge $((GOOD / 2))
    relcheck after 1
    it_check_eq "after: 20 messages sent after the last SIGHUP delivered" "0 20 20" "$AFTER_RC $R_accepted $R_sink_unique"
    it_check_eq "after: signed by the last good config (x= - t= = $((EXPIRE0 + GOOD)))" \
        "$((EXPIRE0 + GOOD)):20" "$R_expiry"
    FD1=$(idle_fds)
    RSS1=$(rss_kb)
    fig "reload: outpolicyd RSS start $(mb "$RSS0") MB, peak $(mb "$PEAK") MB, after the SIGHUPs $(mb "$RSS_HUP") MB, end $(mb "$RSS1") MB; fds idle before $FD0, after $FD1 (peak $FDMAX)"
    it_check_eq "reload: no fd leaked over $HUPS reloads (idle fds before = after)" "$FD0" "$FD1"
    it_check "reload: RSS peak - start < $RSS_BOUND_MB MB" \
        test $(((PEAK - RSS0) / 1024)) -lt "$RSS_BOUND_MB"
fi

# ------------------------------------------------------------ the end

it_daemon_stop
it_check_eq "outpolicyd stops cleanly (exit status 0)" 0 "$?"
touch "$REL/stop"
it_wait_for 30 it_pid_gone "$REAPER_PID"
read -r _ files _ bytes _ pbytes _ pfiles <"$REL/stats"
fig "disk: sink files $files ($(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1048576 }') MB delivered), at most $(awk -v b="$pbytes" 'BEGIN { printf "%.0f", b / 1048576 }') MB / $pfiles files in the sink at once; samples $(du -sm "$REL/samples" | cut -f1) MB; scratch dir now $(du -sm "$IT_DIR" | cut -f1) MB (Postfix log $(du -sm "$IT_DIR/postfix/maillog" | cut -f1) MB, events $(du -sm "$IT_DIR/events" | cut -f1) MB)"
fig "total run time $((SECONDS - T_START)) s (-n $N -c $CONC -r $M -p $PHASES)"
echo "# figures"
sed 's/^/    /' "$FIG"
it_summary
