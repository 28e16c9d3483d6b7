#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_arc.sh - ARC (RFC 8617, issue 5) through real
# Postfix: outpolicyd validates the chain a message arrives with and seals
# it (AAR + AMS + AS, i = N + 1); the smtp-sink captures what left, and
# ../shared/tools/mailauth-verify (dkimpy, not our code) checks it.
#
# Cases:
#   1. sealing: a message from an internal host over TLS 1.3 leaves with one
#      ARC set on top (AS, AMS, AAR in that order), AAR with our authserv-id
#      and real results, AS cv=none without h=, AMS covering our
#      DKIM-Signature and no ARC field; dkimpy: arc pass, dkim pass; the
#      submission event's outpolicy.arc; a per-From-domain sealing key.
#   2. tampering with the delivered body, a signed header, the AAR or our
#      DKIM-Signature makes dkimpy (and outpolicyctl arc-verify) say arc fail.
#   3. multi-hop: a second Postfix + outpolicyd behind the first (its own
#      key, domain and authserv-id, validating with keys from the loopback
#      DNS server): the message leaves with i=1 and i=2, AS i=2 cv=pass.
#   4. bad input: chains made offline with outpolicyctl arc-seal (dkimpy
#      confirms each is valid or broken as meant before it is sent), then
#      broken: a duplicated seal, sets out of order, a missing instance, a
#      missing AMS, an unparseable seal, i=0, i=51, 60 kB and 90 kB seals, a
#      newest seal saying cv=fail, a chain of 50 sets.  Each is delivered
#      with a defined result (a broken chain gets our seal with cv=fail; no
#      seal after cv=fail or on 50 sets), the event says why, and outpolicyd
#      stays up (a crash is counted, and the daemon started again).
#   5. budget: arc.max_key_lookups = 2; a chain sealed with 2 selectors
#      passes, one with 3 selectors is cv=fail "more than 2 key look-ups",
#      without the third look-up ever reaching DNS.
#
# Needs what test_submission.sh needs, plus unbound (the loopback DNS server
# of lib.sh) and python3-dkim + python3-nacl (for mailauth-verify).  Prints
# one line per check and "N passed, N failed"; exits non-zero when a check
# failed.  IT_KEEP=1 keeps the scratch directory.
#
# Clients send from 127.0.0.2 (internal, not an inet_interfaces address)
# over STARTTLS TLSv1.3.  Each message carries Message-Id <CASE.RUN@DOMAIN>.

set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init arc

it_need_verifier
command -v unbound >/dev/null 2>&1 || it_die "no unbound (Debian: unbound)"

it_tls_cert
it_sink_start

RUN=$$
CLIENT=127.0.0.2
CONF=$IT_DIR/outpolicyd.conf
CONF2=$IT_DIR/outpolicyd2.conf
KEYDIR=$IT_DIR/keys
ZONE=$IT_DIR/keys.zone
MSG=$IT_DIR/msg          # messages as submitted
OUT=$IT_DIR/out          # messages as delivered (CRLF), verifier output
TLS13=(--tls --tls-protocol tlsv1_3)
DATE='Thu, 01 Jan 2026 10:00:00 +0000'
SRVID=mx1.outpolicy.test
SRVID2=mx2.outpolicy.test
mkdir -p "$MSG" "$OUT" "$KEYDIR"
chmod 755 "$KEYDIR"
: >"$ZONE"

# ------------------------------------------------------------ helpers

# arc.py - read and edit ARC fields of a message file (CRLF or LF)
#   fields FILE            "name i" of every ARC field, top first
#   names FILE [N]         lower-case names of the (first N) header fields
#   tag FILE KIND I TAG    tag TAG of KIND (as, ams) with i=I ("" if absent;
#                          status 1 when no such field); TAG "-" = the whole
#                          unfolded value (also for aar)
#   mutate MODE IN OUT     break a chain, see below
#   instances FILE         number of ARC-Seal fields
cat >"$IT_DIR/arc.py" <<'EOF'
import re, sys

KINDS = {"arc-seal": "as", "arc-message-signature": "ams",
         "arc-authentication-results": "aar"}


def split(data):
    """(header fields as [name, raw bytes], body); raw keeps line ends,
    body starts with the empty line."""
    m = re.search(rb"\r?\n\r?\n", data)
    if m is None:
        head, body = data, b""
    else:
        end = m.start() + (2 if data[m.start():m.start() + 1] == b"\r" else 1)
        head, body = data[:end], data[end:]
    fields = []
    for line in re.findall(rb"[^\n]*\n|[^\n]+$", head):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += line
        else:
            fields.append([line.split(b":", 1)[0].strip().decode("latin-1"), line])
    return fields, body


def value(raw):
    v = raw.split(b":", 1)[1].decode("latin-1")
    return re.sub(r"\r?\n(?=[ \t])", "", v).strip()


def tags(v):
    out = {}
    for part in v.split(";"):
        if "=" in part:
            k, val = part.split("=", 1)
            out[k.strip()] = re.sub(r"\s+", "", val) if k.strip() in ("b", "bh", "h") \
                else val.strip()
    return out


def inst(v):
    m = re.match(r"\s*i\s*=\s*(\d+)", v)
    return int(m.group(1)) if m else None


def arc_fields(fields):
    for f in fields:
        k = KINDS.get(f[0].lower())
        if k:
            yield k, f


def mutate(mode, data):
    fields, body = split(data)
    arc = [(k, inst(value(f[1])), f) for k, f in arc_fields(fields)]
    nl = b"\r\n" if b"\r\n" in data else b"\n"

    def find(kind, i):
        return next(f for k, n, f in arc if k == kind and n == i)

    if mode == "dup":             # the newest seal twice
        f = find("as", 2)
        fields.insert(fields.index(f), [f[0], f[1]])
    elif mode == "order":         # set 1 above set 2 (field order has no meaning)
        set1 = [f for k, n, f in arc if n == 1]
        for f in set1:
            fields.remove(f)
        for f in reversed(set1):
            fields.insert(0, f)
    elif mode == "missing":       # drop set 2 of 3
        for k, n, f in arc:
            if n == 2:
                fields.remove(f)
    elif mode == "noams":         # drop AMS i=1
        fields.remove(find("ams", 1))
    elif mode == "broken":        # seal 1 is no tag list
        f = find("as", 1)
        f[1] = b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=list.example;" + nl + \
            b"\ts=l1; ==garbage; b=" + nl
    elif mode in ("i0", "i51"):   # every field of set 1 renumbered
        n = b"0" if mode == "i0" else b"51"
        for k, i, f in arc:
            f[1] = re.sub(rb"(:\s*|;\s*)i=1(?=\s*;)", rb"\g<1>i=" + n, f[1], count=1)
    elif mode.startswith("big"):  # seal 1 with a b= of about N kB
        f = find("as", 1)
        junk = nl.join(b"\t" + b"A" * 76 for _ in range(int(mode[3:]) * 1000 // 78))
        f[1] = re.sub(rb"b=[^;]*\Z", lambda m: b"b=" + nl + junk,
                      f[1].rstrip(b"\r\n")) + nl
    else:
        raise SystemExit("unknown mode " + mode)
    return b"".join(f[1] for f in fields) + body


op = sys.argv[1]
if op == "mutate":
    data = open(sys.argv[3], "rb").read()
    open(sys.argv[4], "wb").write(mutate(sys.argv[2], data))
    sys.exit(0)
fields, body = split(open(sys.argv[2], "rb").read())
if op == "names":
    n = int(sys.argv[3]) if len(sys.argv) > 3 else len(fields)
    print("\n".join(f[0].lower() for f in fields[:n]))
elif op == "fields":
    print("\n".join("%s %s" % (k, inst(value(f[1]))) for k, f in arc_fields(fields)))
elif op == "instances":
    print(sum(1 for k, f in arc_fields(fields) if k == "as"))
elif op == "tag":
    kind, i, tag = sys.argv[3], int(sys.argv[4]), sys.argv[5]
    for k, f in arc_fields(fields):
        v = value(f[1])
        if k == kind and inst(v) == i:
            print(v if tag == "-" else tags(v).get(tag, ""))
            sys.exit(0)
    sys.exit(1)
EOF

arcpy()
{
    "$IT_PY" "$IT_DIR/arc.py" "$@"
}

# mk_key ID DOMAIN SELECTOR - an RSA key, published in $ZONE
mk_key() { it_mk_key "$KEYDIR" "$ZONE" "$@"; }

# key ID DOMAIN SELECTOR - a keys entry (RSA)
key() { it_key_entry "$KEYDIR" "$@"; }

# mid CASE [DOMAIN] - the Message-Id of CASE
mid()
{
    printf '<%s.%s@%s>' "$1" "$RUN" "${2:-example.org}"
}

# send CASE FROM-ADDRESS [SWAKS-ARGS...] - a plain message over TLS 1.3
send()
{
    local c=$1 from=$2
    shift 2
    it_swaks "${TLS13[@]}" --local-interface "$CLIENT" --from "$from" \
        --header "From: Sender <$from>" --header "Date: $DATE" \
        --header "Message-Id: $(mid "$c" "${from#*@}")" --header "Subject: $c" \
        --body "Figures for $c attached. Regards" "$@"
}

# send_file CASE FILE - submit FILE (a whole message) over TLS 1.3
send_file()
{
    it_swaks "${TLS13[@]}" --local-interface "$CLIENT" --from "list@list.example" \
        --data "@$2"
}

# fetch CASE [DOMAIN] - wait for CASE at the sink, keep it (CRLF) as
# $OUT/CASE.eml
fetch()
{
    local m
    m=$(mid "$1" "${2:-example.org}")
    it_sink_save "$1" "$m" "$OUT/$1.eml" || return 1
    it_ok "$1: delivered to the sink"
}

# verify NAME ARGS... - mailauth-verify $OUT/NAME.eml (JSON in NAME.json)
verify()
{
    local n=$1
    shift
    "$VERIFY" --zone "$ZONE" "$@" "$OUT/$n.eml" >"$OUT/$n.json" 2>"$OUT/$n.err"
}

# vjson NAME PYEXPR - a value from NAME's mailauth-verify JSON (j)
vjson()
{
    "$IT_PY" -c 'import json, sys
j = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$OUT/$1.json" "$2" 2>/dev/null
}

# check_verify NAME WANT [ARGS...] - dkimpy's ARC result for NAME is WANT
check_verify()
{
    local n=$1 want=$2
    shift 2
    if verify "$n" --expect-arc "$want" "$@"; then
        it_ok "$n: mailauth-verify: arc $want${*:+ ($*)}"
    else
        it_fail "$n: mailauth-verify: arc $want${*:+ ($*)}" \
            "$(head -c 700 "$OUT/$n.json") $(tail -n 2 "$OUT/$n.err")"
    fi
}

# ourverify NAME - cv of outpolicyctl arc-verify on $OUT/NAME.eml
ourverify()
{
    "$CTL" arc-verify --zone "$ZONE" "$OUT/$1.eml" 2>/dev/null |
        "$IT_PY" -c 'import json, sys; print(json.load(sys.stdin)["arc"]["cv"])' 2>/dev/null
}

# tag NAME KIND I TAG - see arc.py
tag()
{
    arcpy tag "$OUT/$1.eml" "$2" "$3" "$4"
}

# sel CASE [DOMAIN] - Python test selecting CASE's submission event
sel()
{
    printf "g(e,'event.action') == 'submission' and g(e,'email.message_id') == '%s'" \
        "$(mid "$1" "${2:-example.org}")"
}

# ev CASE PATH [DOMAIN] - field PATH of CASE's submission event
ev()
{
    it_wait_for 5 has_event "$1" "${3:-example.org}"
    it_event_field "$(sel "$1" "${3:-example.org}")" "$2"
}

has_event()
{
    [ "$(it_events_query "$(sel "$1" "$2")")" -ge 1 ]
}

# check_ev CASE PATH WANT [DOMAIN] - assert one event field
check_ev()
{
    it_check_eq "$1: event $2" "$3" "$(ev "$1" "$2" "${4:-example.org}")"
}

# check_ev_re CASE PATH ERE [DOMAIN] - an event field matches ERE
check_ev_re()
{
    local got
    got=$(ev "$1" "$2" "${4:-example.org}")
    if [[ $got =~ $3 ]]; then
        it_ok "$1: event $2 ~ /$3/ ($got)"
    else
        it_fail "$1: event $2 ~ /$3/" "got '$got'"
    fi
}

# check_alive LABEL - outpolicyd still runs; if not, count a failure with
# its exit status and start it again, so that later cases still run
check_alive()
{
    local rc
    if it_daemon_alive; then
        it_ok "$1: outpolicyd alive"
        return 0
    fi
    it_daemon_stop
    rc=$?
    [ "$rc" -gt 128 ] && rc="$rc (killed by signal $((rc - 128)))"
    it_fail "$1: outpolicyd alive" "it exited with status $rc"
    it_daemon_start "$CONF" || it_die "outpolicyd did not start again"
}

# differs A B - the two files are not the same
differs()
{
    ! cmp -s "$1" "$2"
}

# no_comments VALUE - no "(...)" comment in an Authentication-Results value
no_comments()
{
    [[ $1 != *"("* ]]
}

# ------------------------------------------------------------ keys, DNS, config

# Key domains are not under .test: libunbound answers test., invalid. and
# onion. itself (its default RFC 6761 local zones), so outpolicyd would
# never ask the test DNS server and would see NXDOMAIN.
mk_key seal example.org arc1            # hop 1 ADMD sealing key
mk_key seal2 other.example arc9         # hop 1 sealing rule for other.example
mk_key dk example.org dk1               # DKIM for example.org
mk_key relay relay.example arc2         # hop 2
mk_key list list.example l1             # chains made offline (case 4)
mk_key f1 forwarder.example s1          # case 5: three selectors ...
mk_key f2 forwarder.example s2
mk_key f3 forwarder.example s3
mk_key g1 forwarder.example t1          # ... and two
mk_key g2 forwarder.example t2

it_dns_zone -f "$ZONE"
it_dns_start || it_die "the loopback DNS server did not start"
it_check_eq "dns: serves arc1._domainkey.example.org" "NOERROR 1" \
    "$(it_dns_query arc1._domainkey.example.org TXT)"
NS="[ \"127.0.0.1@$IT_DNS_PORT\" ]"

# the second instance (hop 2), so that hop 1 can route hop2.test to it
it_second_init

KEYS="( $(key seal example.org arc1), $(key seal2 other.example arc9), $(key dk example.org dk1) )"
SETTINGS=(
    "dns.nameservers=$NS"
    'dns.timeout=3'
    "keys=$KEYS"
    'dkim.signing=( { from = "example.org"; keys = [ "dk" ]; } )'
    'dkim.on_no_key="accept"'
    'arc.enabled=true'
    "arc.authserv_id=\"$SRVID\""
    'arc.key="seal"'
    'arc.sealing=( { from = "other.example"; keys = [ "seal2" ]; } )'
    'arc.sign_headers=[ "from", "to", "cc", "subject", "date", "message-id", "reply-to", "mime-version", "content-type", "dkim-signature" ]'
    'arc.max_signatures=51'
    'arc.max_key_lookups=2'
)
it_daemon_config "$CONF" "${SETTINGS[@]}"
"$CTL" check-config "$CONF" >"$IT_DIR/check-config.log" 2>&1 ||
    it_die "check-config $CONF: $(head -n 3 "$IT_DIR/check-config.log")"
it_daemon_start "$CONF" || it_die "outpolicyd did not start"
it_postconf "transport_maps=inline:{ hop2.test=smtp:[127.0.0.1]:$IT2_SMTP_PORT }"
IT_MILTER="unix:$IT_SOCK" it_postfix_start

SETTINGS2=(
    "dns.nameservers=$NS"
    'dns.timeout=3'
    'submission_tls.exempt_hosts=[ "127.0.0.1" ]'
    "keys=( $(key relay relay.example arc2) )"
    'dkim.on_no_key="accept"'
    'arc.enabled=true'
    "arc.authserv_id=\"$SRVID2\""
    'arc.key="relay"'
)
it_second it_daemon_config "$CONF2" "${SETTINGS2[@]}"
it_second it_daemon_start "$CONF2" || it_die "second outpolicyd did not start"
it_second_postfix_start

# ------------------------------------------------------------ 1. sealing

echo "# 1. a message from an internal host over TLS 1.3 leaves with ARC i=1"
send c1 alice@example.org
it_check_eq "c1: swaks exit status" 0 "$IT_SWAKS_RC"
it_check_eq "c1: client negotiated TLSv1.3" TLSv1.3 "$(it_swaks_tls_version)"
if fetch c1; then
    it_check_eq "c1: the three top fields are AS, AMS, AAR" \
        "arc-seal arc-message-signature arc-authentication-results" \
        "$(arcpy names "$OUT/c1.eml" 3 | tr '\n' ' ' | sed 's/ $//')"
    it_check_eq "c1: ARC fields (kind i)" "as 1 ams 1 aar 1" \
        "$(arcpy fields "$OUT/c1.eml" | tr '\n' ' ' | sed 's/ $//')"
    aar=$(tag c1 aar 1 -)
    it_check_eq "c1: AAR starts with i=1; $SRVID;" "i=1; $SRVID;" \
        "$(printf '%s' "$aar" | cut -d';' -f1-2);"
    it_check "c1: AAR has dkim=pass header.d=example.org ($aar)" \
        grep -qE '(^|; )dkim=pass header\.d=example\.org( |;|$)' <<<"$aar"
    it_check "c1: AAR has arc=none" grep -qE '(^|; )arc=none(;|$)' <<<"$aar"
    it_check "c1: AAR has no comments" no_comments "$aar"
    it_check_eq "c1: AS cv" none "$(tag c1 as 1 cv)"
    it_check_eq "c1: AS has no h=" "" "$(tag c1 as 1 h)"
    it_check_eq "c1: AS d= s= a=" "example.org arc1 rsa-sha256" \
        "$(tag c1 as 1 d) $(tag c1 as 1 s) $(tag c1 as 1 a)"
    h=$(tag c1 ams 1 h)
    it_check "c1: AMS h= has no ARC field ($h)" test -n "$h" -a -z "$(grep -io 'arc-' <<<"$h")"
    it_check "c1: AMS h= has dkim-signature" grep -qiE '(^|:)dkim-signature(:|$)' <<<"$h"
    it_check "c1: AMS h= has from" grep -qiE '(^|:)from(:|$)' <<<"$h"
    it_check_eq "c1: AMS d= s= c=" "example.org arc1 relaxed/relaxed" \
        "$(tag c1 ams 1 d) $(tag c1 ams 1 s) $(tag c1 ams 1 c)"
    check_verify c1 pass --expect-dkim pass --require-dkim-domain example.org
    it_check_eq "c1: dkimpy instances" 1 "$(vjson c1 'j["arc"]["instances"]')"
    it_check_eq "c1: outpolicyctl arc-verify" pass "$(ourverify c1)"
fi
check_ev c1 outpolicy.arc.cv none
check_ev c1 outpolicy.arc.instances 0
check_ev c1 outpolicy.arc.sealed_instance 1
check_ev c1 outpolicy.arc.not_sealed null
check_ev c1 outpolicy.arc.reason null
check_ev c1 tls.version 1.3

echo "# 1b. a sealing rule for the From domain picks its own key"
send c1b bob@other.example
if fetch c1b other.example; then
    it_check_eq "c1b: AS d= s=" "other.example arc9" "$(tag c1b as 1 d) $(tag c1b as 1 s)"
    it_check_eq "c1b: AMS d= s=" "other.example arc9" "$(tag c1b ams 1 d) $(tag c1b ams 1 s)"
    aar=$(tag c1b aar 1 -)
    it_check "c1b: AAR is i=1; $SRVID; ... arc=none ($aar)" \
        grep -qE "^i=1; $SRVID; (.*; )?arc=none(;|\$)" <<<"$aar"
    check_verify c1b pass
fi
check_ev c1b outpolicy.arc.sealed_instance 1 other.example

# ------------------------------------------------------------ 2. tampering

echo "# 2. the sealed message, modified after delivery, fails"
if [ -s "$OUT/c1.eml" ]; then
    sed 's/^Figures for c1 attached/Figures for c2 attached/' "$OUT/c1.eml" >"$OUT/c2-body.eml"
    sed 's/^Subject: c1/Subject: c1 (urgent)/' "$OUT/c1.eml" >"$OUT/c2-subject.eml"
    sed 's/^ARC-Authentication-Results: i=1; \([^;]*\); /ARC-Authentication-Results: i=1; \1; spf=pass smtp.mailfrom=example.org; /' \
        "$OUT/c1.eml" >"$OUT/c2-aar.eml"
    # a tag DKIM ignores, in our DKIM-Signature: only the AMS notices
    sed 's/^DKIM-Signature: v=1; /DKIM-Signature: v=1; n=1; /' "$OUT/c1.eml" >"$OUT/c2-dkim.eml"
    for t in body subject aar dkim; do
        it_check "c2-$t: the copy differs" differs "$OUT/c1.eml" "$OUT/c2-$t.eml"
        check_verify "c2-$t" fail
        it_check_eq "c2-$t: not arc pass" 1 "$(verify "c2-$t" --expect-arc pass; echo $?)"
        it_check_eq "c2-$t: outpolicyctl arc-verify" fail "$(ourverify "c2-$t")"
    done
    it_check "c2-body: dkimpy names the AMS" grep -qi 'message-signature\|body' "$OUT/c2-body.json"
else
    it_fail "c2: no delivered c1 to tamper with"
fi

# ------------------------------------------------------------ 3. multi-hop

echo "# 3. two gateways in series: i=1 from hop 1, i=2 (cv=pass) from hop 2"
send c3 alice@example.org --to rcpt@hop2.test
it_check_eq "c3: swaks exit status" 0 "$IT_SWAKS_RC"
if fetch c3; then
    it_check_eq "c3: ARC fields (kind i), top first" \
        "as 2 ams 2 aar 2 as 1 ams 1 aar 1" \
        "$(arcpy fields "$OUT/c3.eml" | tr '\n' ' ' | sed 's/ $//')"
    it_check_eq "c3: the three top fields are AS, AMS, AAR" \
        "arc-seal arc-message-signature arc-authentication-results" \
        "$(arcpy names "$OUT/c3.eml" 3 | tr '\n' ' ' | sed 's/ $//')"
    it_check_eq "c3: AS i=2 cv" pass "$(tag c3 as 2 cv)"
    it_check_eq "c3: AS i=2 d= s=" "relay.example arc2" "$(tag c3 as 2 d) $(tag c3 as 2 s)"
    it_check_eq "c3: AS i=1 d= cv=" "example.org none" "$(tag c3 as 1 d) $(tag c3 as 1 cv)"
    aar=$(tag c3 aar 2 -)
    it_check_eq "c3: AAR i=2 authserv-id" "i=2; $SRVID2;" "$(printf '%s' "$aar" | cut -d';' -f1-2);"
    it_check "c3: AAR i=2 says arc=pass ($aar)" grep -qE '(^|; )arc=pass(;|$)' <<<"$aar"
    it_check "c3: AAR i=2 has no comments" no_comments "$aar"
    check_verify c3 pass --expect-dkim pass
    it_check_eq "c3: dkimpy instances" 2 "$(vjson c3 'j["arc"]["instances"]')"
    it_check_eq "c3: outpolicyctl arc-verify" pass "$(ourverify c3)"
fi
check_ev c3 outpolicy.arc.sealed_instance 1
it_check_eq "c3: hop 2 event arc.cv" pass \
    "$(it_second it_event_field "$(sel c3)" outpolicy.arc.cv)"
it_check_eq "c3: hop 2 event arc.instances" 1 \
    "$(it_second it_event_field "$(sel c3)" outpolicy.arc.instances)"
it_check_eq "c3: hop 2 event arc.sealed_instance" 2 \
    "$(it_second it_event_field "$(sel c3)" outpolicy.arc.sealed_instance)"
it_check "c3: hop 2 looked up hop 1's key in DNS" \
    it_dns_queried arc1._domainkey.example.org TXT
it_check "c3: hop 2 outpolicyd alive" it_second it_daemon_alive

# ------------------------------------------------------------ chains made offline

# base CASE - a plain message from carol@example.net, LF line ends
base()
{
    printf '%s\n' "From: Carol <carol@example.net>" "To: rcpt@remote.test" \
        "Subject: $1" "Date: $DATE" "Message-Id: $(mid "$1" example.net)" \
        "MIME-Version: 1.0" "Content-Type: text/plain" "" \
        "Forwarded by the list for $1." "Regards" >"$MSG/$1.0.eml"
}

# chain CASE N KEYSPEC... - $MSG/CASE.eml: base CASE sealed N times, hop j
# with KEYSPEC j ("ID:DOMAIN:SELECTOR", the last one repeated); each hop
# first adds "Authentication-Results: hopJ.DOMAIN; arc=..." for its AAR
chain()
{
    local c=$1 n=$2 j spec ks=() cur prev res
    shift 2
    ks=("$@")
    base "$c"
    prev=$MSG/$c.0.eml
    for ((j = 1; j <= n; j++)); do
        spec=${ks[j - 1]:-${ks[${#ks[@]} - 1]}}
        IFS=: read -r kid kdom ksel <<<"$spec"
        res="arc=none"
        [ "$j" -gt 1 ] && res="arc=pass"
        cur=$MSG/$c.$j.eml
        {
            printf 'Authentication-Results: hop%d.%s; spf=pass smtp.mailfrom=example.net; %s\n' \
                "$j" "$kdom" "$res"
            cat "$prev"
        } >"$cur.in"
        if ! "$CTL" arc-seal --key "$KEYDIR/$kid.pem" --selector "$ksel" \
            --domain "$kdom" --authserv-id "hop$j.$kdom" --zone "$ZONE" \
            "$cur.in" >"$cur" 2>"$cur.err"; then
            it_fail "$c: outpolicyctl arc-seal hop $j" "$(head -n 2 "$cur.err")"
            return 1
        fi
        prev=$cur
    done
    cp "$prev" "$MSG/$c.eml"
}

# precheck CASE WANT - dkimpy's verdict on the message as submitted
precheck()
{
    if "$VERIFY" --zone "$ZONE" --expect-arc "$2" "$MSG/$1.eml" >"$MSG/$1.json" 2>&1; then
        it_ok "$1: submitted chain is arc $2 for dkimpy"
    else
        it_fail "$1: submitted chain is arc $2 for dkimpy" "$(head -c 500 "$MSG/$1.json")"
    fi
}

# submit CASE - send $MSG/CASE.eml; the daemon must survive it
submit()
{
    local t0 t1
    t0=$(date +%s)
    send_file "$1" "$MSG/$1.eml"
    t1=$(date +%s)
    SUBMIT_SECS=$((t1 - t0))
    check_alive "$1"
}

# expect CASE CV SEALED [OUR-CV] [DKIMPY] [REASON-ERE] - the message was
# delivered; event outpolicy.arc.cv = CV, sealed_instance = SEALED (0: not
# sealed); our new set (when sealed) has AS cv=OUR-CV and AAR arc=CV;
# dkimpy says DKIMPY on the delivered message; the event reason matches
# REASON-ERE
expect()
{
    local c=$1 cv=$2 sealed=$3 our=${4:-} dk=${5:-} re=${6:-} aar
    if [ "$IT_SWAKS_RC" != 0 ]; then
        it_fail "$c: accepted for delivery" "swaks status $IT_SWAKS_RC, end of data: '$(it_swaks_reply_to . 2>/dev/null)'"
        return 1
    fi
    fetch "$c" example.net || return 1
    check_ev "$c" outpolicy.arc.cv "$cv" example.net
    check_ev "$c" outpolicy.arc.sealed_instance "$sealed" example.net
    [ -z "$re" ] || check_ev_re "$c" outpolicy.arc.reason "$re" example.net
    if [ "$sealed" -gt 0 ]; then
        it_check_eq "$c: our seal i=$sealed cv" "$our" "$(tag "$c" as "$sealed" cv)"
        it_check_eq "$c: our seal is on top" arc-seal \
            "$(arcpy names "$OUT/$c.eml" 1)"
        it_check_eq "$c: our seal's d=" example.org "$(tag "$c" as "$sealed" d)"
        aar=$(tag "$c" aar "$sealed" -)
        it_check "$c: our AAR says arc=$cv ($aar)" grep -qE "(^|; )arc=$cv(;|\$)" <<<"$aar"
    fi
    [ -z "$dk" ] || check_verify "$c" "$dk"
}

echo "# 4. chains arriving with the message: valid, and broken in many ways"
LIST=list:list.example:l1

chain b4-valid 2 "$LIST" && precheck b4-valid pass
submit b4-valid
expect b4-valid pass 3 pass pass

# The order of ARC fields in the header carries no meaning (RFC 8617 sets
# are ordered by i=).  dkimpy 1.1.4 picks the fields it hashes for a seal
# by their position, so it fails such a chain: outpolicyctl arc-verify is
# the second opinion here.
chain b4-order 2 "$LIST" && arcpy mutate order "$MSG/b4-order.eml" "$MSG/b4-order.eml"
it_check_eq "b4-order: set 1 is above set 2 as submitted" "as 1 ams 1 aar 1 as 2 ams 2 aar 2" \
    "$(arcpy fields "$MSG/b4-order.eml" | tr '\n' ' ' | sed 's/ $//')"
submit b4-order
if expect b4-order pass 3 pass; then
    it_check_eq "b4-order: outpolicyctl arc-verify of what left" pass "$(ourverify b4-order)"
fi

chain b4-dup 2 "$LIST" && arcpy mutate dup "$MSG/b4-dup.eml" "$MSG/b4-dup.eml" &&
    precheck b4-dup fail
submit b4-dup
expect b4-dup fail 3 fail fail 'ARC-Seal.*i=2|i=2.*ARC-Seal'

chain b4-missing 3 "$LIST" &&
    arcpy mutate missing "$MSG/b4-missing.eml" "$MSG/b4-missing.eml" && precheck b4-missing fail
submit b4-missing
expect b4-missing fail 4 fail fail 'missing.*i=2'

chain b4-noams 2 "$LIST" && arcpy mutate noams "$MSG/b4-noams.eml" "$MSG/b4-noams.eml" &&
    precheck b4-noams fail
submit b4-noams
expect b4-noams fail 3 fail fail 'ARC-Message-Signature i=1'

chain b4-broken 2 "$LIST" &&
    arcpy mutate broken "$MSG/b4-broken.eml" "$MSG/b4-broken.eml" && precheck b4-broken fail
submit b4-broken
expect b4-broken fail 3 fail fail 'ARC-Seal.*parse'

for n in 0 51; do
    chain "b4-i$n" 1 "$LIST" &&
        arcpy mutate "i$n" "$MSG/b4-i$n.eml" "$MSG/b4-i$n.eml"
    it_check_eq "b4-i$n: the submitted set has i=$n" "as $n ams $n aar $n" \
        "$(arcpy fields "$MSG/b4-i$n.eml" | tr '\n' ' ' | sed 's/ $//')"
    submit "b4-i$n"
    expect "b4-i$n" fail 1 fail fail 'i='
done

# oversized seals: about 60 kB (under libmilter's default 64 kB limit for
# one milter command) and about 90 kB (over it; Postfix allows 100 kB)
for kb in 60 90; do
    c=b4-big$kb
    chain "$c" 1 "$LIST" && arcpy mutate "big$kb" "$MSG/$c.eml" "$MSG/$c.eml" &&
        precheck "$c" fail
    v=$(arcpy tag "$MSG/$c.eml" as 1 -)
    it_check "$c: the submitted seal has ${#v} bytes" test "${#v}" -gt $((kb * 1000 - 2000))
    submit "$c"
    expect "$c" fail 2 fail fail 'verify'
done

# a chain whose newest seal says cv=fail: set 1 is broken by changing the
# body, then hop 2 (outpolicyctl arc-seal) seals it with cv=fail
chain b4-cvfail 1 "$LIST" &&
    sed 's/^Regards$/Regards, changed/' "$MSG/b4-cvfail.eml" >"$MSG/b4-cvfail.1b.eml" &&
    {
        printf 'Authentication-Results: hop2.list.example; arc=fail\n'
        cat "$MSG/b4-cvfail.1b.eml"
    } >"$MSG/b4-cvfail.2.in" &&
    "$CTL" arc-seal --key "$KEYDIR/list.pem" --selector l1 --domain list.example \
        --authserv-id hop2.list.example --zone "$ZONE" "$MSG/b4-cvfail.2.in" \
        >"$MSG/b4-cvfail.eml" 2>"$MSG/b4-cvfail.err"
it_check_eq "b4-cvfail: the submitted newest seal says cv=fail" fail \
    "$(arcpy tag "$MSG/b4-cvfail.eml" as 2 cv)"
submit b4-cvfail
expect b4-cvfail fail 0 "" fail 'cv=fail'
check_ev b4-cvfail outpolicy.arc.not_sealed "the newest seal says cv=fail" example.net
it_check_eq "b4-cvfail: no ARC set added" 2 "$(arcpy instances "$OUT/b4-cvfail.eml" 2>/dev/null)"

echo "# 4b. a chain of 50 sets is validated, not extended"
chain b4-fifty 50 "$LIST" && precheck b4-fifty pass
submit b4-fifty
expect b4-fifty pass 0 "" pass
check_ev b4-fifty outpolicy.arc.instances 50 example.net
check_ev b4-fifty outpolicy.arc.not_sealed "the chain already has 50 sets" example.net
it_check_eq "b4-fifty: still 50 seals" 50 "$(arcpy instances "$OUT/b4-fifty.eml" 2>/dev/null)"

# ------------------------------------------------------------ 5. budget

echo "# 5. key look-up budget (arc.max_key_lookups = 2)"

# queried SEL... - the DNS server was asked for each SEL._domainkey.forwarder.example
queried()
{
    local s
    for s in "$@"; do
        it_dns_queried "$s._domainkey.forwarder.example" TXT || return 1
    done
}

# not_queried SEL - the DNS server was never asked for SEL._domainkey.forwarder.example
not_queried()
{
    ! it_dns_queried "$1._domainkey.forwarder.example" TXT
}

chain b5-at 2 g1:forwarder.example:t1 g2:forwarder.example:t2 && precheck b5-at pass
submit b5-at
expect b5-at pass 3 pass pass
it_check "b5-at: looked up t1 and t2" queried t1 t2

chain b5-over 3 f1:forwarder.example:s1 f2:forwarder.example:s2 f3:forwarder.example:s3 &&
    precheck b5-over pass
submit b5-over
it_check "b5-over: answered within 20 s (took ${SUBMIT_SECS} s)" test "$SUBMIT_SECS" -le 20
expect b5-over fail 4 fail fail 'more than 2 key look-ups'
it_check "b5-over: looked up s3 and s2" queried s3 s2
it_check "b5-over: never looked up s1 (over budget)" not_queried s1

# ------------------------------------------------------------ end

echo "# the daemons survived everything and stop cleanly"
check_alive "end"
it_daemon_stop
it_check_eq "end: hop 1 outpolicyd exit status after SIGTERM" 0 "$?"
it_second it_daemon_stop
it_check_eq "end: hop 2 outpolicyd exit status after SIGTERM" 0 "$?"

it_summary
