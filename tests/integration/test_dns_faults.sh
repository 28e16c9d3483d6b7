#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_dns_faults.sh - DNS faults (issue 10) through a real
# Postfix: outpolicyd's dns.nameservers points at a small DNS server written
# here (python3, UDP and TCP on one loopback port) that misbehaves per
# domain, and at a port where nothing listens.
#
# Cases (dns.timeout = 2 s; each on a freshly started outpolicyd, so that
# libunbound's cache and server state start clean):
#   1. baseline: good.example answers at once; latency of 5 messages
#   2. server down (nothing listens): 451 4.7.24, SPF temperror
#   3. server silent for hang.example: 451 4.7.24 after ~dns.timeout
#   4. slow: slow.example answered after dns.timeout + 3 s: 451 4.7.24
#      before the late answer arrives
#   5. SERVFAIL for servfail.example: 451 4.7.24, at once
#   6. truncated (TC=1) UDP answer, TCP connection closed: 451 4.7.24
#   7. truncated UDP answer, TCP never answers: 451 4.7.24 after ~timeout
#   8. truncated UDP answer, TCP answers: delivered, SPF pass (the resolver
#      falls back to TCP; positive control for 6 and 7)
#   9. spf.on_temperror = "warn": still 451 4.7.0 while dmarc.on_temperror
#      is "tempfail" (DMARC cannot be predicted either); with both "warn"
#      the message is delivered, the event says temperror / warn
#  10. no blocking: 4 messages whose DNS hangs (dns.timeout = 4 s) are in
#      flight while 8 messages for good.example (SPF and DMARC cached) and 4
#      for not-yet-cached good domains are sent at once: their latency is
#      printed and must stay low; they all finish before the hanging ones.
#      (The hanging ones end after ~2.4 s: libunbound stops retrying a
#      server it knows to be fast before dns.timeout; still a temperror.)
# Every fault case asserts the reply (code and enhanced code), the event
# (spf.result temperror, verdict), and that the reply came within
# dns.timeout + 2 s (the elapsed time is printed); the message never
# reaches the sink.
#
# Needs what test_submission.sh needs (root, postfix, swaks, python3).
# Prints one line per check and "N passed, N failed"; exits non-zero when a
# check failed.  IT_KEEP=1 keeps the scratch directory.
set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init dnsfaults

RUN=$$
CONF=$IT_DIR/outpolicyd.conf
EGRESS=192.0.2.10
TIMEOUT=2                  # dns.timeout in the fault cases, seconds
MARGIN=2                   # accepted lateness of a reply beyond dns.timeout
SLOW_DELAY=$((TIMEOUT + 3))
HANG_TIMEOUT=4             # dns.timeout in the blocking case
ELAPSED=0
REFUSED=()
T0=$SECONDS

# ------------------------------------------------------------ the DNS server

mkdir -p "$IT_DIR/fdns"
cat >"$IT_DIR/fdns/faultdns.py" <<'PYEOF'
"""A DNS server for fault tests: per domain (the last two labels of the
query name) it answers, answers late, never answers, says SERVFAIL, or
truncates over UDP (then over TCP: closes, hangs, or answers).
usage: faultdns.py PORT SLOW_DELAY WATCH_PID LIFETIME"""
import os, socket, struct, sys, threading, time

port, slow_delay, watch, lifetime = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
EGRESS = "192.0.2.10"
BEHAVIOUR = {"hang.example": "hang", "slow.example": "slow",
             "servfail.example": "servfail", "trunc.example": "tc-close",
             "trunchang.example": "tc-hang", "tcpok.example": "tc-ok"}
lock = threading.Lock()


def log(*a):
    with lock:
        print("%.3f" % time.time(), *a, flush=True)


def records(name, qtype):
    """(exists, [rdata]) for TXT from the built-in zone"""
    labels = name.split(".")
    dom = ".".join(labels[-2:])
    known = dom in BEHAVIOUR or (dom.endswith(".example") and dom.startswith("good"))
    if not known:
        return False, []
    if name == dom:
        txt = "v=spf1 ip4:%s -all" % EGRESS
    elif name == "_dmarc." + dom:
        txt = "v=DMARC1; p=none"
    else:
        return False, []
    if qtype != 16:
        return True, []
    b = txt.encode()
    return True, [bytes([len(b)]) + b]


def parse(q):
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode("latin-1").lower())
        i += 1 + q[i]
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    return ".".join(labels), qtype, i + 5


def answer(q, rcode=0, tc=False):
    name, qtype, end = parse(q)
    exists, rrs = records(name, qtype)
    if rcode == 0 and not exists:
        rcode = 3
    if tc or rcode:
        rrs = []
    flags = 0x8000 | ((q[2] & 0x01) << 8) | 0x0400 | (0x0200 if tc else 0) | 0x0080 | rcode
    out = q[:2] + struct.pack(">HHHHH", flags, 1, len(rrs), 0, 0) + q[12:end]
    for rd in rrs:
        out += b"\xc0\x0c" + struct.pack(">HHIH", qtype, 1, 3600, len(rd)) + rd
    return out


def behaviour(name):
    return BEHAVIOUR.get(".".join(name.split(".")[-2:]), "answer")


def udp_one(s, q, peer):
    name, qtype, _ = parse(q)
    b = behaviour(name)
    log("udp", name, qtype, b)
    if b == "hang":
        return
    if b == "slow":
        time.sleep(slow_delay)
        s.sendto(answer(q), peer)
        log("udp", name, qtype, "answered late")
        return
    if b == "servfail":
        s.sendto(answer(q, rcode=2), peer)
    elif b.startswith("tc-"):
        s.sendto(answer(q, tc=True), peer)
    else:
        s.sendto(answer(q), peer)


def tcp_one(c):
    c.settimeout(30)
    try:
        n = struct.unpack(">H", c.recv(2))[0]
        q = b""
        while len(q) < n:
            d = c.recv(n - len(q))
            if not d:
                return
            q += d
        name, qtype, _ = parse(q)
        b = behaviour(name)
        log("tcp", name, qtype, b)
        if b in ("tc-close",):
            return
        if b in ("tc-hang", "hang"):
            while c.recv(512):
                pass
            return
        if b == "slow":
            time.sleep(slow_delay)
        a = answer(q, rcode=2 if b == "servfail" else 0)
        c.sendall(struct.pack(">H", len(a)) + a)
    except (OSError, struct.error):
        pass
    finally:
        c.close()


def tcp_loop(t):
    while True:
        c, _ = t.accept()
        threading.Thread(target=tcp_one, args=(c,), daemon=True).start()


def udp_loop(u):
    while True:
        q, peer = u.recvfrom(4096)
        if len(q) >= 17:
            threading.Thread(target=udp_one, args=(u, q, peer), daemon=True).start()


u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", port))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", port))
t.listen(64)
threading.Thread(target=tcp_loop, args=(t,), daemon=True).start()
threading.Thread(target=udp_loop, args=(u,), daemon=True).start()
log("listening on", port)
t0 = time.monotonic()
while time.monotonic() - t0 < lifetime:
    try:
        os.kill(watch, 0)
    except ProcessLookupError:
        break
    time.sleep(0.2)
PYEOF

it_dns_pick_port FPORT || it_die "no free port for the fault DNS server"
it_dns_dead_port DEAD || it_die "no free port"
"$IT_PY" "$IT_DIR/fdns/faultdns.py" "$FPORT" "$SLOW_DELAY" "$$" 600 \
    >>"$IT_DIR/fdns/log" 2>&1 &
FDNS_PID=$!

fd_on_exit()
{
    local rc=$?
    it_stop_pid "$FDNS_PID" 5 >/dev/null 2>&1
    (exit "$rc")
    it_cleanup
}
trap fd_on_exit EXIT

it_check "fault DNS server: good.example TXT answered" \
    it_wait_for 10 it_dns_answers "$FPORT"
it_check_eq "fault DNS server: good.example has one TXT record" "NOERROR 1" \
    "$(it_dns_query good.example TXT "$FPORT")"
it_check_eq "fault DNS server: servfail.example is SERVFAIL" "SERVFAIL 0" \
    "$(it_dns_query servfail.example TXT "$FPORT")"

# ------------------------------------------------------------ helpers

NS="[ \"127.0.0.1@$FPORT\" ]"
BASE=(
    'submission_tls.exempt_hosts=[ "127.0.0.1" ]'
    "dns.nameservers=$NS"
    "dns.timeout=$TIMEOUT"
    "egress.ips=[ \"$EGRESS\" ]"
    'dkim.enabled=false'
    'arc.enabled=false'
)

# restart CONFIG-ARGS... - a fresh outpolicyd (fresh resolver and caches)
restart()
{
    it_daemon_stop >/dev/null 2>&1
    it_daemon_config "$CONF" "${BASE[@]}" "$@"
    it_daemon_start "$CONF" || it_die "outpolicyd did not start with $*"
}

mid()
{
    printf '<%s.%s@outpolicy.test>' "$1" "$RUN"
}

# send CASE DOMAIN - one message from DOMAIN; ELAPSED = swaks' time (s)
send()
{
    local t0=$EPOCHREALTIME
    it_swaks --from "a@$2" --header "From: b@$2" --header "Message-Id: $(mid "$1")" \
        --header "Subject: $1" --body "DNS fault case $1"
    ELAPSED=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
}

sel()
{
    printf "g(e,'event.action') == 'submission' and g(e,'email.message_id') == '%s'" "$(mid "$1")"
}

has_event() { [ "$(it_events_query "$(sel "$1")")" -ge 1 ]; }

ev()
{
    it_event_field "$(sel "$1")" "$2"
}

check_ev()
{
    it_wait_for 5 has_event "$1"
    it_check_eq "$1: event $2 = $3" "$3" "$(ev "$1" "$2")"
}

# within CASE MAX - ELAPSED <= MAX seconds
within()
{
    it_check "$1: answered in ${ELAPSED} s <= $2 s" \
        awk -v t="$ELAPSED" -v m="$2" 'BEGIN { exit !(t <= m) }'
}

# at_least CASE MIN - ELAPSED >= MIN seconds (the daemon did wait)
at_least()
{
    it_check "$1: waited ${ELAPSED} s >= $2 s" \
        awk -v t="$ELAPSED" -v m="$2" 'BEGIN { exit !(t >= m) }'
}

# tempfailed CASE CODE XCODE TEXT - refused at end of data with CODE XCODE
tempfailed()
{
    local c=$1 reply
    reply=$(it_swaks_reply_to .)
    case $reply in
        "$2 $3 "*"$4"*) it_ok "$c: $reply" ;;
        *) it_fail "$c: end of data answered $2 $3 ... $4" "reply '$reply'" ;;
    esac
    it_check_eq "$c: no queue ID" "" "$(it_swaks_queue_id)"
    REFUSED+=("$c")
}

# fault CASE DOMAIN [MIN] - send, expect 451 4.7.24 SPF temperror within
# dns.timeout + MARGIN (and after at least MIN seconds when given)
fault()
{
    local c=$1 d=$2
    send "$c" "$d"
    echo "    $c: end of data answered after $ELAPSED s (dns.timeout $TIMEOUT s)"
    tempfailed "$c" 451 4.7.24 "SPF temperror for $d"
    check_ev "$c" outpolicy.spf.result temperror
    check_ev "$c" outpolicy.verdict.action tempfail
    check_ev "$c" outpolicy.dmarc.status temperror
    within "$c" $((TIMEOUT + MARGIN))
    [ -z "${3:-}" ] || at_least "$c" "$3"
}

fdns_saw() { grep -qE -- "$1" "$IT_DIR/fdns/log"; }

# ------------------------------------------------------------ start

restart
IT_MILTER="unix:$IT_SOCK" it_postfix_start
it_sink_start

echo "# 1. baseline: good.example answers at once"
lat=()
for i in 1 2 3 4 5; do
    send "base$i" good.example
    lat+=("$ELAPSED")
done
it_check_eq "base1: swaks exit status" 0 "$IT_SWAKS_RC"
check_ev base1 outpolicy.spf.result pass
it_check "baseline: 5 messages delivered" it_sink_wait 5 20
echo "    baseline latencies (s): ${lat[*]}"
BASE_MAX=$(printf '%s\n' "${lat[@]}" | sort -n | tail -n 1)

echo "# 2. server down: nothing listens on 127.0.0.1:$DEAD"
restart "dns.nameservers=[ \"127.0.0.1@$DEAD\" ]"
fault down good.example

echo "# 3. server silent: hang.example is never answered"
restart
fault hang hang.example $((TIMEOUT - 1))
it_check "hang: the server was asked" fdns_saw 'udp hang\.example 16 hang'

echo "# 4. slow: slow.example answered $SLOW_DELAY s late (after dns.timeout $TIMEOUT s)"
restart
fault slow slow.example $((TIMEOUT - 1))
it_check "slow: the reply came before the late answer ($SLOW_DELAY s)" \
    awk -v t="$ELAPSED" -v m="$SLOW_DELAY" 'BEGIN { exit !(t < m) }'
it_check "slow: the server did answer, late" \
    it_wait_for $((SLOW_DELAY + 2)) fdns_saw 'udp slow\.example 16 answered late'

echo "# 5. SERVFAIL for servfail.example"
restart
fault servfail servfail.example
it_check "servfail: the server said SERVFAIL" fdns_saw 'udp servfail\.example 16 servfail'

echo "# 6. truncated UDP answer, TCP connection closed"
restart
fault trunc trunc.example
it_check "trunc: the resolver retried over TCP" fdns_saw 'tcp trunc\.example 16 tc-close'

echo "# 7. truncated UDP answer, TCP never answers"
restart
fault trunchang trunchang.example $((TIMEOUT - 1))
it_check "trunchang: the resolver retried over TCP" fdns_saw 'tcp trunchang\.example 16 tc-hang'

echo "# 8. truncated UDP answer, TCP answers: delivered (fallback works)"
restart
send tcpok tcpok.example
echo "    tcpok: answered after $ELAPSED s"
it_check_eq "tcpok: swaks exit status" 0 "$IT_SWAKS_RC"
check_ev tcpok outpolicy.spf.result pass
it_check "tcpok: delivered" it_sink_wait_msgid "$(mid tcpok)" 20
it_check "tcpok: the answer came over TCP" fdns_saw 'tcp tcpok\.example 16 tc-ok'
within tcpok $((TIMEOUT + MARGIN))

echo "# 9. spf.on_temperror = warn"
restart 'spf.on_temperror="warn"'
send warn-spf hang.example
echo "    warn-spf: answered after $ELAPSED s"
tempfailed warn-spf 451 4.7.0 "DMARC policy of hang.example unknown"
check_ev warn-spf outpolicy.spf.result temperror
check_ev warn-spf outpolicy.verdict.check dmarc
within warn-spf $((TIMEOUT + MARGIN))
restart 'spf.on_temperror="warn"' 'dmarc.on_temperror="warn"'
send warn hang.example
echo "    warn: answered after $ELAPSED s"
it_check_eq "warn: swaks exit status" 0 "$IT_SWAKS_RC"
check_ev warn outpolicy.spf.result temperror
check_ev warn outpolicy.verdict.action warn
it_check "warn: delivered" it_sink_wait_msgid "$(mid warn)" 20
within warn $((TIMEOUT + MARGIN))
at_least warn $((TIMEOUT - 1))

echo "# 10. no blocking: 4 messages wait for DNS (dns.timeout $HANG_TIMEOUT s) while 12 others pass"
restart "dns.timeout=$HANG_TIMEOUT"
send warm10 good.example             # SPF and DMARC of good.example cached
it_check_eq "warm10: swaks exit status" 0 "$IT_SWAKS_RC"

# bg_send NAME DOMAIN - swaks in the background; NAME.t = "start end rc"
bg_send()
{
    local t0=$EPOCHREALTIME rc
    swaks --server 127.0.0.1 --port "$IT_SMTP_PORT" --timeout 60 \
        --helo client.outpolicy.test --from "a@$2" --to rcpt@remote.test \
        --header "From: b@$2" --header "Message-Id: $(mid "$1")" \
        --header "Subject: $1" --body "DNS fault case $1" \
        >"$IT_DIR/swaks/$1.txt" 2>&1
    rc=$?
    echo "$t0 $EPOCHREALTIME $rc" >"$IT_DIR/swaks/$1.t"
}

# hang_asked N - the server has seen more than N queries for hang.example
hang_asked() { [ "$(grep -c 'udp hang\.example 16 hang' "$IT_DIR/fdns/log")" -gt "$1" ]; }
pids=()
asked=$(grep -c 'udp hang\.example 16 hang' "$IT_DIR/fdns/log")
for i in 1 2 3 4; do
    bg_send "held$i" hang.example &
    pids+=($!)
done
it_check "no blocking: the held messages are waiting for DNS" it_wait_for 10 hang_asked "$asked"
sleep 0.2
for i in 1 2 3 4 5 6 7 8; do
    bg_send "free$i" good.example &
    pids+=($!)
done
for i in 1 2 3 4; do
    bg_send "new$i" "good$i.example" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    it_wait_for $((HANG_TIMEOUT + 20)) it_pid_gone "$p"
    wait "$p"
done

# dur NAME - seconds NAME took; end NAME - when it finished
dur() { awk '{ printf "%.2f", $2 - $1 }' "$IT_DIR/swaks/$1.t" 2>/dev/null; }
end() { awk '{ print $2 }' "$IT_DIR/swaks/$1.t" 2>/dev/null; }
rc() { awk '{ print $3 }' "$IT_DIR/swaks/$1.t" 2>/dev/null; }

held=() free=() new=()
for i in 1 2 3 4; do held+=("$(dur "held$i")"); done
for i in 1 2 3 4 5 6 7 8; do free+=("$(dur "free$i")"); done
for i in 1 2 3 4; do new+=("$(dur "new$i")"); done
echo "    held (hang.example, DNS silent) latencies (s): ${held[*]}"
echo "    good.example (cached) latencies (s) meanwhile: ${free[*]}"
echo "    good1..4.example (not cached) latencies (s) meanwhile: ${new[*]}"
echo "    baseline max (s): $BASE_MAX"
FIRST_HELD_END=$(for i in 1 2 3 4; do end "held$i"; done | sort -n | head -n 1)
LAST_FREE_END=$(for i in 1 2 3 4 5 6 7 8; do end "free$i"; done; for i in 1 2 3 4; do end "new$i"; done)
LAST_FREE_END=$(printf '%s\n' "$LAST_FREE_END" | sort -n | tail -n 1)
it_check "no blocking: all 12 other messages finished before the first held one" \
    awk -v a="$LAST_FREE_END" -v b="$FIRST_HELD_END" 'BEGIN { exit !(a < b) }'
FREE_MAX=$(printf '%s\n' "${free[@]}" | sort -n | tail -n 1)
NEW_MAX=$(printf '%s\n' "${new[@]}" | sort -n | tail -n 1)
BOUND=$(awk -v b="$BASE_MAX" 'BEGIN { x = 3 * b; printf "%.2f", (x > 2 ? x : 2) }')
it_check "no blocking: cached good.example max latency $FREE_MAX s <= $BOUND s" \
    awk -v t="$FREE_MAX" -v m="$BOUND" 'BEGIN { exit !(t <= m) }'
it_check "no blocking: uncached good domains max latency $NEW_MAX s <= $BOUND s" \
    awk -v t="$NEW_MAX" -v m="$BOUND" 'BEGIN { exit !(t <= m) }'
okfree=0
for i in 1 2 3 4 5 6 7 8; do [ "$(rc "free$i")" = 0 ] && okfree=$((okfree + 1)); done
for i in 1 2 3 4; do [ "$(rc "new$i")" = 0 ] && okfree=$((okfree + 1)); done
it_check_eq "no blocking: the 12 others were accepted" 12 "$okfree"
for i in 1 2 3 4; do
    IT_SWAKS_OUT=$IT_DIR/swaks/held$i.txt
    ELAPSED=$(dur "held$i")
    tempfailed "held$i" 451 4.7.24 "SPF temperror for hang.example"
    within "held$i" $((HANG_TIMEOUT + MARGIN))
done
it_check "no blocking: the 12 others were delivered" it_sink_wait $((5 + 1 + 1 + 1 + 12)) 30

echo "# refused messages never reached the sink"
for c in "${REFUSED[@]}"; do
    it_check_eq "not delivered: $c" "" "$(it_sink_by_msgid "$(mid "$c")")"
done
echo "    run time $((SECONDS - T0)) s"

it_summary
