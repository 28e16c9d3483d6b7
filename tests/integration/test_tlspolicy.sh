#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_tlspolicy.sh - the outbound TLS policy map
# (tls_policy, Postfix smtp_tls_policy_maps over socketmap) through real
# Postfix deliveries to real SMTP servers on loopback.
#
# Needs root, postfix, swaks (+ libnet-ssleay-perl), python3-aiosmtpd (the
# receivers), /usr/bin/python3 and a built milter/outpolicyd
# ($OUTPOLICY_BUILD or the repo root).  Prints one line per check and
# "N passed, N failed"; exits non-zero when a check failed.  IT_KEEP=1 keeps
# the scratch directory.
#
# The private Postfix asks outpolicyd for every delivery's TLS policy:
#     smtp_tls_policy_maps = socketmap:unix:$TSOCK:tlspolicy
# while its own smtp_tls_security_level stays "none" (lib.sh's base), so a
# delivery that insists on TLS can only have been told so by outpolicyd.
# Each test domain is routed by transport_maps to its own receiver
# (python3-aiosmtpd on 127.0.0.1, see it_rcv_* in lib.sh):
#     tls13.test   -> A  STARTTLS with TLS 1.2/1.3
#     legacy.test  -> B  STARTTLS with TLS 1.0/1.1 only (@SECLEVEL=0 there)
#     plain.test   -> C  no STARTTLS
#     may.test     -> D  no STARTTLS
# With a transport next-hop such as smtp:[127.0.0.1]:PORT, Postfix looks the
# policy up under that next-hop verbatim ("[127.0.0.1]:PORT"), never under
# the recipient domain (TLS_README, "TLS policy table"); the test asserts
# that from the keys outpolicyd was asked for, and so writes the rules that
# must take effect for the next-hops.  Each next-hop rule has a twin for its
# recipient domain, because the per-message destination events are computed
# from the recipient domain (with a transport or relayhost they can name a
# different rule than the one Postfix applies).
#
# Routing by a loopback DNS MX instead would make the key the domain, but
# Postfix reads its name servers from /etc/resolv.conf only (port 53), which
# a test must not change.
#
# The Postfix client may speak TLS 1.0/1.1 here (tls_medium_cipherlist with
# @SECLEVEL=0; on Debian 12 it negotiated TLSv1.1 with this receiver even
# without it), so B's deferral under the default comes from the map's
# "protocols=>=TLSv1.2", as the control shows.  After outpolicyd's SIGHUP a
# queue flush is enough: Postfix's smtp client keeps no TLS policy from one
# delivery to the next, no "postfix reload" is needed.
#
# Cases:
#   p. postmap -q against the socket: default, exact, case, wildcard and
#      next-hop rules; a wrong map name is a permanent error
#   r. misbehaving socketmap clients (idle, half a request, over-long,
#      garbage, bad keys; split and pipelined requests) while postmap still
#      answers at once; idle ones are closed by the server (after 60 s); a
#      flood of 300 silent clients must not stop other lookups either
#   a. A: default "encrypt protocols=>=TLSv1.2" -> delivered over TLSv1.3
#   b. B: default -> deferred (handshake fails), stays deferred; control
#      after relaxing B's rule to "encrypt protocols=>=TLSv1" (SIGHUP,
#      flush): delivered over TLS 1.0/1.1
#   c. C: default -> deferred (TLS required, not offered); control after
#      relaxing C's rule to "may": delivered in clear
#   d. D: rule "may" -> delivered in clear (and message m to A and D)
#   e. one tls_policy event per answer (next-hop, policy, rule); one
#      destination event per message and recipient domain with
#      outpolicy.tls_policy.policy

set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init tlspolicy
it_tls_cert

RUN=$$
CONF=$IT_DIR/outpolicyd.conf
TSOCK=$IT_RUN/tlspolicy.sock
MAP="socketmap:unix:$TSOCK:tlspolicy"
DEFAULT_POLICY="encrypt protocols=>=TLSv1.2"
OLD_POLICY="encrypt protocols=>=TLSv1"
T0=$SECONDS

it_rcv_start A tls13 || it_die "receiver A did not start"
it_rcv_start B tls11 || it_die "receiver B did not start"
it_rcv_start C plain || it_die "receiver C did not start"
it_rcv_start D plain || it_die "receiver D did not start"
PA=$(it_rcv_port A)
PB=$(it_rcv_port B)
PC=$(it_rcv_port C)
PD=$(it_rcv_port D)
HOP_A="[127.0.0.1]:$PA"
HOP_B="[127.0.0.1]:$PB"
HOP_C="[127.0.0.1]:$PC"
HOP_D="[127.0.0.1]:$PD"
echo "# receivers: A $HOP_A (TLS 1.2/1.3), B $HOP_B (TLS 1.0/1.1), C $HOP_C (plain), D $HOP_D (plain, may)"

# rule MATCH POLICY - one tls_policy.destinations entry
rule()
{
    printf '{ match = "%s"; policy = "%s"; }' "$1" "$2"
}

# config RULES... - write the daemon config with these destination rules
config()
{
    local rules
    rules=$(printf '%s, ' "$@")
    it_daemon_config "$CONF" \
        'outbound.internal_hosts=[ "127.0.0.1/32" ]' \
        'spf.enabled=false' 'dmarc.enabled=false' 'dkim.enabled=false' \
        'arc.enabled=false' \
        "tls_policy.socket=\"unix:$TSOCK\"" \
        'tls_policy.socket_mode="0660"' \
        "tls_policy.default=\"$DEFAULT_POLICY\"" \
        'tls_policy.events=true' \
        "tls_policy.destinations=( ${rules%, } )"
}

# the rules in force before the reload: D's next-hop and its domain "may",
# a wildcard; B and C (next-hops and domains) follow the default
RULES1=(
    "$(rule may.test may)"
    "$(rule "$HOP_D" may)"
    "$(rule .wild.test "encrypt protocols=>=TLSv1.3")"
)
config "${RULES1[@]}"
it_daemon_start "$CONF" || it_die "outpolicyd did not start"
it_check "tls_policy socket exists" test -S "$TSOCK"
it_check_eq "tls_policy socket: mode 660 group postfix" "660 postfix" \
    "$(stat -c '%a %G' "$TSOCK")"

cat >"$IT_DIR/transport" <<EOF
tls13.test    smtp:$HOP_A
legacy.test   smtp:$HOP_B
plain.test    smtp:$HOP_C
may.test      smtp:$HOP_D
EOF
it_postconf "smtp_tls_policy_maps=$MAP" \
    "smtp_tls_loglevel=1" \
    "transport_maps=texthash:$IT_DIR/transport" \
    "smtp_tls_security_level=none" \
    "tls_medium_cipherlist=DEFAULT:@SECLEVEL=0"
IT_MILTER="unix:$IT_SOCK" it_postfix_start
PFETC=$IT_DIR/postfix/etc

# ------------------------------------------------------------ helpers

mid()
{
    printf '<%s.%s@outpolicy.test>' "$1" "$RUN"
}

declare -A QID
# send CASE RCPT... - submit one message (STARTTLS, from an internal host)
send()
{
    local c=$1 r to=
    shift
    for r in "$@"; do
        to=${to:+$to,}$r
    done
    it_swaks --from "$c@outpolicy.test" --to "$to" --tls --tls-protocol tlsv1_3 \
        --header "Message-Id: $(mid "$c")" --header "Subject: $c"
    QID[$c]=$(it_swaks_queue_id)
    it_check "$c: accepted by Postfix (queue ID ${QID[$c]:-none})" test -n "${QID[$c]}"
}

# pf_lines QID ERE - Postfix log lines of QID matching ERE
pf_lines()
{
    [ -n "$1" ] && grep -E " $1: .*$2" "$IT_DIR/postfix/maillog" 2>/dev/null
}

pf_has()
{
    pf_lines "$1" "$2" >/dev/null
}

# pf_deferred_count QID - how many times Postfix deferred QID
pf_deferred_count()
{
    pf_lines "$1" 'status=deferred' | grep -c .
}

pf_deferred_at_least()
{
    [ "$(pf_deferred_count "$1")" -ge "$2" ]
}

# pf_tls_line PORT - Postfix's "TLS connection established" lines to PORT
pf_tls_line()
{
    grep -E "TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:$1: " \
        "$IT_DIR/postfix/maillog"
}

# in_queue QID - the message is still in Postfix's queue
in_queue()
{
    postqueue -c "$PFETC" -j 2>/dev/null | grep -q "\"queue_id\": *\"$1\""
}

# q KEY [MAP] - postmap's answer for KEY; status is postmap's
q()
{
    postmap -c "$PFETC" -q "$1" "${2:-$MAP}" 2>"$IT_DIR/postmap.err"
}

# answer_is KEY WANT - postmap answers WANT for KEY (quietly)
answer_is()
{
    [ "$(q "$1")" = "$2" ]
}

# check_q KEY WANT - postmap answers WANT for KEY
check_q()
{
    it_check_eq "postmap -q $1" "$2" "$(q "$1")"
}

# ev_tls KEY - Python test for the tls_policy events of next-hop KEY
ev_tls()
{
    printf "g(e,'event.action') == 'tls_policy' and g(e,'outpolicy.tls_policy.nexthop') == '%s'" "$1"
}

# check_tls_event KEY POLICY RULE - the last tls_policy event for KEY
check_tls_event()
{
    local sel
    sel=$(ev_tls "$1")
    it_check_eq "event tls_policy $1: policy" "$2" \
        "$(it_event_field "$sel" outpolicy.tls_policy.policy)"
    it_check_eq "event tls_policy $1: rule" "$3" \
        "$(it_event_field "$sel" outpolicy.tls_policy.rule)"
    it_check_eq "event tls_policy $1: destination.address" "$1" \
        "$(it_event_field "$sel" destination.address)"
}

# log_size - the daemon log's size (to wait for lines after it)
log_size()
{
    stat -c %s "$IT_DIR/outpolicyd.log"
}

log_grew()
{
    [ "$(log_size)" -gt "$1" ]
}

# delivered_to NAME CASE - receiver NAME has CASE's message
delivered_to()
{
    it_rcv_by_msgid "$1" "$(mid "$2")" >/dev/null
}

# ------------------------------------------------------------ p. postmap

echo "# p. postmap -q against the socket"
check_q unknown-domain.example "$DEFAULT_POLICY"
check_q may.test may
check_q MAY.TEST may
check_q "$HOP_D" may
check_q "$HOP_A" "$DEFAULT_POLICY"
check_q a.b.wild.test "encrypt protocols=>=TLSv1.3"
check_q wild.test "$DEFAULT_POLICY"
check_q legacy.test "$DEFAULT_POLICY"
q example.com "socketmap:unix:$TSOCK:nosuchmap" >/dev/null
rc=$?
it_check "postmap with a wrong map name fails (status $rc)" test "$rc" -ne 0
it_check "postmap with a wrong map name: permanent error from the server" \
    grep -qiE 'permanent|unknown map' "$IT_DIR/postmap.err"
sed 's/^/    | /' "$IT_DIR/postmap.err"

# ------------------------------------------------------------ r. robustness

echo "# r. misbehaving socketmap clients"
# probe.py bad SOCK OUT HOLD WATCH-PID - misbehaving clients, one JSON line
#   per result in OUT; the idle and half-request clients stay open for at
#   most HOLD s (or until WATCH-PID is gone), recording when the server
#   closes them
# probe.py flood SOCK N TIMEOUT - N silent clients, then three lookups, each
#   given TIMEOUT s; prints "MS REPLY" (MS -1: no reply) per lookup
cat >"$IT_DIR/probe.py" <<'EOF'
import json, os, select, socket, sys, time

t0 = time.monotonic()


def conn(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def ns(b):
    return str(len(b)).encode() + b":" + b + b","


def read(s, replies, wait):
    """read until `replies` netstrings arrived, EOF, or `wait` seconds"""
    buf, closed, end = b"", False, time.monotonic() + wait
    while time.monotonic() < end and buf.count(b",") < replies:
        r, _, _ = select.select([s], [], [], 0.05)
        if not r:
            continue
        try:
            d = s.recv(4096)
        except ConnectionResetError:
            d = b""
        if not d:
            closed = True
            break
        buf += d
    return buf.decode("latin-1"), closed


def bad(path, out, hold, watch):
    def emit(**kw):
        kw["t"] = round(time.monotonic() - t0, 3)
        with open(out, "a") as f:
            f.write(json.dumps(kw) + "\n")

    slow = {"idle": conn(path), "half": conn(path)}
    slow["half"].sendall(b"30:tlspolicy half-a-requ")
    # clients that must get PERM and be closed: wait for EOF (up to 3 s)
    for name, data in (("overlong-netstring", b"99999:" + b"x" * 2000 + b","),
                       ("garbage", b"GET / HTTP/1.0\r\n\r\n"),
                       ("bad-terminator", b"5:hello;"),
                       ("leading-zero", b"020:tlspolicy tls13.test,")):
        s = conn(path)
        s.sendall(data)
        reply, closed = read(s, 99, 3.0)
        emit(client=name, reply=reply, closed=closed)
        s.close()
    # well-formed netstrings with a bad key: PERM, the connection may stay
    for name, data in (("overlong-key", ns(b"tlspolicy " + b"a" * 1000)),
                       ("nul-key", ns(b"tlspolicy exa\0mple.com")),
                       ("empty-key", ns(b"tlspolicy ")),
                       ("newline-key", ns(b"tlspolicy evil.example\n"
                                          b"FORGED outpolicyd line")),
                       ("space-key", ns(b"tlspolicy a b policy=none"))):
        s = conn(path)
        s.sendall(data)
        reply, closed = read(s, 1, 3.0)
        emit(client=name, reply=reply, closed=closed)
        s.close()
    # a request in two pieces, and two requests in one write
    s = conn(path)
    s.sendall(b"20:tlspolicy tls")
    time.sleep(0.3)
    s.sendall(b"13.test,")
    reply, closed = read(s, 1, 3.0)
    emit(client="split", reply=reply, closed=closed)
    s.close()
    s = conn(path)
    s.sendall(ns(b"tlspolicy tls13.test") + ns(b"tlspolicy may.test"))
    reply, closed = read(s, 2, 3.0)
    emit(client="pipelined", reply=reply, closed=closed)
    s.close()
    emit(client="ready")
    left = dict(slow)
    while left and time.monotonic() - t0 < hold:
        try:
            os.kill(watch, 0)
        except ProcessLookupError:
            break
        r, _, _ = select.select(list(left.values()), [], [], 0.5)
        for name, s in list(left.items()):
            if s in r:
                try:
                    d = s.recv(4096)
                except ConnectionResetError:
                    d = b""
                if not d:
                    emit(client=name, closed=True)
                    del left[name]
                else:
                    emit(client=name, reply=d.decode("latin-1"))
    for name in left:
        emit(client=name, closed=False, held=hold)
    emit(client="finished")


def flood(path, n, timeout):
    cs = [conn(path) for _ in range(n)]
    time.sleep(0.3)
    for key in (b"tls13.test", b"may.test", b"other.example"):
        s = conn(path)
        t = time.monotonic()
        s.sendall(ns(b"tlspolicy " + key))
        reply, _ = read(s, 1, timeout)
        ms = int((time.monotonic() - t) * 1000) if reply else -1
        print(ms, reply or "-", flush=True)
        s.close()
    for c in cs:
        c.close()


if sys.argv[1] == "bad":
    bad(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
else:
    flood(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
EOF
PROBE_OUT=$IT_DIR/probe.jsonl
: >"$PROBE_OUT"
PROBE_HOLD=75       # the server closes idle clients after 60 s
"$IT_PY" "$IT_DIR/probe.py" bad "$TSOCK" "$PROBE_OUT" "$PROBE_HOLD" "$$" \
    >"$IT_DIR/probe.log" 2>&1 &
PROBE_PID=$!

probe_has()
{
    grep -q "\"client\": \"$1\"" "$PROBE_OUT"
}

# probe_field CLIENT KEY - KEY of the (last) probe record of CLIENT
probe_field()
{
    "$IT_PY" - "$PROBE_OUT" "$1" "$2" <<'EOF'
import json, sys
v = None
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("client") == sys.argv[2] and sys.argv[3] in e:
        v = e[sys.argv[3]]
print(v if isinstance(v, str) else json.dumps(v))
EOF
}

# is_perm REPLY - REPLY is one netstring "N:PERM ...,"
is_perm()
{
    [[ $1 =~ ^[0-9]+:PERM\ .*,$ ]]
}

it_check "probe clients done (idle and half-request ones held open)" \
    it_wait_for 20 probe_has ready
for c in overlong-netstring garbage bad-terminator leading-zero; do
    reply=$(probe_field "$c" reply)
    it_check "$c: PERM reply ($reply)" is_perm "$reply"
    it_check_eq "$c: connection closed by the server" true "$(probe_field "$c" closed)"
done
for c in overlong-key nul-key empty-key newline-key space-key; do
    reply=$(probe_field "$c" reply)
    it_check "$c: PERM reply ($reply)" is_perm "$reply"
done
it_check "a key with a newline forges no line in the daemon's log" \
    test -z "$(grep '^FORGED' "$IT_DIR/outpolicyd.log")"
it_check_eq "split request: answered" "30:OK $DEFAULT_POLICY," "$(probe_field split reply)"
it_check_eq "pipelined requests: both answered" "30:OK $DEFAULT_POLICY,6:OK may," \
    "$(probe_field pipelined reply)"

# timed lookups while the idle and half-request clients are still open
it_check "idle and half-request clients still open" \
    test -z "$(grep -E '"client": "(idle|half)"' "$PROBE_OUT")"
worst=0
for k in tls13.test may.test other.example "$HOP_D"; do
    t1=$(date +%s%N)
    ans=$(timeout 10 postmap -c "$PFETC" -q "$k" "$MAP" 2>/dev/null)
    t2=$(date +%s%N)
    ms=$(((t2 - t1) / 1000000))
    echo "    postmap -q $k -> '$ans' in $ms ms"
    [ "$ms" -gt "$worst" ] && worst=$ms
    it_check "lookup $k answered while bad clients are open" test -n "$ans"
done
it_check "lookups with bad clients open: slowest $worst ms < 2000 ms" test "$worst" -lt 2000
it_check "daemon alive after the bad clients" it_daemon_alive

# ------------------------------------------------------------ deliveries

echo "# a-d. deliveries under the first rules"
LOG_AT=$(log_size)      # from here on only Postfix asks, until the reload
send case-a rcpt@tls13.test
send case-b rcpt@legacy.test
send case-c rcpt@plain.test
send case-d rcpt@may.test
send case-m one@tls13.test two@tls13.test three@may.test

it_check "a: delivered to A" it_wait_for 20 delivered_to A case-a
fa=$(it_rcv_by_msgid A "$(mid case-a)")
it_check_eq "a: A saw TLSv1.3" TLSv1.3 "$(it_rcv_meta "$fa" tls 2>/dev/null)"
line=$(pf_tls_line "$PA" | tail -n 1)
echo "    | $line"
it_check "a: Postfix logged 'TLS connection established ... TLSv1.3'" \
    grep -q 'TLSv1\.3 with cipher' <<<"$line"
it_check "a: Postfix logged status=sent" pf_has "${QID[case-a]}" "relay=127\.0\.0\.1\[127\.0\.0\.1\]:$PA.*status=sent"

it_check "d: delivered to D" it_wait_for 20 delivered_to D case-d
fd=$(it_rcv_by_msgid D "$(mid case-d)")
it_check_eq "d: in clear (no STARTTLS offered, policy may)" none "$(it_rcv_meta "$fd" tls 2>/dev/null)"
it_check "m: delivered to A" it_wait_for 20 delivered_to A case-m
it_check "m: delivered to D" it_wait_for 20 delivered_to D case-m

it_check "b: deferred" it_wait_for 20 pf_has "${QID[case-b]}" status=deferred
it_check "c: deferred" it_wait_for 20 pf_has "${QID[case-c]}" status=deferred
pf_lines "${QID[case-b]}" status=deferred | tail -n 1 | sed 's/^/    | /'
pf_lines "${QID[case-c]}" status=deferred | tail -n 1 | sed 's/^/    | /'
grep -E "127\.0\.0\.1\[127\.0\.0\.1\]:$PB|TLS library problem" "$IT_DIR/postfix/maillog" |
    grep -v ' status=' | tail -n 3 | sed 's/^/    | /'
it_check "b: Postfix says why (TLS handshake failed)" \
    pf_has "${QID[case-b]}" 'status=deferred.*(Cannot start TLS|handshake fail)'
it_check "c: Postfix says why (TLS required but not offered)" \
    pf_has "${QID[case-c]}" 'status=deferred.*TLS is required, but was not offered'

# "stays deferred": one more queue run, still deferred and never delivered
it_postfix_flush
it_check "b: deferred again after a flush" it_wait_for 20 pf_deferred_at_least "${QID[case-b]}" 2
it_check "c: deferred again after a flush" it_wait_for 20 pf_deferred_at_least "${QID[case-c]}" 2
it_check "b: still in the queue" in_queue "${QID[case-b]}"
it_check "c: still in the queue" in_queue "${QID[case-c]}"
it_check_eq "b: nothing reached B" 0 "$(it_rcv_count B)"
it_check_eq "c: nothing reached C" 0 "$(it_rcv_count C)"
it_check "a: still exactly the expected messages at A" test "$(it_rcv_count A)" -eq 2

echo "# what Postfix asked outpolicyd for (a-d, m)"
tail -c +"$((LOG_AT + 1))" "$IT_DIR/outpolicyd.log" | grep -o 'tls-policy nexthop=.*' |
    sort | uniq -c | sed 's/^/    | /'
KEYS=$(tail -c +"$((LOG_AT + 1))" "$IT_DIR/outpolicyd.log" |
    sed -n 's/.*tls-policy nexthop=\([^ ]*\) .*/\1/p' | sort -u | tr '\n' ' ')
for h in "$HOP_A" "$HOP_B" "$HOP_C" "$HOP_D"; do
    it_check "Postfix looked up the next-hop $h" grep -qF " $h " <<<" $KEYS"
done
it_check_eq "Postfix looked up nothing but the four next-hops (never a recipient domain)" \
    "$(printf '%s\n' "$HOP_A" "$HOP_B" "$HOP_C" "$HOP_D" | sort -u | tr '\n' ' ')" "$KEYS"

# ------------------------------------------------------------ controls

echo "# b, c controls: relax B and C, SIGHUP, flush"
RULES2=(
    "${RULES1[@]}"
    "$(rule "$HOP_B" "$OLD_POLICY")"
    "$(rule legacy.test "$OLD_POLICY")"
    "$(rule "$HOP_C" may)"
    "$(rule plain.test may)"
)
config "${RULES2[@]}"
size=$(log_size)
it_daemon_hup
it_wait_for 5 log_grew "$size"
it_check "daemon alive after SIGHUP" it_daemon_alive
it_check "postmap sees B relaxed after SIGHUP" it_wait_for 5 answer_is "$HOP_B" "$OLD_POLICY"
check_q "$HOP_C" may
check_q legacy.test "$OLD_POLICY"
check_q plain.test may
# Postfix's smtp client keeps no policy across deliveries: a flush (no
# postfix reload) is enough for the new answers to take effect
it_postfix_flush
it_check "b control: delivered to B" it_wait_for 20 delivered_to B case-b
it_check "c control: delivered to C" it_wait_for 20 delivered_to C case-c
fb=$(it_rcv_by_msgid B "$(mid case-b)")
fc=$(it_rcv_by_msgid C "$(mid case-c)")
tb=$(it_rcv_meta "$fb" tls 2>/dev/null)
it_check "b control: B saw TLS 1.0 or 1.1 (got '$tb')" grep -qxE 'TLSv1(\.1)?' <<<"$tb"
line=$(pf_tls_line "$PB" | tail -n 1)
echo "    | $line"
it_check "b control: Postfix logged the old protocol" grep -qE ": TLSv1(\.1)? with cipher" <<<"$line"
it_check_eq "c control: in clear" none "$(it_rcv_meta "$fc" tls 2>/dev/null)"
it_check "b control: status=sent" pf_has "${QID[case-b]}" "relay=127\.0\.0\.1\[127\.0\.0\.1\]:$PB.*status=sent"
it_check "c control: status=sent" pf_has "${QID[case-c]}" "relay=127\.0\.0\.1\[127\.0\.0\.1\]:$PC.*status=sent"

# ------------------------------------------------------------ events

echo "# e. events"
nlog=$(grep -c 'tls-policy nexthop=' "$IT_DIR/outpolicyd.log")
nev=$(it_events_query "g(e,'event.action') == 'tls_policy'")
it_check_eq "one tls_policy event per logged answer" "$nlog" "$nev"
# the answers logged as 'tls-policy nexthop=K policy="P" rule=R' and the
# events, in order (keys with blanks or line breaks left out: see newline-key)
it_check_eq "tls_policy events = logged answers (next-hop, policy, rule), in order" same \
    "$("$IT_PY" - "$IT_DIR/outpolicyd.log" "$IT_EVENTS" <<'EOF'
import json, re, sys
pat = re.compile(r'tls-policy nexthop=(\S+) policy="([^"]*)" rule=(\S+)$')
logged = [m.groups() for m in map(pat.search, open(sys.argv[1])) if m]
events = []
for line in open(sys.argv[2]):
    e = json.loads(line)
    if e.get("event", {}).get("action") == "tls_policy":
        t = e["outpolicy"]["tls_policy"]
        if not re.search(r"\s", t["nexthop"]):
            events.append((t["nexthop"], t["policy"], t["rule"]))
print("same" if logged == events and logged else
      "log %d answers, events %d; first difference %s" % (
          len(logged), len(events),
          next(((a, b) for a, b in zip(logged, events) if a != b), None)))
EOF
)"
check_tls_event "$HOP_A" "$DEFAULT_POLICY" default
check_tls_event "$HOP_B" "$OLD_POLICY" "$HOP_B"
check_tls_event "$HOP_C" may "$HOP_C"
check_tls_event "$HOP_D" may "$HOP_D"
check_tls_event a.b.wild.test "encrypt protocols=>=TLSv1.3" .wild.test
check_tls_event unknown-domain.example "$DEFAULT_POLICY" default
it_check "tls_policy events for $HOP_B before the reload: the default" \
    test "$(it_events_query "$(ev_tls "$HOP_B") and g(e,'outpolicy.tls_policy.rule') == 'default'")" -ge 1

# dest_sel CASE DOMAIN - Python test for CASE's destination event for DOMAIN
dest_sel()
{
    printf "g(e,'event.action') == 'destination' and g(e,'email.message_id') == '%s' and g(e,'destination.domain') == '%s'" \
        "$(mid "$1")" "$2"
}

# check_dest CASE DOMAIN POLICY RULE NRCPT
check_dest()
{
    local sel
    sel=$(dest_sel "$1" "$2")
    it_check_eq "$1: one destination event for $2" 1 "$(it_events_query "$sel")"
    it_check_eq "$1 $2: outpolicy.tls_policy.policy" "$3" \
        "$(it_event_field "$sel" outpolicy.tls_policy.policy)"
    it_check_eq "$1 $2: outpolicy.tls_policy.rule" "$4" \
        "$(it_event_field "$sel" outpolicy.tls_policy.rule)"
    it_check_eq "$1 $2: outpolicy.recipient_count" "$5" \
        "$(it_event_field "$sel" outpolicy.recipient_count)"
    it_check_eq "$1 $2: email.local_id" "${QID[$1]}" \
        "$(it_event_field "$sel" email.local_id)"
}
check_dest case-a tls13.test "$DEFAULT_POLICY" default 1
check_dest case-b legacy.test "$DEFAULT_POLICY" default 1
check_dest case-c plain.test "$DEFAULT_POLICY" default 1
check_dest case-d may.test may may.test 1
check_dest case-m tls13.test "$DEFAULT_POLICY" default 2
check_dest case-m may.test may may.test 1
it_check_eq "case-m: two destination events (two recipient domains)" 2 \
    "$(it_events_query "g(e,'event.action') == 'destination' and g(e,'email.message_id') == '$(mid case-m)'")"

# ------------------------------------------------------------ r. slow clients

echo "# r. idle and half-request clients are closed by the server"
# bounded: the probe gives up after PROBE_HOLD s from its start
it_check "probe finished" it_wait_for "$((PROBE_HOLD + 10))" probe_has finished
for c in idle half; do
    it_check_eq "$c client closed by the server (after $(probe_field "$c" t) s)" \
        true "$(probe_field "$c" closed)"
done
it_stop_pid "$PROBE_PID" 5 >/dev/null 2>&1

FLOOD=300           # the server serves at most 256 clients at a time
echo "# r. connection flood: $FLOOD silent clients, then lookups"
"$IT_PY" "$IT_DIR/probe.py" flood "$TSOCK" "$FLOOD" 5 >"$IT_DIR/flood.txt" 2>&1
sed 's/^/    | /' "$IT_DIR/flood.txt"
worst=$(awk 'BEGIN { w = 0 } { if ($1 < 0) w = -1; else if (w >= 0 && $1 > w) w = $1 } END { print w }' \
    "$IT_DIR/flood.txt")
it_check "lookups with $FLOOD silent clients connected: all answered, slowest $worst ms < 2000 ms" \
    test "$worst" -ge 0 -a "$worst" -lt 2000 -a "$(grep -c OK "$IT_DIR/flood.txt")" -eq 3
it_check "after the flood: postmap answers" test -n "$(timeout 10 postmap -c "$PFETC" -q tls13.test "$MAP")"
it_check "daemon alive at the end" it_daemon_alive
echo "# run time $((SECONDS - T0)) s"

it_summary
