#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_spf.sh - SPF egress authorisation, alignment and
# DMARC pre-flight (issue 4) through a real Postfix, with outpolicyd's
# dns.nameservers pointed at a loopback unbound serving the test zones.
#
# Cases: one per SPF result (pass, fail, softfail, neutral, none,
# temperror through an unreachable and a timing-out server with the delay
# measured, permerror through a syntax error and two v=spf1 records, more
# than 10 DNS-querying terms); egress.spf_includes reached directly,
# nested, beyond 10 look-ups and not at all; aligned and misaligned From,
# relaxed vs strict (aspf=s), the public-suffix boundary (co.uk);
# DMARC p=reject predicted fail refused, p=none warned; DKIM-aligned
# signing rescuing a misaligned SPF; the null sender evaluated with
# egress.helo_name; monitor mode logging the same verdicts without acting;
# outpolicyctl preflight agreeing with the daemon.
#
# Needs what test_submission.sh needs, plus unbound (the DNS server) and,
# for the DKIM case, ../shared/tools/mailauth-verify (python3-dkim).
# Prints one line per check and "N passed, N failed"; exits non-zero when a
# check failed.  IT_KEEP=1 keeps the scratch directory.
#
# The egress address receivers see is 192.0.2.10; swaks submits in clear
# from 127.0.0.1 (an internal host exempt from the TLS check).  Every
# message carries Message-Id <CASE.RUN@outpolicy.test>; events are found by
# it.

set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init spf

VERIFY=$SHARED/tools/mailauth-verify
it_need_ctl
command -v unbound >/dev/null 2>&1 || it_die "no unbound (Debian package unbound)"

it_sink_start

RUN=$$
CONF=$IT_DIR/outpolicyd.conf
EGRESS=192.0.2.10
TIMEOUT=2                # dns.timeout in the temperror cases, seconds
KEYDIR=$IT_DIR/keys
REFUSED=()               # cases whose message must never reach the sink
ELAPSED=0
mkdir -p "$KEYDIR"
chmod 755 "$KEYDIR"

# ------------------------------------------------------------ the zones

TOOMANY="v=spf1"
for i in $(seq 1 11); do
    TOOMANY="$TOOMANY a:h$i.toomany.example"
    it_dns_zone "h$i.toomany.example. 300 IN A 198.51.100.$i"
done
for i in $(seq 1 9); do
    it_dns_zone "c$i.chain.example. 300 IN TXT \"v=spf1 include:c$((i + 1)).chain.example -all\""
done
cat >"$IT_DIR/spf.zone" <<EOF
# one case per SPF result (egress $EGRESS)
pass.example.            300 IN TXT "v=spf1 ip4:$EGRESS -all"
_dmarc.pass.example.     300 IN TXT "v=DMARC1; p=reject"
fail.example.            300 IN TXT "v=spf1 ip4:198.51.100.7 -all"
softfail.example.        300 IN TXT "v=spf1 ip4:198.51.100.7 ~all"
neutral.example.         300 IN TXT "v=spf1 ip4:198.51.100.7 ?all"
none.example.            300 IN TXT "google-site-verification=0123456789abcdef"
syntax.example.          300 IN TXT "v=spf1 ip4:$EGRESS ip4:192.0.2.300 -all"
twospf.example.          300 IN TXT "v=spf1 ip4:$EGRESS -all"
twospf.example.          300 IN TXT "v=spf1 -all"
toomany.example.         300 IN TXT "$TOOMANY ip4:$EGRESS -all"
slow.example.            300 IN TXT "v=spf1 ip4:$EGRESS -all"
# alignment and DMARC
example.com.             300 IN TXT "v=spf1 ip4:$EGRESS -all"
bounce.example.com.      300 IN TXT "v=spf1 ip4:$EGRESS -all"
_dmarc.example.com.      300 IN TXT "v=DMARC1; p=reject; aspf=s"
_dmarc.other.example.    300 IN TXT "v=DMARC1; p=reject"
bounce.relaxed.example.  300 IN TXT "v=spf1 ip4:$EGRESS -all"
_dmarc.relaxed.example.  300 IN TXT "v=DMARC1; p=reject; aspf=r"
_dmarc.pnone.example.    300 IN TXT "v=DMARC1; p=none"
_dmarc.signed.example.   300 IN TXT "v=DMARC1; p=reject; adkim=s"
example.co.uk.           300 IN TXT "v=spf1 ip4:$EGRESS -all"
mail.example.co.uk.      300 IN TXT "v=spf1 ip4:$EGRESS -all"
other.co.uk.             300 IN TXT "v=spf1 ip4:$EGRESS -all"
_dmarc.example.co.uk.    300 IN TXT "v=DMARC1; p=reject"
mx.helo.example.         300 IN TXT "v=spf1 ip4:$EGRESS -all"
_dmarc.helo.example.     300 IN TXT "v=DMARC1; p=reject"
# egress.spf_includes
spf.mail.qq.com.         300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
direct.example.          300 IN TXT "v=spf1 include:spf.mail.qq.com -all"
nested.example.          300 IN TXT "v=spf1 include:_spf.nested.example -all"
_spf.nested.example.     300 IN TXT "v=spf1 ip4:198.51.100.0/24 include:_spf2.nested.example -all"
_spf2.nested.example.    300 IN TXT "v=spf1 include:spf.mail.qq.com ~all"
notreached.example.      300 IN TXT "v=spf1 ip4:$EGRESS -all"
chain.example.           300 IN TXT "v=spf1 include:c1.chain.example -all"
c10.chain.example.       300 IN TXT "v=spf1 include:spf.mail.qq.com -all"
EOF
it_dns_zone -f "$IT_DIR/spf.zone"

# the DKIM key that rescues a misaligned SPF (signed.example, adkim=s)
"$CTL" keygen --domain signed.example --selector s1 --algorithm rsa \
    --bits 2048 --out "$KEYDIR/s.pem" >"$IT_DIR/keys.zone" 2>"$IT_DIR/keygen.log" ||
    it_die "outpolicyctl keygen failed: $(tail -n 2 "$IT_DIR/keygen.log")"
it_check_eq "keygen: key file mode" 600 "$(stat -c %a "$KEYDIR/s.pem")"
chown nobody:nogroup "$KEYDIR/s.pem"

it_dns_start || it_die "the loopback DNS server did not start"
it_check_eq "dns: the server answers a test record" "NOERROR 1" \
    "$(it_dns_query pass.example TXT)"
it_check_eq "dns: a name not in the zone is NXDOMAIN" "NXDOMAIN 0" \
    "$(it_dns_query nothere.example TXT)"
it_check_eq "dns: two v=spf1 records are both served" "NOERROR 2" \
    "$(it_dns_query twospf.example TXT)"

NS="[ \"127.0.0.1@$IT_DNS_PORT\" ]"
BASE=(
    'submission_tls.exempt_hosts=[ "127.0.0.1" ]'
    "dns.nameservers=$NS"
    "dns.timeout=$TIMEOUT"
    "egress.ips=[ \"$EGRESS\" ]"
    'egress.helo_name="mx.helo.example"'
    "keys=( { id = \"s\"; domain = \"signed.example\"; selector = \"s1\"; file = \"$KEYDIR/s.pem\"; algorithm = \"rsa-sha256\"; } )"
    'dkim.signing=( { from = "signed.example"; keys = [ "s" ]; } )'
    'dkim.on_no_key="accept"'
)
INCLUDES='egress.spf_includes=[ "spf.mail.qq.com" ]'

# ------------------------------------------------------------ helpers

# mid CASE - the Message-Id of CASE
mid()
{
    printf '<%s.%s@outpolicy.test>' "$1" "$RUN"
}

# send CASE MAIL-FROM FROM-HEADER [SWAKS-ARGS...] - one message; ELAPSED
# is the time swaks took, in seconds
send()
{
    local c=$1 mf=$2 hf=$3 t0
    shift 3
    t0=$EPOCHREALTIME
    it_swaks --from "$mf" --header "From: $hf" --header "Message-Id: $(mid "$c")" \
        --header "Subject: $c" --body "Quarterly figures for $c. Regards" "$@"
    ELAPSED=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
}

# sel CASE - Python test selecting CASE's submission event
sel()
{
    printf "g(e,'event.action') == 'submission' and g(e,'email.message_id') == '%s'" "$(mid "$1")"
}

has_event()
{
    [ "$(it_events_query "$(sel "$1")")" -ge 1 ]
}

# ev CASE PATH - field PATH of CASE's submission event
ev()
{
    it_event_field "$(sel "$1")" "$2"
}

# check_ev CASE PATH WANT - one event field (waits for the event first)
check_ev()
{
    it_wait_for 5 has_event "$1"
    it_check_eq "$1: event $2 = $3" "$3" "$(ev "$1" "$2")"
}

# check_event CASE VERDICT [CHECK] - exactly one event, with that verdict
# (an accepted message's verdict.check names whichever check spoke last)
check_event()
{
    it_wait_for 5 has_event "$1"
    it_check_eq "$1: one submission event" 1 "$(it_events_query "$(sel "$1")")"
    check_ev "$1" outpolicy.verdict.action "$2"
    [ -z "${3:-}" ] || check_ev "$1" outpolicy.verdict.check "$3"
}

# egress CASE - outpolicy.spf.egress of CASE as "ip:RESULT" and
# "include:DOMAIN:RESULT:reached=BOOL:lookups=N" words
egress()
{
    ev "$1" outpolicy.spf.egress | "$IT_PY" -c '
import json, sys
out = []
for i in json.load(sys.stdin) or []:
    if "ip" in i:
        out.append("%s:%s" % (i["ip"], i["result"]))
    else:
        out.append("include:%s:%s:reached=%s:lookups=%s" % (i["include"],
                   i["result"], str(i.get("reached")).lower(), i.get("lookups")))
print(" ".join(out))' 2>&1
}

check_egress()
{
    it_check_eq "$1: event outpolicy.spf.egress" "$2" "$(egress "$1")"
}

# check_spf CASE DOMAIN RESULT - outpolicy.spf of CASE
check_spf()
{
    check_ev "$1" outpolicy.spf.status checked
    check_ev "$1" outpolicy.spf.domain "$2"
    check_ev "$1" outpolicy.spf.result "$3"
}

# check_dmarc CASE STATUS PREDICTED SPF-ALIGNED [RECORD-DOMAIN POLICY]
check_dmarc()
{
    check_ev "$1" outpolicy.dmarc.status "$2"
    check_ev "$1" outpolicy.dmarc.predicted "$3"
    check_ev "$1" outpolicy.dmarc.spf_aligned "$4"
    [ -z "${5:-}" ] || check_ev "$1" outpolicy.dmarc.record_domain "$5"
    [ -z "${6:-}" ] || check_ev "$1" outpolicy.dmarc.policy "$6"
}

# check_delivered CASE - swaks succeeded and the message reached the sink
check_delivered()
{
    it_check_eq "$1: swaks exit status" 0 "$IT_SWAKS_RC"
    it_check "$1: delivered to the sink" it_sink_wait_msgid "$(mid "$1")" 20
}

# check_refused CASE CODE [TEXT...] - the end of data got CODE, and the
# reply contains each TEXT (nothing of CASE may reach the sink: checked at
# the end)
check_refused()
{
    local c=$1 code=$2 reply t
    shift 2
    reply=$(it_swaks_reply_to .)
    case $reply in
        "$code "*) it_ok "$c: refused at end of data: $reply" ;;
        *) it_fail "$c: refused at end of data with $code" "reply '$reply'" ;;
    esac
    for t in "$@"; do
        case $reply in
            *"$t"*) it_ok "$c: reply says '$t'" ;;
            *) it_fail "$c: reply says '$t'" "reply '$reply'" ;;
        esac
    done
    it_check_eq "$c: no queue ID" "" "$(it_swaks_queue_id)"
    REFUSED+=("$c")
}

# check_reason CASE TEXT - the event's verdict reason contains TEXT
check_reason()
{
    local got
    got=$(ev "$1" outpolicy.verdict.reason)
    case $got in
        *"$2"*) it_ok "$1: verdict reason says '$2'" ;;
        *) it_fail "$1: verdict reason says '$2'" "reason '$got'" ;;
    esac
}

# restart CONFIG-ARGS... - a fresh daemon (and resolver, SPF cache) with
# BASE plus these settings
restart()
{
    it_daemon_stop >/dev/null 2>&1
    it_daemon_config "$CONF" "${BASE[@]}" "$@"
    it_daemon_start "$CONF" || it_die "outpolicyd did not start with $*"
}

# ------------------------------------------------------------ start

it_daemon_config "$CONF" "${BASE[@]}"
it_check "config: outpolicyctl check-config accepts it" "$CTL" check-config "$CONF"
it_daemon_start "$CONF" || it_die "outpolicyd did not start"
IT_MILTER="unix:$IT_SOCK" it_postfix_start

# ------------------------------------------------------------ SPF results

echo "# 1. pass: $EGRESS is authorised, From aligned, p=reject predicted pass"
send pass a@pass.example b@pass.example
check_delivered pass
check_event pass accept
check_spf pass pass.example pass
check_egress pass "$EGRESS:pass"
check_dmarc pass found pass true pass.example reject
check_ev pass outpolicy.verdict.applied true
it_check "pass: the server was asked for pass.example TXT" it_dns_queried pass.example TXT
it_check "pass: and for _dmarc.pass.example TXT" it_dns_queried _dmarc.pass.example TXT

echo "# 2. fail: -all without $EGRESS is refused with what to add"
send fail a@fail.example b@fail.example
check_refused fail "550" "5.7.23" "SPF fail for fail.example" "add ip4:$EGRESS"
check_event fail reject spf
check_spf fail fail.example fail
check_egress fail "$EGRESS:fail"
check_ev fail event.outcome failure

echo "# 3. softfail (~all) and neutral (?all) are warned and delivered"
send softfail a@softfail.example b@softfail.example
check_delivered softfail
check_event softfail warn spf
check_spf softfail softfail.example softfail
check_reason softfail "add ip4:$EGRESS"
send neutral a@neutral.example b@neutral.example
check_delivered neutral
check_event neutral warn spf
check_spf neutral neutral.example neutral

echo "# 4. none: no v=spf1 record is warned, with the record to publish"
send none a@none.example b@none.example
check_delivered none
check_event none warn spf
check_spf none none.example none
check_reason none "publish \"v=spf1 ip4:$EGRESS -all\""
check_ev none outpolicy.dmarc.status none

echo "# 5. permerror: a syntax error, and two v=spf1 records"
send syntax a@syntax.example b@syntax.example
check_refused syntax "550" "5.7.24" "SPF permerror for syntax.example"
check_event syntax reject spf
check_spf syntax syntax.example permerror
send twospf a@twospf.example b@twospf.example
check_refused twospf "550" "5.7.24" "SPF permerror for twospf.example"
check_event twospf reject spf
check_spf twospf twospf.example permerror

echo "# 6. more than 10 DNS-querying terms is a permerror"
send toomany a@toomany.example b@toomany.example
check_refused toomany "550" "5.7.24"
check_event toomany reject spf
check_spf toomany toomany.example permerror

# ------------------------------------------------------------ alignment

echo "# 7. aligned: MAIL FROM a@example.com, From b@example.com (aspf=s)"
send aligned a@example.com b@example.com
check_delivered aligned
check_event aligned accept
check_dmarc aligned found pass true example.com reject
check_ev aligned outpolicy.dmarc.aspf s

echo "# 8. misaligned: MAIL FROM a@example.com, From b@other.example (p=reject)"
send misaligned a@example.com b@other.example
check_refused misaligned "550" "5.7.1" \
    "DMARC would fail at the receiver for From other.example (p=reject at other.example)" \
    "not aligned"
check_event misaligned reject dmarc
check_spf misaligned example.com pass
check_dmarc misaligned found fail false other.example reject
check_ev misaligned outpolicy.dmarc.dkim_aligned false

echo "# 9. strict: MAIL FROM bounce.example.com, From example.com, aspf=s"
send strict a@bounce.example.com b@example.com
check_refused strict "550" "5.7.1" "From example.com (p=reject at example.com)"
check_event strict reject dmarc
check_spf strict bounce.example.com pass
check_dmarc strict found fail false example.com reject
check_ev strict outpolicy.dmarc.aspf s

echo "# 10. relaxed: MAIL FROM bounce.relaxed.example, From relaxed.example, aspf=r"
send relaxed a@bounce.relaxed.example b@relaxed.example
check_delivered relaxed
check_event relaxed accept
check_dmarc relaxed found pass true relaxed.example reject
check_ev relaxed outpolicy.dmarc.aspf r

echo "# 11. public suffix boundary: co.uk is a suffix (PSL)"
send psl-sub a@mail.example.co.uk b@example.co.uk
check_delivered psl-sub
check_event psl-sub accept
check_dmarc psl-sub found pass true example.co.uk reject
send psl-org a@example.co.uk b@mail.example.co.uk
check_delivered psl-org
check_event psl-org accept
# no _dmarc.mail.example.co.uk: the org domain's record applies (sp)
check_dmarc psl-org found pass true example.co.uk reject
send psl-suffix a@other.co.uk b@example.co.uk
check_refused psl-suffix "550" "5.7.1" "From example.co.uk"
check_event psl-suffix reject dmarc
check_spf psl-suffix other.co.uk pass
check_dmarc psl-suffix found fail false example.co.uk reject

echo "# 12. p=none: a predicted fail is warned and delivered"
send pnone a@example.com b@pnone.example
check_delivered pnone
check_event pnone warn dmarc
check_dmarc pnone found fail false pnone.example none
check_reason pnone "DMARC would fail at the receiver for From pnone.example (p=none"

echo "# 13. DKIM-aligned signing rescues a misaligned SPF (adkim=s)"
send dkim-rescue a@example.com b@signed.example
check_delivered dkim-rescue
check_event dkim-rescue accept
check_dmarc dkim-rescue found pass false signed.example reject
check_ev dkim-rescue outpolicy.dmarc.dkim_aligned true
check_ev dkim-rescue outpolicy.dkim.result signed
if f=$(it_sink_by_msgid "$(mid dkim-rescue)"); then
    it_check "dkim-rescue: delivered with a DKIM-Signature d=signed.example" \
        grep -qE '(^|;) *d=signed\.example;' <(it_sink_header "$f" dkim-signature | tr -d ' \t')
    if [ -x "$VERIFY" ] && "$IT_PY" -c 'import dkim' 2>/dev/null; then
        it_sink_message_body "$f" crlf >"$IT_DIR/dkim-rescue.eml"
        it_check "dkim-rescue: mailauth-verify (dkimpy) passes d=signed.example" \
            "$VERIFY" --zone "$IT_DIR/keys.zone" --expect-dkim pass \
            --require-dkim-domain signed.example "$IT_DIR/dkim-rescue.eml"
    else
        it_skip "dkim-rescue: mailauth-verify" "needs $VERIFY and python3-dkim"
    fi
fi

echo "# 14. null sender: SPF is evaluated for egress.helo_name"
send null '<>' MAILER-DAEMON@mx.helo.example
it_check "null: MAIL FROM:<> was sent" it_swaks_saw_re '^ *-> MAIL FROM:<>'
check_delivered null
check_event null accept
check_ev null outpolicy.envelope.from ""
check_spf null mx.helo.example pass
check_egress null "$EGRESS:pass"
check_dmarc null found pass true helo.example reject

# ------------------------------------------------------------ includes

echo "# 15. egress.spf_includes: reached directly, nested, too deep, not at all"
restart "$INCLUDES"
send direct a@direct.example b@direct.example
check_delivered direct
check_event direct accept
check_spf direct direct.example pass
check_egress direct "$EGRESS:pass include:spf.mail.qq.com:pass:reached=true:lookups=1"
send nested a@nested.example b@nested.example
check_delivered nested
check_event nested accept
check_egress nested "$EGRESS:pass include:spf.mail.qq.com:pass:reached=true:lookups=3"
send notreached a@notreached.example b@notreached.example
check_refused notreached "550" "5.7.23" "does not reach include:spf.mail.qq.com" \
    "add it to the notreached.example TXT record"
check_event notreached reject spf
check_spf notreached notreached.example fail
check_egress notreached "$EGRESS:pass include:spf.mail.qq.com:fail:reached=false:lookups=0"
# chain.example -> c1 -> ... -> c10 -> spf.mail.qq.com: 11 includes
send chain a@chain.example b@chain.example
check_refused chain "550" "5.7.24" "more than 10 DNS-querying terms"
check_event chain reject spf
check_spf chain chain.example permerror
it_check_eq "chain: include not reached, 11 look-ups counted" \
    "include:spf.mail.qq.com:permerror:reached=false:lookups=11" \
    "$(egress chain | tr ' ' '\n' | grep '^include:')"

echo "# 16. preflight agrees with the daemon (same config)"
pf=$("$CTL" preflight -c "$CONF" --mail-from a@notreached.example --from b@notreached.example)
it_check_eq "preflight notreached: exit status 2 (refuse)" 2 "$?"
it_check_eq "preflight notreached: verdict reason = the daemon's" \
    "$(ev notreached outpolicy.verdict.reason)" \
    "$(printf '%s' "$pf" | "$IT_PY" -c 'import json,sys; print(json.load(sys.stdin)["verdict"]["reason"])' 2>&1)"
pf=$("$CTL" preflight -c "$CONF" --mail-from a@nested.example --from b@nested.example)
it_check_eq "preflight nested: exit status 0 (accept)" 0 "$?"
it_check_eq "preflight nested: include reached with 3 look-ups" "True 3" \
    "$(printf '%s' "$pf" | "$IT_PY" -c 'import json,sys; e=json.load(sys.stdin)["spf"]["egress"][1]; print(e["reached"], e["lookups"])' 2>&1)"

# ------------------------------------------------------------ temperror

# temperror CASE - refused with 451 4.7.24 after waiting for the server;
# prints the delay and checks it against dns.timeout
temperror()
{
    local c=$1
    check_refused "$c" "451" "4.7.24" "SPF temperror for pass.example"
    check_event "$c" tempfail spf
    check_spf "$c" pass.example temperror
    check_ev "$c" outpolicy.dmarc.status temperror
    echo "    $c: end of data answered after ${ELAPSED} s (dns.timeout = $TIMEOUT s)"
    it_check "$c: the daemon waited for the server (>= $((TIMEOUT - 1)) s)" \
        awk -v t="$ELAPSED" -v m="$TIMEOUT" 'BEGIN { exit !(t >= m - 1) }'
    # every look-up is bounded by dns.timeout: SPF record (libspf2), the
    # include walk, the TTL look-up and _dmarc make at most 4
    it_check "$c: delay ${ELAPSED} s <= 4 look-ups x timeout + 3 s" \
        awk -v t="$ELAPSED" -v m="$TIMEOUT" 'BEGIN { exit !(t <= 4 * m + 3) }'
    it_check "$c: delay ${ELAPSED} s <= timeout + 3 s (one timed-out look-up per message)" \
        awk -v t="$ELAPSED" -v m="$TIMEOUT" 'BEGIN { exit !(t <= m + 3) }'
}

echo "# 17. temperror: unreachable DNS server (nothing listens on the port)"
it_dns_dead_port DEAD
restart "$INCLUDES" "dns.nameservers=[ \"127.0.0.1@$DEAD\" ]"
send dead a@pass.example b@pass.example
temperror dead

echo "# 18. temperror: a server that never answers"
it_dns_slow_start drop || it_die "slow DNS proxy did not start"
restart "$INCLUDES" "dns.nameservers=[ \"127.0.0.1@$IT_DNS_SLOW_PORT\" ]"
send timeout a@pass.example b@pass.example
temperror timeout
it_check "timeout: the silent server was queried" grep -q 'query pass\.example\. type 16' "$IT_DNS_DIR/slow.log"
echo "    queries the silent server saw (name type: count):"
awk '$2 == "query" { n[$3 " " $5]++ } END { for (k in n) printf "      %s: %d\n", k, n[k] }' \
    "$IT_DNS_DIR/slow.log" | sort
it_dns_slow_stop

echo "# 19. a slow server answering within dns.timeout is waited for"
it_dns_slow_start 1 || it_die "slow DNS proxy did not start"
restart "dns.nameservers=[ \"127.0.0.1@$IT_DNS_SLOW_PORT\" ]" 'dns.timeout=4'
send slow a@slow.example b@slow.example
echo "    slow: answered after ${ELAPSED} s (server delay 1 s, dns.timeout = 4 s)"
check_delivered slow
check_event slow accept
check_spf slow slow.example pass
it_check "slow: answers came through the delaying proxy" grep -q 'answered slow\.example\.' "$IT_DNS_DIR/slow.log"
it_dns_slow_stop

# ------------------------------------------------------------ monitor

echo "# 20. monitor mode: the same verdicts, logged, nothing refused"
restart 'mode="monitor"'
for c in fail misaligned syntax; do
    case $c in
        fail) send mon-fail a@fail.example b@fail.example ;;
        misaligned) send mon-misaligned a@example.com b@other.example ;;
        syntax) send mon-syntax a@syntax.example b@syntax.example ;;
    esac
    check_delivered "mon-$c"
    check_ev "mon-$c" outpolicy.mode monitor
    check_ev "mon-$c" outpolicy.verdict.applied false
    check_ev "mon-$c" event.outcome success
    it_check_eq "mon-$c: verdict action = the enforced one" \
        "$(ev "$c" outpolicy.verdict.action)" "$(ev "mon-$c" outpolicy.verdict.action)"
    it_check_eq "mon-$c: verdict check = the enforced one" \
        "$(ev "$c" outpolicy.verdict.check)" "$(ev "mon-$c" outpolicy.verdict.check)"
    it_check_eq "mon-$c: verdict reason = the enforced one" \
        "$(ev "$c" outpolicy.verdict.reason)" "$(ev "mon-$c" outpolicy.verdict.reason)"
done
check_ev mon-fail outpolicy.verdict.action reject
check_spf mon-fail fail.example fail
check_ev mon-misaligned outpolicy.verdict.check dmarc
check_dmarc mon-misaligned found fail false other.example reject

echo "# refused messages never reached the sink"
for c in "${REFUSED[@]}"; do
    it_check_eq "not delivered: $c" "" "$(it_sink_by_msgid "$(mid "$c")")"
done

it_summary
