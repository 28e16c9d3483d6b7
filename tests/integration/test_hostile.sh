#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_hostile.sh - hostile input (issue 10): outpolicyd
# gets a defined result for every malformed or abusive input, never
# crashes, keeps its memory bounded and keeps serving other clients.
#
# Input goes three ways:
#   A. through Postfix (tests/hostile/rawsmtp.py, byte-exact SMTP from
#      127.0.0.2): 10,000 header fields, a 1 MB header field (plain and
#      folded), NUL bytes in a header and in the body, bare CR, bare LF,
#      broken MIME, invalid UTF-8 in From: and in MAIL FROM, ARC sets with
#      i=0, i=51 and duplicated instances.  Each gets a defined SMTP reply;
#      what is accepted arrives at the sink with a DKIM signature that
#      dkimpy (../shared/tools/mailauth-verify) verifies.
#   B. directly on the milter socket (tests/hostile/milterclient.py, the MTA
#      side of the milter protocol): the same kinds of input and what no MTA
#      sends: 1 MB header packets, 1.2 MB of header block, truncated
#      packets, lengths of 0, 2 GB and 4 GB, unknown commands, broken option
#      negotiation, commands out of order, CR/LF and invalid UTF-8 in the
#      envelope (the daemon's log must stay one printable UTF-8 line per
#      entry), 1000 recipients, 2000 From: addresses, 60 ARC sets.  Each
#      case has the outcome listed in MILTER_EXPECT below.  The whole set
#      runs twice; the second round must not grow the daemon's memory.
#   C. on the TLS policy socketmap (tests/hostile/mapclient.py): oversized
#      and overflowing netstring lengths, 1 MB of digits or data, NUL, CR/LF
#      and invalid UTF-8 in keys, 200 pipelined requests, a truncated
#      request, one byte every 0.5 s, and 300 connections that never send
#      (more than the server's 256 slots) while look-ups are timed.
# Meanwhile 50 milter connections that never send and 20 that stop in the
# middle of a packet stay open (each of those 20 holds a libmilter worker
# thread until libmilter's read timeout), and after
# each part a normal message goes through Postfix (STARTTLS TLSv1.3, from
# 127.0.0.3) and must arrive signed.  Throughout, outpolicyd must be the
# same process (PID) as at the start; its RSS is printed before and after
# each part; 1000 messages on one milter connection (after 300 to warm up)
# must not grow it by more than LOOP_GROWTH_KB (4 MB), nor the second
# round of milter cases by more than ROUND_GROWTH_KB (8 MB).  At the end outpolicyd is
# stopped (exit status 0), its events file must be valid UTF-8 JSON lines,
# and its log must hold no forged line and no sanitizer report.
#
# Run it against a sanitizer build too: OUTPOLICY_BUILD=DIR of a
# "./configure --enable-sanitizers" build; ASan/UBSan/LSan reports then go
# to the daemon's log and fail the test (memory bounds are only printed
# there: ASan's quarantine keeps freed memory).
#
# Needs what test_arc.sh needs (unbound, python3-dkim, python3-nacl).
# Prints one line per check and "N passed, N failed"; exits non-zero when a
# check failed.  IT_KEEP=1 keeps the scratch directory.

set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init hostile

it_need_verifier
HOSTILE=$IT_SRC/tests/hostile
command -v unbound >/dev/null 2>&1 || it_die "no unbound (Debian: unbound)"
it_sanitizer_env

RUN=$$
CONF=$IT_DIR/outpolicyd.conf
KEYDIR=$IT_DIR/keys
ZONE=$IT_DIR/keys.zone
OUT=$IT_DIR/out
TSOCK=$IT_RUN/tlspolicy.sock
LOOP_GROWTH_KB=${LOOP_GROWTH_KB:-4096}   # 1000 messages, release build
ROUND_GROWTH_KB=${ROUND_GROWTH_KB:-8192} # second round of milter cases
mkdir -p "$KEYDIR" "$OUT"
chmod 755 "$KEYDIR"
: >"$ZONE"
SANITIZED=0
it_sanitized && SANITIZED=1

# ------------------------------------------------------------ helpers

# mk_key ID DOMAIN SELECTOR - an RSA key for the daemon user, record in $ZONE
mk_key() { it_mk_key "$KEYDIR" "$ZONE" "$@"; }

# rss LABEL - print the daemon's RSS, threads and descriptors
rss()
{
    printf '    rss %-34s %6s kB, %3s threads, %3s fds (%d s)\n' "$1" \
        "$(it_proc_rss "$PID0")" "$(it_proc_threads "$PID0")" "$(it_proc_fds "$PID0")" "$SECONDS"
}

# same_daemon LABEL - outpolicyd is still the process that started
same_daemon()
{
    it_check "$1: outpolicyd alive, same PID $PID0" it_daemon_is "$PID0"
}

# verify NAME - dkimpy verifies the DKIM signature of $OUT/NAME.eml
verify()
{
    "$VERIFY" --zone "$ZONE" --expect-dkim pass "$OUT/$1.eml" >"$OUT/$1.json" 2>&1
}

# served LABEL - a normal message through Postfix arrives, DKIM-verified
served()
{
    local c=served-$1 mid f
    mid="<$c.$RUN@example.com>"
    it_swaks --tls --tls-protocol tlsv1_3 --local-interface 127.0.0.3 \
        --from "alice@example.com" --header "From: Alice <alice@example.com>" \
        --header "Message-Id: $mid" --header "Subject: $c" --body "still served"
    if [ "$IT_SWAKS_RC" != 0 ] || ! it_sink_wait_msgid "$mid" 30; then
        it_fail "$1: a normal message is still served" "swaks rc $IT_SWAKS_RC, $(it_swaks_reply_to .)"
        return 1
    fi
    f=$(it_sink_by_msgid "$mid")
    it_sink_message_body "$f" crlf >"$OUT/$c.eml"
    it_check "$1: a normal message is still served (DKIM pass)" \
        verify "$c"
}

# jfield FILE CASE KEY - KEY of CASE's JSON line in FILE (lists joined by ,)
jfield()
{
    "$IT_PY" - "$@" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="latin-1"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("case") == sys.argv[2]:
        v = e.get(sys.argv[3], "")
        print(",".join(v) if isinstance(v, list) else v)
        break
EOF
}

# ------------------------------------------------------------ set-up

mk_key dk example.com dk1
mk_key seal example.com arc1
{
    echo 'example.com. 300 IN TXT "v=spf1 ip4:192.0.2.10 -all"'
    echo '_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"'
} >>"$ZONE"
it_dns_zone -f "$ZONE"
# (a port picked as free can be taken by a concurrent test: one more try)
it_dns_start || { IT_DNS_PORT= && it_dns_start; } ||
    it_die "the loopback DNS server did not start"

it_tls_cert
it_sink_start
KEYS="( { id = \"dk\"; domain = \"example.com\"; selector = \"dk1\"; file = \"$KEYDIR/dk.pem\"; },"
KEYS="$KEYS { id = \"seal\"; domain = \"example.com\"; selector = \"arc1\"; file = \"$KEYDIR/seal.pem\"; } )"
it_daemon_config "$CONF" \
    "dns.nameservers=[ \"127.0.0.1@$IT_DNS_PORT\" ]" 'dns.timeout=2' \
    'egress.ips=[ "192.0.2.10" ]' \
    "keys=$KEYS" \
    'dkim.signing=( { from = "example.com"; keys = [ "dk" ]; } )' \
    'dkim.on_no_key="accept"' \
    'arc.authserv_id="mx.example.com"' 'arc.key="seal"' \
    'submission_tls.exempt_hosts=[ "127.0.0.2" ]' \
    "tls_policy.socket=\"unix:$TSOCK\"" 'tls_policy.events=true' \
    'events.buffer=true'
it_daemon_start "$CONF" || it_die "outpolicyd did not start"
PID0=$IT_DAEMON_PID
IT_MILTER="unix:$IT_SOCK" it_postfix_start
echo "# outpolicyd PID $PID0 ($([ "$SANITIZED" = 1 ] && echo "ASan+UBSan build" || echo "build") $IT_BUILD)"
RSS_START=$(it_proc_rss "$PID0")
rss "at start"
served start

# clients that connect and never send, held open in the background
"$IT_PY" "$HOSTILE/milterclient.py" "unix:$IT_SOCK" idle 50 45 >"$IT_DIR/idle-milter.log" 2>&1 &
IDLE_MILTER=$!
"$IT_PY" "$HOSTILE/mapclient.py" "unix:$TSOCK" flood 300 36 >"$IT_DIR/idle-map.log" 2>&1 &
IDLE_MAP=$!
"$IT_PY" "$HOSTILE/milterclient.py" "unix:$IT_SOCK" stall 20 45 >"$IT_DIR/stall-milter.log" 2>&1 &
STALL_MILTER=$!
# milter cases where libmilter waits for the rest of a packet (3 s each)
"$IT_PY" "$HOSTILE/milterclient.py" "unix:$IT_SOCK" zero_length bogus_length_2g out_of_order \
    >"$IT_DIR/milter-held.jsonl" 2>"$IT_DIR/milter-held.err" &
HELD=$!
ready() { grep -q '^ready' "$1"; }
it_check "50 idle milter connections open" it_wait_for 20 ready "$IT_DIR/idle-milter.log"
it_check "300 idle socketmap connections open" it_wait_for 20 ready "$IT_DIR/idle-map.log"
it_check "20 milter connections stalled in mid-packet" it_wait_for 20 ready "$IT_DIR/stall-milter.log"
rss "with 50 + 20 + 300 idle clients"

# ------------------------------------------------------------ A. through Postfix

echo "# A. hostile messages through Postfix"
SMTP_OUT=$IT_DIR/smtp.jsonl
# shellcheck disable=SC2046  # the case list is words
"$IT_PY" "$HOSTILE/rawsmtp.py" 127.0.0.1 "$IT_SMTP_PORT" 127.0.0.2 "$RUN" \
    $("$IT_PY" "$HOSTILE/rawsmtp.py" list) >"$SMTP_OUT" 2>"$IT_DIR/smtp.err"
DELIVERED=(plain headers-10000 header-1m header-1m-folded header-90k-folded nul-header
    nul-body bare-cr bare-lf broken-mime arc-i0 arc-i51 arc-duplicates)
for c in "${DELIVERED[@]}"; do
    reply=$(jfield "$SMTP_OUT" "$c" reply)
    it_check "$c: accepted at end of data ($reply)" \
        test "$(jfield "$SMTP_OUT" "$c" stage)" = eod -a "$(jfield "$SMTP_OUT" "$c" code)" = 250
done
reply=$(jfield "$SMTP_OUT" utf8-from-header reply)
it_check "utf8-from-header: 550 5.7.1 at end of data ($reply)" \
    test "$(jfield "$SMTP_OUT" utf8-from-header stage)" = eod -a "${reply:0:9}" = "550 5.7.1"
for c in utf8-mail-from utf8-mail-from-smtputf8; do
    reply=$(jfield "$SMTP_OUT" "$c" reply)
    # Postfix itself refuses malformed UTF-8 in MAIL FROM (500 5.5.2)
    it_check "$c: refused with a 5xx ($reply)" test "${reply:0:1}" = 5
done
for c in "${DELIVERED[@]}"; do
    mid="<$c.$RUN@example.com>"
    if ! it_sink_wait_msgid "$mid" 30; then
        it_fail "$c: delivered" "no message $mid at the sink"
        continue
    fi
    it_sink_message_body "$(it_sink_by_msgid "$mid")" crlf >"$OUT/$c.eml"
    it_check "$c: delivered, DKIM signature verifies (dkimpy)" verify "$c"
done
it_check_eq "no more than those were delivered" $((${#DELIVERED[@]} + 1)) "$(it_sink_count)"
for c in arc-i0 arc-i51 arc-duplicates; do
    it_check_eq "$c: event says the incoming chain failed" fail \
        "$(it_event_field "g(e,'email.message_id') == '<$c.$RUN@example.com>' and g(e,'event.action') == 'submission'" outpolicy.arc.cv)"
done
same_daemon "A"
rss "after A (through Postfix)"
served A

# ------------------------------------------------------------ B. milter socket

echo "# B. hostile input on the milter socket"
# outcome per case: signed = continue with a DKIM-Signature (and an
# ARC-Seal); nosealed = signed but no ARC-Seal (60 sets: not extended);
# "550 5.7.1"/"552 5.3.4" = that reply; closed = libmilter closed the
# connection (over-long packets, protocol errors); sent = the client only
# sent (half packets, going away mid-message)
declare -A MILTER_EXPECT=(
    [normal]=signed [headers_10000]=signed [header_60k]=signed [nul_header]=signed
    [nul_header_name]=signed [nul_body]=signed [bare_cr_lf]=signed [broken_mime]=signed
    [invalid_utf8_mailfrom]=signed [many_from]=signed [many_rcpts]=signed
    [arc_i0]=signed [arc_i51]=signed [arc_duplicates]=signed [arc_garbage]=signed
    [dkim_garbage]=signed [abort_midway]=signed [body_many_chunks]=signed
    [arc_60_sets]=nosealed
    [header_1m]=closed [header_1m_folded]=closed [bogus_length_huge]=closed
    [bogus_length_70k]=closed [bad_optneg]=closed [short_optneg]=closed
    [unknown_command]=closed [connect_garbage]=closed [connect_family]=closed
    [mail_no_args]=closed [macro_garbage]=closed
    [headers_1m_total]="552 5.3.4" [invalid_utf8_from]="550 5.7.1"
    [overlong_addresses]="550 5.7.1" [no_from]="550 5.7.1" [log_injection]="553 5.1.7"
    [log_injection_sender]="signed|5xx"
    [half_packet]=sent [half_length]=sent [eom_then_close]=sent [close_in_headers]=sent
)

# expect_ok WANT GOT - GOT is one of WANT's "|"-separated outcomes ("5xx":
# any 5xx reply)
expect_ok()
{
    local a
    local -a alts
    IFS='|' read -ra alts <<<"$1"
    for a in "${alts[@]}"; do
        [ "$a" = "$2" ] && return 0
        [ "$a" = 5xx ] && [[ $2 == 5[0-9][0-9]\ * ]] && return 0
    done
    return 1
}

# outcome RESULT REPLY EDITS - the MILTER_EXPECT word for what happened
outcome()
{
    case $1 in
    continue | accept)
        case ,$3, in
        *,i:DKIM-Signature,*,i:ARC-Seal,*) echo signed ;;
        *,i:DKIM-Signature,*) echo nosealed ;;
        *) echo "unsigned $1" ;;
        esac
        ;;
    replycode) echo "${2:0:9}" ;;
    *) echo "$1" ;;
    esac
}

# milter_round N [--nr] - every case once; outcomes checked.  --nr: the
# client offers what Postfix offers (no replies to connect, HELO, headers
# and body chunks; no DATA): a failure in a header or body chunk must then
# be answered at end of headers / end of message, with the same reply
milter_round()
{
    local out=$IT_DIR/milter-$1.jsonl c got
    "$IT_PY" "$HOSTILE/milterclient.py" "unix:$IT_SOCK" ${2:+"$2"} "${!MILTER_EXPECT[@]}" \
        >"$out" 2>"$IT_DIR/milter-$1.err"
    for c in $(printf '%s\n' "${!MILTER_EXPECT[@]}" | sort); do
        got=$(outcome "$(jfield "$out" "$c" result)" "$(jfield "$out" "$c" reply)" \
            "$(jfield "$out" "$c" edits)")
        it_check "milter round $1${2:+ ($2)}: $c -> ${MILTER_EXPECT[$c]} (got $got)" \
            expect_ok "${MILTER_EXPECT[$c]}" "$got"
    done
}

milter_round 1
RSS_R1=$(it_proc_rss "$PID0")
rss "after milter round 1"
milter_round 2 --nr
# the no-reply steps were really agreed in round 2 (and not in round 1):
# connect 0x1000, HELO 0x2000, headers 0x80, body 0x80000; no DATA 0x200
nr_agreed()
{
    local f
    f=$(jfield "$IT_DIR/milter-$1.jsonl" normal pflags)
    [ -n "$f" ] && [ $((f & 0x83280)) -eq "$2" ]
}
it_check "round 1: a client that offers no no-reply steps gets replies to every step" \
    nr_agreed 1 0
it_check "round 2: outpolicyd agreed to no replies for connect, HELO, headers, body chunks and to no DATA" \
    nr_agreed 2 $((0x83280))
RSS_R2=$(it_proc_rss "$PID0")
rss "after milter round 2"
if [ "$SANITIZED" = 0 ]; then
    it_check "milter round 2 grew RSS by $((RSS_R2 - RSS_R1)) kB (<= $ROUND_GROWTH_KB)" \
        test $((RSS_R2 - RSS_R1)) -le "$ROUND_GROWTH_KB"
fi
it_check "held cases finished" it_wait_for 30 it_pid_gone "$HELD"
wait "$HELD" 2>/dev/null
for c in zero_length bogus_length_2g; do
    got=$(jfield "$IT_DIR/milter-held.jsonl" "$c" result)
    # libmilter waits for the rest of the packet (its read timeout) or closes
    it_check "$c: connection held or closed, no answer ($got)" \
        test "$got" = timeout -o "$got" = closed
done
got=$(jfield "$IT_DIR/milter-held.jsonl" out_of_order reply)
it_check "out_of_order: commands before MAIL ignored or refused ($got)" \
    test -n "$(grep -E '^((timeout|tempfail|closed),){4}(timeout|tempfail|closed)$' <<<"$got")"
it_check "no forged line in the daemon's log (CR/LF in the envelope)" \
    test -z "$(grep -aE '^FORGED-(LINE|CR)' "$IT_DIR/outpolicyd.log")"
# what a client sends is escaped in the log: no control character, no
# invalid UTF-8 (invalid_utf8_mailfrom, log_injection_sender)
it_check "the daemon's log is printable UTF-8 (client bytes escaped)" "$IT_PY" -c '
import sys
for n, line in enumerate(open(sys.argv[1], "rb"), 1):
    try:
        t = line.rstrip(b"\n").decode("utf-8")
    except UnicodeDecodeError as e:
        sys.exit("line %d: %s" % (n, e))
    if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in t):
        sys.exit("line %d: control character: %r" % (n, t[:120]))' "$IT_DIR/outpolicyd.log"
same_daemon "B"
served B

# LOOP_N messages on one connection, after LOOP_WARM to warm up (fewer
# under ASan, where every allocation records a full stack)
LOOP_WARM=300 LOOP_N=1000
[ "$SANITIZED" = 1 ] && LOOP_WARM=50 LOOP_N=200
"$IT_PY" "$HOSTILE/milterclient.py" "unix:$IT_SOCK" loop "$LOOP_WARM" >"$IT_DIR/loop1.log" 2>&1
RSS_L1=$(it_proc_rss "$PID0")
"$IT_PY" "$HOSTILE/milterclient.py" "unix:$IT_SOCK" loop "$LOOP_N" >"$IT_DIR/loop2.log" 2>&1
RSS_L2=$(it_proc_rss "$PID0")
it_check "$LOOP_N messages on one connection: all signed" \
    grep -q "\"results\": {\"continue\": $LOOP_N}" "$IT_DIR/loop2.log"
rss "after $LOOP_WARM + $LOOP_N messages"
if [ "$SANITIZED" = 0 ]; then
    it_check "$LOOP_N messages grew RSS by $((RSS_L2 - RSS_L1)) kB (<= $LOOP_GROWTH_KB)" \
        test $((RSS_L2 - RSS_L1)) -le "$LOOP_GROWTH_KB"
fi

# ------------------------------------------------------------ C. socketmap

echo "# C. hostile requests on the TLS policy socketmap"
MAP_OUT=$IT_DIR/map.jsonl
# shellcheck disable=SC2046  # the case list is words
"$IT_PY" "$HOSTILE/mapclient.py" "unix:$TSOCK" $("$IT_PY" "$HOSTILE/mapclient.py" x list) \
    >"$MAP_OUT" 2>"$IT_DIR/map.err"
DEFAULT_ANSWER='30:OK encrypt protocols=>=TLSv1.2,'
perm_closed()
{
    [[ $(jfield "$MAP_OUT" "$1" reply) =~ ^[0-9]+:PERM\ .*,$ ]] &&
        [ "$(jfield "$MAP_OUT" "$1" closed)" = True ]
}
perm()
{
    [[ $(jfield "$MAP_OUT" "$1" reply) =~ ^[0-9]+:(PERM|NOTFOUND)\ ?.*,$ ]]
}
it_check_eq "normal look-up answered" "$DEFAULT_ANSWER" "$(jfield "$MAP_OUT" normal reply)"
for c in oversized-length length-overflow digits-1m data-1m max-plus-one no-colon negative binary; do
    it_check "$c: PERM reply, connection closed ($(jfield "$MAP_OUT" "$c" reply | cut -c1-60))" perm_closed "$c"
done
for c in max-exact nul-key utf8-invalid-key crlf-key wrong-map no-space empty-netstring; do
    it_check "$c: PERM or NOTFOUND reply ($(jfield "$MAP_OUT" "$c" reply | cut -c1-60))" perm "$c"
done
it_check "utf8-key: the default or PERM ($(jfield "$MAP_OUT" utf8-key reply))" \
    test "$(jfield "$MAP_OUT" utf8-key reply)" = "$DEFAULT_ANSWER" -o -n "$(perm utf8-key && echo y)"
it_check_eq "pipelined-200: 200 answers" 200 \
    "$(jfield "$MAP_OUT" pipelined-200 reply | grep -o 'OK encrypt' | grep -c .)"
it_check_eq "truncated request: nothing answered" "" "$(jfield "$MAP_OUT" truncated reply)"
it_check "slow-partial: closed by the server within 15 s ($(jfield "$MAP_OUT" slow-partial after_s) s)" \
    test "$(jfield "$MAP_OUT" slow-partial closed)" = True
it_check "no forged line in the daemon's log (CR/LF in a key)" \
    test -z "$(grep -a '^FORGED-MAP-LINE' "$IT_DIR/outpolicyd.log")"
# the look-ups timed while 300 idle connections were open
mapfile -t LOOKUPS < <(grep -E '^[0-9]+ ' "$IT_DIR/idle-map.log")
it_check_eq "3 look-ups while 300 idle connections were open" 3 "${#LOOKUPS[@]}"
for l in "${LOOKUPS[@]}"; do
    it_check "look-up with 300 idle connections open: ${l%% *} ms < 2000, answered" \
        test "${l%% *}" -lt 2000 -a "${l#* }" != -
done
same_daemon "C"
rss "after C (socketmap)"

# ------------------------------------------------------------ idle clients

echo "# idle clients"
it_check "idle socketmap clients done" it_wait_for 40 it_pid_gone "$IDLE_MAP"
wait "$IDLE_MAP" 2>/dev/null
closed=$(sed -n 's/^closed //p' "$IT_DIR/idle-map.log")
it_check "300 idle socketmap connections closed by the server after 30 s idle (${closed:-?} closed)" \
    test "${closed:-0}" -eq 300
it_check "idle milter clients done" it_wait_for 40 it_pid_gone "$IDLE_MILTER"
wait "$IDLE_MILTER" 2>/dev/null
closed=$(sed -n 's/^closed //p' "$IT_DIR/idle-milter.log")
# libmilter keeps a silent connection for its read timeout (smfi_settimeout,
# 7210 s by default): reported, not failed
echo "    note: $closed of 50 idle milter connections were closed by outpolicyd after 45 s"
it_check "stalled milter clients done" it_wait_for 40 it_pid_gone "$STALL_MILTER"
wait "$STALL_MILTER" 2>/dev/null
closed=$(sed -n 's/^closed //p' "$IT_DIR/stall-milter.log")
echo "    note: $closed of 20 mid-packet milter connections were closed by outpolicyd after 45 s"
same_daemon "idle"
served end

# ------------------------------------------------------------ the end

rss "at the end"
echo "    RSS start $RSS_START kB, end $(it_proc_rss "$PID0") kB"
it_check "events file: every line is UTF-8 JSON" "$IT_PY" -c '
import json, sys
for n, line in enumerate(open(sys.argv[1], "rb"), 1):
    try:
        json.loads(line.decode("utf-8"))
    except ValueError as e:
        sys.exit("line %d: %s" % (n, e))' "$IT_EVENTS"
it_daemon_stop
rc=$?
it_check_eq "outpolicyd stops cleanly (exit status)" 0 "$rc"
it_check "no sanitizer report in the daemon's log" it_sanitizer_reports
it_summary
