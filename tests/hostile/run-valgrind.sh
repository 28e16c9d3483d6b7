#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/hostile/run-valgrind.sh - one valgrind memcheck run of outpolicyd
# (issue 10) under the integration harness: a short load through a private
# Postfix (MESSAGES messages, default 200, from smtp-source in 4 sessions,
# DKIM-signed and ARC-sealed, SPF and DMARC checked against the loopback
# DNS server), the TLS policy map asked 50 times, and a dozen hostile milter
# inputs (tests/hostile/milterclient.py); then SIGTERM.  Passes when every
# message arrived, the last one's DKIM and ARC verify (dkimpy), outpolicyd
# exits 0, and valgrind reports no invalid access, no use of uninitialised
# memory and no definite leak (--error-exitcode=99 would say otherwise).
#
# Usage (root): tests/hostile/run-valgrind.sh [MESSAGES]
#   OUTPOLICY_BUILD=DIR  a normal (not sanitized) build, default the repo
# Suppressions: tests/hostile/valgrind.supp (none needed so far: memcheck
# reported nothing in outpolicyd, libmilter, libopendkim, libunbound,
# libspf2 or OpenSSL on Debian 12; "possibly lost" blocks, thread stacks
# of threads alive at exit, are not errors here).
# valgrind's log: $IT_DIR/valgrind.log (kept on failure or IT_KEEP=1).
# Prints one line per check and "N passed, N failed"; about 2-4 minutes.

set -u
# shellcheck source=../integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

MESSAGES=${1:-200}
it_init valgrind

SHARED=${OUTPOLICY_SHARED:-$IT_SRC/../shared}
VERIFY=$SHARED/tools/mailauth-verify
CTL=$IT_BUILD/ctl/outpolicyctl
HOSTILE=$IT_SRC/tests/hostile
command -v valgrind >/dev/null 2>&1 || it_die "no valgrind (Debian: valgrind)"
[ -x "$VERIFY" ] || it_die "no $VERIFY (set OUTPOLICY_SHARED)"
it_sanitized && it_die "$IT_BUILD is a sanitizer build: valgrind needs a normal one"

CONF=$IT_DIR/outpolicyd.conf
KEYDIR=$IT_DIR/keys
ZONE=$IT_DIR/keys.zone
TSOCK=$IT_RUN/tlspolicy.sock
VGLOG=$IT_DIR/valgrind.log
mkdir -p "$KEYDIR"
chmod 755 "$KEYDIR"
: >"$ZONE"

mk_key()
{
    "$CTL" keygen --domain "$2" --selector "$3" --out "$KEYDIR/$1.pem" \
        >"$KEYDIR/$1.txt" 2>>"$IT_DIR/keygen.log" || it_die "keygen $1 failed"
    tr '\n()' '   ' <"$KEYDIR/$1.txt" | tr -s ' ' >>"$ZONE"
    printf '\n' >>"$ZONE"
    chown nobody:nogroup "$KEYDIR/$1.pem"
}

mk_key dk example.com dk1
mk_key seal example.com arc1
echo 'example.com. 300 IN TXT "v=spf1 ip4:192.0.2.10 -all"' >>"$ZONE"
echo '_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"' >>"$ZONE"
it_dns_zone -f "$ZONE"
it_dns_start || { IT_DNS_PORT= && it_dns_start; } || it_die "DNS server did not start"
it_tls_cert
it_sink_start
KEYS="( { id = \"dk\"; domain = \"example.com\"; selector = \"dk1\"; file = \"$KEYDIR/dk.pem\"; },"
KEYS="$KEYS { id = \"seal\"; domain = \"example.com\"; selector = \"arc1\"; file = \"$KEYDIR/seal.pem\"; } )"
it_daemon_config "$CONF" \
    "dns.nameservers=[ \"127.0.0.1@$IT_DNS_PORT\" ]" 'egress.ips=[ "192.0.2.10" ]' \
    "keys=$KEYS" 'dkim.signing=( { from = "example.com"; keys = [ "dk" ]; } )' \
    'arc.authserv_id="mx.example.com"' 'arc.key="seal"' \
    'submission_tls.exempt_hosts=[ "127.0.0.1" ]' 'daemon.log_level=1' \
    "tls_policy.socket=\"unix:$TSOCK\"" 'events.buffer=true'

# outpolicyd under valgrind, started like it_daemon_start does (valgrind
# runs it in its own process: the PID is the daemon's)
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,possible \
    --errors-for-leak-kinds=definite --track-origins=yes --error-exitcode=99 \
    --num-callers=30 --suppressions="$HOSTILE/valgrind.supp" --log-file="$VGLOG" \
    "$IT_BUILD/milter/outpolicyd" -f -c "$CONF" >>"$IT_DIR/outpolicyd.log" 2>&1 &
IT_DAEMON_PID=$!
it_wait_for 60 it_daemon_settled
{ it_daemon_alive && [ -S "$IT_SOCK" ]; } || it_die "outpolicyd did not start under valgrind"
IT_MILTER="unix:$IT_SOCK" it_postconf 'milter_content_timeout=120s' 'milter_command_timeout=60s'
IT_MILTER="unix:$IT_SOCK" it_postfix_start

# the load: MESSAGES messages, 4 sessions, several messages per connection
cat >"$IT_DIR/msg.txt" <<EOF
From: Alice <alice@example.com>
To: Bob <bob@remote.example>
Subject: valgrind load
Date: Thu, 01 Jan 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: text/plain

$(for i in $(seq 40); do echo "line $i of a message body that goes through memcheck"; done)
EOF
t0=$SECONDS
timeout 600 smtp-source -d -s 4 -m "$MESSAGES" -f alice@example.com -t bob@remote.example \
    -F "$IT_DIR/msg.txt" "127.0.0.1:$IT_SMTP_PORT" >"$IT_DIR/smtp-source.log" 2>&1
it_check_eq "smtp-source sent $MESSAGES messages" 0 "$?"
it_check "all $MESSAGES delivered" it_sink_wait "$MESSAGES" 300
echo "    $MESSAGES messages in $((SECONDS - t0)) s under valgrind"
last=$(it_sink_last)
it_sink_message_body "$last" crlf >"$IT_DIR/last.eml"
it_check "the last one: DKIM and ARC verify (dkimpy)" \
    "$VERIFY" --zone "$ZONE" --expect-dkim pass --expect-arc pass "$IT_DIR/last.eml"

# the TLS policy map and hostile milter input, under memcheck too
"$IT_PY" - "$TSOCK" >"$IT_DIR/tlsmap.log" 2>&1 <<'EOF'
import socket, sys
for i in range(50):
    d = b"tlspolicy d%d.example" % i
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(sys.argv[1])
    s.sendall(b"%d:%s," % (len(d), d))
    print(s.recv(200).decode())
    s.close()
EOF
it_check_eq "50 TLS policy look-ups answered" 50 "$(grep -c ':OK ' "$IT_DIR/tlsmap.log")"
"$IT_PY" "$HOSTILE/milterclient.py" "unix:$IT_SOCK" headers_10000 header_1m nul_header \
    nul_body bare_cr_lf broken_mime invalid_utf8_from invalid_utf8_mailfrom arc_i0 \
    arc_i51 arc_duplicates arc_garbage dkim_garbage abort_midway headers_1m_total \
    half_packet eom_then_close bogus_length_huge >"$IT_DIR/hostile.jsonl" 2>&1
it_check_eq "18 hostile milter cases ran" 18 "$(grep -c '"case"' "$IT_DIR/hostile.jsonl")"
it_check "outpolicyd alive under valgrind" it_daemon_alive

it_daemon_stop
rc=$?
it_check_eq "outpolicyd exits 0 under valgrind (99 = memcheck errors)" 0 "$rc"
sed -n '/HEAP SUMMARY/,$p' "$VGLOG" | grep -E 'in use at exit|definitely|indirectly|possibly|still reachable|suppressed|ERROR SUMMARY' |
    sed 's/^==[0-9]*== */    valgrind: /'
it_check "valgrind: no invalid read/write/free, no uninitialised use" \
    test -z "$(grep -E 'Invalid (read|write|free)|uninitialised|Mismatched free|overlap' "$VGLOG")"
it_check "valgrind: definitely lost 0 bytes" \
    grep -qE 'definitely lost: 0 bytes|All heap blocks were freed' "$VGLOG"
it_check "valgrind: ERROR SUMMARY 0 errors" grep -q 'ERROR SUMMARY: 0 errors' "$VGLOG"
it_summary
