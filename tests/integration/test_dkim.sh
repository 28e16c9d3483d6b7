#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_dkim.sh - DKIM signing (issue 3) through a real
# Postfix: outpolicyd signs, the sink captures, and verifiers that are not
# ours check: ../shared/tools/mailauth-verify (dkimpy) for every case and,
# where it is installed, OpenDKIM's opendkim-testmsg (Debian: opendkim-tools)
# against a private unbound serving the test keys in a throw-away network
# and mount namespace.
#
# Cases: RSA-2048, Ed25519, RSA+Ed25519 dual signing, tampered copies fail,
# *.example.com subdomain rule, no key (warn / reject), duplicate and
# unparseable From (reject / sign / tempfail), 8-bit bodies, CRLF/LF
# mixtures, bare CR, a 2000-character folded Subject, empty bodies,
# simple/simple canonicalization, already-signed mail, a 30 MB body (with
# outpolicyd's RSS measured), and SIGHUP with a key file made unsafe or
# removed.
#
# Needs what test_submission.sh needs, plus python3-dkim and python3-nacl
# (for mailauth-verify), and optionally opendkim-tools, unbound and
# unshare(1) for the second verifier.  Prints one line per check and
# "N passed, N failed"; exits non-zero when a check failed.  IT_KEEP=1
# keeps the scratch directory.
#
# swaks submits over STARTTLS TLSv1.3 from 127.0.0.2; the raw client
# (byte-exact messages: bare LF, bare CR, folded headers, odd header
# spacing) sends in clear from 127.0.0.5, an exempt host.  Neither is
# 127.0.0.1: Postfix's local_header_rewrite_clients (default
# permit_inet_interfaces) matches 127.0.0.1 here, and cleanup would then
# rewrite address headers before the milter sees them (it turns
# "From: Joe <joe@example.com" into "From: \"Joe <joe\"@example.com").
# Every message carries Message-Id <CASE.RUN@example.com>.

set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init dkim

it_need_verifier

it_tls_cert
it_sink_start

RUN=$$
CLIENT=127.0.0.2         # internal; not in inet_interfaces, see above
EXEMPT=127.0.0.5
CONF=$IT_DIR/outpolicyd.conf
KEYDIR=$IT_DIR/keys
ZONE=$IT_DIR/keys.zone
MSG=$IT_DIR/msg          # messages as submitted
OUT=$IT_DIR/out          # messages as delivered (CRLF), verifier output
TLS13=(--tls --tls-protocol tlsv1_3)
DATE='Thu, 01 Jan 2026 10:00:00 +0000'
BIG_MB=30
mkdir -p "$MSG" "$OUT" "$KEYDIR"
chmod 755 "$KEYDIR"
: >"$ZONE"

# ------------------------------------------------------------ helpers

# mid CASE - the Message-Id of CASE
mid()
{
    printf '<%s.%s@example.com>' "$1" "$RUN"
}

# mk_key ID DOMAIN SELECTOR rsa|ed25519 - keygen, publish in $ZONE, and
# hand the file to the daemon user (it re-reads keys on SIGHUP)
mk_key()
{
    local -a bits=()
    [ "$4" = rsa ] && bits=(--bits 2048)
    "$CTL" keygen --domain "$2" --selector "$3" --algorithm "$4" "${bits[@]}" \
        --out "$KEYDIR/$1.pem" >>"$ZONE" 2>>"$IT_DIR/keygen.log" ||
        it_die "outpolicyctl keygen $1 failed: $(tail -n 2 "$IT_DIR/keygen.log")"
    it_check_eq "keygen $1: key file mode" 600 "$(stat -c %a "$KEYDIR/$1.pem")"
    chown nobody:nogroup "$KEYDIR/$1.pem"
}

# send CASE FROM-HEADER [SWAKS-ARGS...] - one message over STARTTLS TLSv1.3
send()
{
    local c=$1 from=$2
    shift 2
    it_swaks "${TLS13[@]}" --local-interface "$CLIENT" --from "$c@example.com" \
        --header "From: $from" \
        --header "Message-Id: $(mid "$c")" --header "Subject: $c" \
        --body "Quarterly figures for $c are attached. Regards" "$@"
}

# rawsmtp.py - an SMTP client that sends a file byte for byte (swaks and
# smtplib turn every bare LF into CRLF); dot-stuffs, prints the dialogue,
# exits 0 only when the end of data got a 250
cat >"$IT_DIR/rawsmtp.py" <<'EOF'
import re, socket, sys
host, port, src, mfrom, rcpt, path = sys.argv[1:7]
data = open(path, "rb").read()
s = socket.create_connection((host, int(port)), timeout=120, source_address=(src, 0))
f = s.makefile("rb")
def reply(what):
    while True:
        line = f.readline()
        if not line:
            print("*** connection closed after " + what)
            sys.exit(3)
        text = line.decode("latin-1").rstrip("\r\n")
        print("<- " + text)
        if line[3:4] != b"-":
            return text
def cmd(c, want):
    print("-> " + c)
    s.sendall(c.encode() + b"\r\n")
    r = reply(c)
    if not r.startswith(want):
        sys.exit(2)
reply("connect")
cmd("EHLO raw.outpolicy.test", "250")
cmd("MAIL FROM:<%s>" % mfrom, "250")
cmd("RCPT TO:<%s>" % rcpt, "250")
cmd("DATA", "354")
data = re.sub(rb"(^|\n)\.", rb"\1..", data)
if not data.endswith(b"\n"):
    data += b"\r\n"
s.sendall(data + b".\r\n")
print("-> (%d bytes) ." % len(data))
r = reply("end of data")
print("END-OF-DATA " + r)
cmd("QUIT", "221")
sys.exit(0 if r.startswith("250") else 1)
EOF

# raw CASE FILE - send FILE unchanged from the exempt host; the reply to
# the end of data is then in $RAW_REPLY, the status in $RAW_RC
raw()
{
    local t=$IT_DIR/swaks/raw-$1.txt
    "$IT_PY" "$IT_DIR/rawsmtp.py" 127.0.0.1 "$IT_SMTP_PORT" "$EXEMPT" \
        "$1@example.com" rcpt@remote.test "$2" >"$t" 2>&1
    RAW_RC=$?
    RAW_REPLY=$(sed -n 's/^END-OF-DATA //p' "$t")
    IT_SWAKS_OUT=$t         # for it_diag
    IT_SWAKS_RC=$RAW_RC
}

# fetch CASE - wait for CASE at the sink and keep it (CRLF) as $OUT/CASE.eml
fetch()
{
    it_sink_save "$1" "$(mid "$1")" "$OUT/$1.eml" || return 1
    it_ok "$1: delivered to the sink"
}

# verify NAME ARGS... - mailauth-verify $OUT/NAME.eml; JSON in $OUT/NAME.json
verify()
{
    local n=$1
    shift
    "$VERIFY" --zone "$ZONE" "$@" "$OUT/$n.eml" >"$OUT/$n.json" 2>"$OUT/$n.err"
}

# sigs NAME - "domain selector algorithm result" of each signature that
# mailauth-verify saw, sorted, one per line
sigs()
{
    "$IT_PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
print("\n".join(sorted("%s %s %s %s" % (s.get("domain"), s.get("selector"),
      s.get("algorithm"), s.get("result")) for s in j.get("dkim", []))))
' "$OUT/$1.json" 2>/dev/null
}

# check_pass CASE WANT - mailauth-verify passes CASE, and its signatures are
# exactly WANT ("domain selector algorithm pass" lines, sorted)
check_pass()
{
    local -a req=()
    local d
    while read -r d; do
        req+=(--require-dkim-domain "$d")
    done < <(awk '{ print $1 }' <<<"$2" | sort -u)
    if verify "$1" --expect-dkim pass "${req[@]}"; then
        it_ok "$1: mailauth-verify: dkim pass"
    else
        it_fail "$1: mailauth-verify: dkim pass" "$(head -c 600 "$OUT/$1.json") $(tail -n 2 "$OUT/$1.err")"
    fi
    it_check_eq "$1: signatures seen by dkimpy" "$2" "$(sigs "$1")"
    ODKIM_PASS+=("$1")
}

# sig_b FILE - b= of the first DKIM-Signature in a message file, unfolded
sig_b()
{
    awk '/^\r?$/ { exit }
        /^[ \t]/ { if (cur) v = v $0; next }
        { if (cur) exit; if (tolower(substr($0, 1, 15)) == "dkim-signature:") { cur = 1; v = $0 } }
        END { gsub(/[ \t\r]/, "", v); sub(/.*;b=/, "b=", v); print v }' "$1"
}

# count_sigs CASE - number of DKIM-Signature fields delivered
count_sigs()
{
    grep -ci '^DKIM-Signature:' "$OUT/$1.eml"
}

# sel CASE - Python test selecting CASE's submission event
sel()
{
    printf "g(e,'event.action') == 'submission' and g(e,'email.message_id') == '%s'" "$(mid "$1")"
}

# check_event CASE RESULT [SIGS] - exactly one submission event, with
# outpolicy.dkim.result RESULT and signatures SIGS ("d s a" lines, sorted)
check_event()
{
    local got
    it_wait_for 5 has_event "$1"
    it_check_eq "$1: one submission event" 1 "$(it_events_query "$(sel "$1")")"
    it_check_eq "$1: event outpolicy.dkim.result" "$2" \
        "$(it_event_field "$(sel "$1")" outpolicy.dkim.result)"
    got=$(it_event_field "$(sel "$1")" outpolicy.dkim.signatures | "$IT_PY" -c '
import json, sys
print("\n".join(sorted("%s %s %s" % (s["domain"], s["selector"], s["algorithm"])
      for s in json.load(sys.stdin))))' 2>&1)
    it_check_eq "$1: event outpolicy.dkim.signatures" "${3:-}" "$got"
}

has_event()
{
    [ "$(it_events_query "$(sel "$1")")" -ge 1 ]
}

# check_refused REPLY CASE CODE - the end of data got CODE (checked again at
# the end: nothing of CASE was delivered)
check_refused()
{
    local reply=$1
    case $reply in
        "$3"*) it_ok "$2: refused at end of data: $reply" ;;
        *) it_fail "$2: refused at end of data with $3" "reply '$reply'" ;;
    esac
    REFUSED+=("$2")
}

# reload CONFIG-ARGS... - rewrite the config (unless no args), SIGHUP, wait
# for the outcome ("reloaded configuration" or "reload refused" logged once
# more); RELOAD_LOG is that log line
reload()
{
    local n
    [ "$#" -eq 0 ] || it_daemon_config "$CONF" "$@"
    n=$(reload_lines)
    it_daemon_hup
    it_wait_for 10 reload_seen "$n"
    RELOAD_LOG=$(grep -E 'reloaded configuration|reload refused' "$IT_DIR/outpolicyd.log" | tail -n 1)
}

# check_reload LABEL ok|refused - the last reload had that outcome
check_reload()
{
    local want='reloaded configuration'
    [ "$2" = ok ] || want='reload refused'
    case $RELOAD_LOG in
        *"$want"*) it_ok "$1: $want" ;;
        *) it_fail "$1: $want" "log: '${RELOAD_LOG:-nothing}'" ;;
    esac
}

reload_lines()
{
    grep -cE 'reloaded configuration|reload refused' "$IT_DIR/outpolicyd.log"
}

reload_seen()
{
    [ "$(reload_lines)" -gt "$1" ]
}

# kib FIELD - a /proc/PID/status field of outpolicyd in kB
kib()
{
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$IT_DAEMON_PID/status"
}

mb()
{
    awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}

# ------------------------------------------------------------ keys, config

mk_key r example.com r2048 rsa            # RSA-2048
mk_key e example.com ed1 ed25519          # Ed25519, same domain (dual)
mk_key o example.org ed2 ed25519          # Ed25519 only, another domain

key() { it_key_entry "$KEYDIR" "$@"; }
KEYS="( $(key r example.com r2048 rsa-sha256), $(key e example.com ed1 ed25519-sha256), $(key o example.org ed2 ed25519-sha256) )"
SIGNING='( { from = "example.com"; keys = [ "r" ]; }, { from = "*.example.com"; keys = [ "r" ]; }, { from = "dual.example.com"; keys = [ "r", "e" ]; }, { from = "example.org"; keys = [ "o" ]; } )'
SETTINGS=(
    "submission_tls.exempt_hosts=[ \"$EXEMPT\" ]"
    "keys=$KEYS"
    "dkim.signing=$SIGNING"
)
RSA='example.com r2048 rsa-sha256'
ED='example.com ed1 ed25519-sha256'
EDO='example.org ed2 ed25519-sha256'
REFUSED=()
ODKIM_PASS=()
ODKIM_FAIL=()

it_daemon_config "$CONF" "${SETTINGS[@]}"
config_ok()
{
    "$CTL" check-config "$@" >/dev/null
}
it_check "config: outpolicyctl check-config accepts it" config_ok "$CONF"
it_check "config: check-config -c FILE accepts it too" config_ok -c "$CONF"
printf 'mode = "enforce";\ndns = { timeout = 500; };\n' >"$IT_DIR/bad.conf"
BAD_OUT=$("$CTL" check-config "$IT_DIR/bad.conf" 2>&1)
BAD_RC=$?
it_check_eq "config: a bad value exits 1" 1 "$BAD_RC"
it_check_eq "config: the error names file:line and the option" \
    "$IT_DIR/bad.conf:2: option 'dns.timeout': 500 is out of range 1..60" "$BAD_OUT"
it_daemon_start "$CONF" || it_die "outpolicyd did not start"
it_postconf "message_size_limit=$(((BIG_MB + 10) * 1024 * 1024))"
IT_MILTER="unix:$IT_SOCK" it_postfix_start

# ------------------------------------------------------------ 1-5

echo "# 1. RSA-2048: alice@example.com over TLSv1.3"
send case-1 alice@example.com
it_check_eq "case-1: client negotiated TLSv1.3" TLSv1.3 "$(it_swaks_tls_version)"
if fetch case-1; then
    it_check_eq "case-1: one DKIM-Signature" 1 "$(count_sigs case-1)"
    check_pass case-1 "$RSA pass"
    it_check "case-1: signature is relaxed/relaxed with t=" \
        grep -qE 'c=relaxed/relaxed;.*[; \t]t=[0-9]+;' \
        <(it_sink_header "$(it_sink_by_msgid "$(mid case-1)")" dkim-signature)
fi
check_event case-1 signed "$RSA"

echo "# 2. Ed25519 only (example.org)"
send case-2 carol@example.org
if fetch case-2; then
    it_check_eq "case-2: one DKIM-Signature" 1 "$(count_sigs case-2)"
    check_pass case-2 "$EDO pass"
fi
check_event case-2 signed "$EDO"

echo "# 3. dual signing RSA + Ed25519 (dual.example.com, d=example.com)"
send case-3 bob@dual.example.com
if fetch case-3; then
    it_check_eq "case-3: two DKIM-Signatures" 2 "$(count_sigs case-3)"
    check_pass case-3 "$ED pass
$RSA pass"
fi
check_event case-3 signed "$ED
$RSA"

echo "# 4. a delivered message modified afterwards fails verification"
# one body word, and separately the Subject, in copies of cases 1 and 3
sed 's/Quarterly figures/Quarterly fixures/' "$OUT/case-1.eml" >"$OUT/case-4-body.eml"
sed 's/^Subject: case-1/Subject: case-1 (edited)/' "$OUT/case-1.eml" >"$OUT/case-4-subj.eml"
sed 's/Quarterly figures/Quarterly fixures/' "$OUT/case-3.eml" >"$OUT/case-4-dual.eml"
ODKIM_FAIL+=(case-4-body case-4-subj case-4-dual)
it_check "case-4-body: the body really was edited" \
    grep -q 'Quarterly fixures' "$OUT/case-4-body.eml"
it_check "case-4-dual: the body really was edited" \
    grep -q 'Quarterly fixures' "$OUT/case-4-dual.eml"
it_check "case-4-subj: the Subject really was edited" \
    grep -q '^Subject: case-1 (edited)' "$OUT/case-4-subj.eml"
verify case-4-body --expect-dkim pass
it_check_eq "case-4-body: mailauth-verify --expect-dkim pass exits 1" 1 "$?"
it_check_eq "case-4-body: signature result" "$RSA fail" "$(sigs case-4-body)"
verify case-4-subj --expect-dkim pass
it_check_eq "case-4-subj: mailauth-verify --expect-dkim pass exits 1" 1 "$?"
it_check_eq "case-4-subj: signature result" "$RSA fail" "$(sigs case-4-subj)"
verify case-4-dual --expect-dkim pass
it_check_eq "case-4-dual: mailauth-verify --expect-dkim pass exits 1" 1 "$?"
it_check_eq "case-4-dual: both signatures fail" "$ED fail
$RSA fail" "$(sigs case-4-dual)"

echo "# 5. subdomain rule *.example.com: a@mail.example.com signed d=example.com"
send case-5 a@mail.example.com
if fetch case-5; then
    it_check_eq "case-5: one DKIM-Signature" 1 "$(count_sigs case-5)"
    check_pass case-5 "$RSA pass"
fi
check_event case-5 signed "$RSA"

# ------------------------------------------------------------ 6, 7 defaults

echo "# 6a. no key for the From domain, on_no_key = warn (default)"
send case-6a dave@nokey.test
if fetch case-6a; then
    it_check_eq "case-6a: delivered unsigned" 0 "$(count_sigs case-6a)"
    verify case-6a --expect-dkim none
    it_check_eq "case-6a: mailauth-verify sees no signature" 0 "$?"
fi
check_event case-6a no_key ""
it_check "case-6a: the daemon log says why" \
    grep -qF 'No DKIM key for nokey.test' "$IT_DIR/outpolicyd.log"

echo "# 7a. two From: fields, on_multiple_from = reject (default)"
send case-7a alice@example.com --add-header "From: mallory@example.net"
check_refused "$(it_swaks_reply_to .)" case-7a "550 5.7.1"
check_event case-7a bad_from ""

echo "# 7c. unparseable From:, on_bad_from = reject (default)"
send case-7c 'Joe <joe@example.com'
check_refused "$(it_swaks_reply_to .)" case-7c "550 5.7.1"
check_event case-7c bad_from ""

echo "# 7e. no From: at all (raw client)"
printf 'To: rcpt@remote.test\r\nSubject: case-7e\r\nDate: %s\r\nMessage-Id: %s\r\n\r\nno From here\r\n' "$DATE" \
    "$(mid case-7e)" >"$MSG/case-7e.eml"
raw case-7e "$MSG/case-7e.eml"
check_refused "$RAW_REPLY" case-7e "550 5.7.1"
check_event case-7e bad_from ""

# ------------------------------------------------------------ 8 edge cases

echo "# 8a. 8-bit bodies (UTF-8, Latin-1), Content-Transfer-Encoding: 8bit"
printf 'Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x80\x94 na\xc3\xafve caf\xc3\xa9 \xe2\x9c\x93\nzweite Zeile \xc3\xa4\xc3\xb6\xc3\xbc\n' >"$MSG/case-8a-utf8.body"
printf 'L\xe9t\xe9 \xfcber \xe0 la pla\xe7a, se\xf1or\nzweite Zeile \xe4\xf6\xfc\xdf\n' >"$MSG/case-8a-latin1.body"
for cs in utf8:utf-8 latin1:iso-8859-1; do
    c=case-8a-${cs%%:*}
    send "$c" alice@example.com --body "@$MSG/$c.body" \
        --header 'MIME-Version: 1.0' \
        --header "Content-Type: text/plain; charset=${cs#*:}" \
        --header 'Content-Transfer-Encoding: 8bit'
    if fetch "$c"; then
        it_check "$c: 8-bit bytes arrive unchanged (no QP conversion)" \
            grep -qF "$(head -n 1 "$MSG/$c.body")" "$OUT/$c.eml"
        check_pass "$c" "$RSA pass"
    fi
    check_event "$c" signed "$RSA"
done
echo "# case-8a: Postfix relayed to the sink with" \
    "$(grep -m1 '^X-Mail-Args:' "$(it_sink_by_msgid "$(mid case-8a-utf8)")" 2>/dev/null)"

echo "# 8b. CRLF and bare LF mixed, trailing blanks and empty lines"
{
    printf 'From: alice@example.com\r\nTo: rcpt@remote.test\nSubject: case-8b mixed\r\n'
    printf 'Message-Id: %s\nDate: %s\r\n\n' "$(mid case-8b)" "$DATE"
    printf 'line one, CRLF\r\nline two, LF\nline three \t trailing blanks  \t\r\n'
    printf '\n\r\n   \nlast text line\n\r\n\n'
} >"$MSG/case-8b.eml"
raw case-8b "$MSG/case-8b.eml"
it_check_eq "case-8b: accepted" 0 "$RAW_RC"
if fetch case-8b; then
    check_pass case-8b "$RSA pass"
    it_check "case-8b: delivered with the trailing blanks intact" \
        grep -qF $'line three \t trailing blanks  \t\r' "$OUT/case-8b.eml"
fi
check_event case-8b signed "$RSA"

echo "# 8c. a bare CR inside a body line"
{
    printf 'From: alice@example.com\r\nTo: rcpt@remote.test\r\nSubject: case-8c bare CR\r\n'
    printf 'Date: %s\r\nMessage-Id: %s\r\n\r\n' "$DATE" "$(mid case-8c)"
    printf 'before\rafter on one line\r\nnext line\r\n'
} >"$MSG/case-8c.eml"
raw case-8c "$MSG/case-8c.eml"
it_check_eq "case-8c: accepted" 0 "$RAW_RC"
if fetch case-8c; then
    if grep -qF $'before\rafter' "$OUT/case-8c.eml"; then
        echo "# case-8c: the bare CR reached the sink unchanged"
    else
        echo "# case-8c: the bare CR did not survive Postfix; delivered line:" \
            "$(sed -n '/^before/{l;q}' "$OUT/case-8c.eml")"
    fi
    check_pass case-8c "$RSA pass"
fi
check_event case-8c signed "$RSA"

echo "# 8d. a Subject of about 2000 characters folded over 30 lines"
{
    printf 'From: alice@example.com\r\nTo: rcpt@remote.test\r\nSubject: case-8d'
    for i in $(seq -w 1 30); do
        printf '\r\n\tfolded-line-%s lorem ipsum dolor sit amet consectetur adipiscing elit' "$i"
    done
    printf '\r\nDate: %s\r\nMessage-Id: %s\r\n\r\nbody of the long-subject message\r\n' "$DATE" "$(mid case-8d)"
} >"$MSG/case-8d.eml"
raw case-8d "$MSG/case-8d.eml"
it_check_eq "case-8d: accepted" 0 "$RAW_RC"
if fetch case-8d; then
    subj=$(it_sink_header "$(it_sink_by_msgid "$(mid case-8d)")" subject)
    it_check "case-8d: Subject delivered whole (${#subj} characters, 30 folds)" \
        test "${#subj}" -ge 2000 -a "$(grep -c $'^\tfolded-line-' "$OUT/case-8d.eml")" -eq 30
    check_pass case-8d "$RSA pass"
fi
check_event case-8d signed "$RSA"

echo "# 8e. an empty body"
printf 'From: alice@example.com\r\nTo: rcpt@remote.test\r\nSubject: case-8e\r\nDate: %s\r\nMessage-Id: %s\r\n\r\n' \
    "$DATE" "$(mid case-8e)" >"$MSG/case-8e.eml"
raw case-8e "$MSG/case-8e.eml"
it_check_eq "case-8e: accepted" 0 "$RAW_RC"
if fetch case-8e; then
    check_pass case-8e "$RSA pass"
fi
check_event case-8e signed "$RSA"

# ------------------------------------------------------------ 9 already signed

echo "# 9. already signed with our d= and s= (outpolicyctl dkim-sign) is not signed again"
printf 'From: alice@example.com\nTo: rcpt@remote.test\nSubject: case-9a\nDate: %s\nMessage-Id: %s\n\npre-signed body\n' \
    "$DATE" "$(mid case-9a)" >"$MSG/case-9a.in"
"$CTL" dkim-sign -c "$CONF" "$MSG/case-9a.in" >"$MSG/case-9a.eml" 2>"$MSG/case-9a.err"
it_check_eq "case-9a: dkim-sign made one signature" 1 "$(grep -ci '^DKIM-Signature:' "$MSG/case-9a.eml")"
raw case-9a "$MSG/case-9a.eml"
it_check_eq "case-9a: accepted" 0 "$RAW_RC"
if fetch case-9a; then
    it_check_eq "case-9a: still one DKIM-Signature" 1 "$(count_sigs case-9a)"
    it_check_eq "case-9a: it is the one dkim-sign made (same b=)" \
        "$(sig_b "$MSG/case-9a.eml")" "$(sig_b "$OUT/case-9a.eml")"
    check_pass case-9a "$RSA pass"
fi
check_event case-9a already_signed ""
# signed beforehand with the RSA key only: the milter adds just Ed25519
printf 'From: bob@dual.example.com\nTo: rcpt@remote.test\nSubject: case-9b\nDate: %s\nMessage-Id: %s\n\npre-signed with one of two keys\n' \
    "$DATE" "$(mid case-9b)" >"$MSG/case-9b.in"
"$CTL" dkim-sign --key "$KEYDIR/r.pem" --selector r2048 --domain example.com \
    "$MSG/case-9b.in" >"$MSG/case-9b.eml" 2>"$MSG/case-9b.err"
raw case-9b "$MSG/case-9b.eml"
it_check_eq "case-9b: accepted" 0 "$RAW_RC"
if fetch case-9b; then
    it_check_eq "case-9b: two DKIM-Signatures (theirs + our Ed25519)" 2 "$(count_sigs case-9b)"
    check_pass case-9b "$ED pass
$RSA pass"
fi
check_event case-9b signed "$ED"

# ------------------------------------------------------------ 10 big message

echo "# 10. a ${BIG_MB} MB body: outpolicyd's memory stays flat"
head -c $((BIG_MB * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 76 >"$MSG/case-10.body"
rss0=$(kib VmRSS)
if echo 5 >"/proc/$IT_DAEMON_PID/clear_refs" 2>/dev/null; then
    hwm_note="peak reset before sending"
else
    hwm_note="peak not resettable, includes start-up"
fi
t0=$(date +%s)
send case-10 alice@example.com --body "@$MSG/case-10.body" --suppress-data --timeout 120
it_check_eq "case-10: swaks exit status" 0 "$IT_SWAKS_RC"
if fetch case-10; then
    t1=$(date +%s)
    hwm1=$(kib VmHWM)
    rss1=$(kib VmRSS)
    size=$(stat -c %s "$OUT/case-10.eml")
    echo "# case-10: $(mb $((size / 1024))) MB delivered in $((t1 - t0)) s;" \
        "outpolicyd rss before $(mb "$rss0") MB, peak $(mb "$hwm1") MB," \
        "growth $(mb $((hwm1 - rss0))) MB, rss after $(mb "$rss1") MB ($hwm_note)"
    it_check "case-10: delivered message is over $BIG_MB MB" \
        test "$size" -gt $((BIG_MB * 1024 * 1024))
    if it_sanitized; then # ASan keeps freed memory in quarantine
        it_skip "case-10: RSS bound" "sanitizer build (quarantine inflates RSS)"
    else
        it_check "case-10: outpolicyd peak RSS grew by less than 8 MB ($(mb $((hwm1 - rss0))) MB)" \
            test $((hwm1 - rss0)) -lt $((8 * 1024))
    fi
    check_pass case-10 "$RSA pass"
    # keep later it_sink_* scans fast: they read whole dump files
    mv "$(it_sink_by_msgid "$(mid case-10)")" "$IT_DIR/case-10.dump"
fi
check_event case-10 signed "$RSA"

# ------------------------------------------------------------ 6, 7 variants

echo "# 6b, 7b, 7d. on_no_key = reject, on_multiple_from = sign, on_bad_from = tempfail"
reload "${SETTINGS[@]}" 'dkim.on_no_key="reject"' 'dkim.on_multiple_from="sign"' \
    'dkim.on_bad_from="tempfail"'
check_reload "SIGHUP with the variant config" ok
send case-6b dave@nokey.test
check_refused "$(it_swaks_reply_to .)" case-6b "550 5.7.1"
check_event case-6b no_key ""
send case-7b alice@example.com --add-header "From: mallory@example.net"
if fetch case-7b; then
    it_check_eq "case-7b: both From: fields delivered" 2 "$(grep -ci '^From:' "$OUT/case-7b.eml")"
    it_check_eq "case-7b: one DKIM-Signature" 1 "$(count_sigs case-7b)"
    check_pass case-7b "$RSA pass"
    # libopendkim's verifier refuses two From: fields outright (STRICTHDRS)
    unset 'ODKIM_PASS[-1]'
fi
check_event case-7b signed "$RSA"
send case-7d 'Joe <joe@example.com'
check_refused "$(it_swaks_reply_to .)" case-7d "451 4.7.1"
check_event case-7d bad_from ""

# ------------------------------------------------------------ 8f simple/simple

echo "# 8f-8i. c=simple/simple: header and body bytes exactly as sent"
reload "${SETTINGS[@]}" 'dkim.canonicalization="simple/simple"'
check_reload "SIGHUP with simple/simple" ok
# 8f: odd spacing in signed headers (no space, tab, runs of spaces,
# trailing blanks), body with trailing blanks and trailing empty lines
{
    printf 'From:alice@example.com\r\nTo:   rcpt@remote.test  \r\nSubject:\tcase-8f  simple \r\n'
    printf 'Date: %s\r\nMessage-Id: %s\r\n' "$DATE" "$(mid case-8f)"
    printf 'MIME-Version:  1.0\r\nContent-Type: text/plain; charset="us-ascii"\r\n\r\n'
    printf 'body  with   runs of  spaces \t\r\n\ttab-indented line\r\ntrailing empty lines follow\r\n\r\n\r\n\r\n'
} >"$MSG/case-8f.eml"
raw case-8f "$MSG/case-8f.eml"
it_check_eq "case-8f: accepted" 0 "$RAW_RC"
if fetch case-8f; then
    it_check "case-8f: signature says c=simple/simple" \
        grep -q 'c=simple/simple' <(it_sink_header "$(it_sink_by_msgid "$(mid case-8f)")" dkim-signature)
    it_check "case-8f: odd header spacing delivered unchanged" \
        grep -qF $'To:   rcpt@remote.test  \r' "$OUT/case-8f.eml"
    check_pass case-8f "$RSA pass"
fi
check_event case-8f signed "$RSA"
# 8g: folded signed headers (Postfix hands the milter folded values with
# bare LF between the lines)
{
    printf 'From: alice@example.com\r\nTo: rcpt@remote.test\r\nSubject: case-8g simple\r\n'
    printf '\tfolded with a tab\r\n  and with spaces\r\nDate: %s\r\nMessage-Id: %s\r\n' "$DATE" "$(mid case-8g)"
    printf 'MIME-Version: 1.0\r\nContent-Type: text/plain;\r\n charset="us-ascii"\r\n\r\nbody\r\n'
} >"$MSG/case-8g.eml"
raw case-8g "$MSG/case-8g.eml"
if fetch case-8g; then
    check_pass case-8g "$RSA pass"
fi
# 8h: simple, empty body
printf 'From: alice@example.com\r\nTo: rcpt@remote.test\r\nSubject: case-8h simple, empty body\r\nDate: %s\r\nMessage-Id: %s\r\n\r\n' \
    "$DATE" "$(mid case-8h)" >"$MSG/case-8h.eml"
raw case-8h "$MSG/case-8h.eml"
if fetch case-8h; then
    check_pass case-8h "$RSA pass"
fi
# 8i: simple, RSA + Ed25519, nothing folded, 8-bit body
send case-8i bob@dual.example.com --body "@$MSG/case-8a-latin1.body" \
    --header 'Content-Transfer-Encoding: 8bit'
if fetch case-8i; then
    check_pass case-8i "$ED pass
$RSA pass"
fi
check_event case-8i signed "$ED
$RSA"

# ------------------------------------------------------------ 11 reload

echo "# 11. SIGHUP with a key file made readable by others, then removed"
reload "${SETTINGS[@]}"
check_reload "SIGHUP back to relaxed/relaxed" ok
chmod 0644 "$KEYDIR/r.pem"
reload
check_reload "case-11a: SIGHUP with $KEYDIR/r.pem mode 0644" refused
it_check "case-11a: daemon alive after the refused reload" it_daemon_alive
it_check "case-11a: the log line names the file and the fix" \
    grep -qF "fix: chmod 0600 $KEYDIR/r.pem" <<<"$RELOAD_LOG"
send case-11a alice@example.com
if fetch case-11a; then
    check_pass case-11a "$RSA pass"
fi
check_event case-11a signed "$RSA"
rm -f "$KEYDIR/r.pem"
reload
check_reload "case-11b: SIGHUP with $KEYDIR/r.pem removed" refused
it_check "case-11b: the log line names the missing file" \
    grep -qF "$KEYDIR/r.pem: No such file" <<<"$RELOAD_LOG"
send case-11b bob@dual.example.com
if fetch case-11b; then
    check_pass case-11b "$ED pass
$RSA pass"
fi
check_event case-11b signed "$ED
$RSA"

echo "# refused messages never reached the sink"
for c in "${REFUSED[@]}"; do
    it_check_eq "not delivered: $c" "" "$(it_sink_by_msgid "$(mid "$c")")"
done

# ------------------------------------------------------------ OpenDKIM

# odkim_run - in a private network and mount namespace: unbound on
# 127.0.0.1:53 serving the test keys, /etc/resolv.conf bind-mounted to it,
# then opendkim-testmsg (verify mode) on each message; prints "NAME STATUS
# [message]" lines
odkim_run()
{
    local d=$IT_DIR/odkim n
    {
        printf 'server:\n  interface: 127.0.0.1\n  port: 53\n  do-ip6: no\n'
        printf '  username: ""\n  chroot: ""\n  directory: "%s"\n  pidfile: ""\n' "$d"
        printf '  use-syslog: no\n  logfile: "%s/unbound.log"\n  do-daemonize: no\n' "$d"
        printf '  local-zone: "example.com." static\n  local-zone: "example.org." static\n'
        # keygen's records, one line each: local-data: 'NAME TXT "..." "..."'
        tr '\n' ' ' <"$ZONE" | sed -e 's/ )/)\n/g' |
            sed -n 's/^ *\([^ ]*\) IN TXT ( *\(.*\))$/  local-data: '"'"'\1 TXT \2'"'"'/p'
        printf 'remote-control:\n  control-enable: no\n'
    } >"$d/unbound.conf"
    printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n' >"$d/resolv.conf"
    for n in "$@"; do
        printf '%s\n' "$n"
    done >"$d/list"
    # shellcheck disable=SC2016
    unshare -mn bash -c '
        d=$1 out=$2
        ip link set lo up || exit 3
        unbound -d -c "$d/unbound.conf" >"$d/unbound.out" 2>&1 &
        ub=$!
        for _ in $(seq 50); do
            [ -n "$(ss -lunH "sport = :53")" ] && break
            sleep 0.1
        done
        [ -n "$(ss -lunH "sport = :53")" ] || { echo "UNBOUND-DID-NOT-START"; exit 4; }
        mount --bind "$d/resolv.conf" /etc/resolv.conf || exit 3
        while read -r n; do
            msg=$(opendkim-testmsg <"$out/$n.eml" 2>&1)
            echo "$n $? $msg" | tr "\n" " "
            echo
        done <"$d/list"
        kill "$ub"
        wait "$ub"
    ' odkim "$d" "$OUT"
}

# one_sig NAME - for each DKIM-Signature of $OUT/NAME.eml, a copy
# $OUT/NAME.s-SELECTOR.eml keeping only that one (opendkim-testmsg gives one
# result per message, "good" when any signature is); prints the new names
one_sig()
{
    "$IT_PY" - "$OUT" "$1" <<'EOF'
import re, sys
out, name = sys.argv[1:3]
data = open("%s/%s.eml" % (out, name), "rb").read()
head, sep, body = data.partition(b"\r\n\r\n")
fields = []
for line in head.split(b"\r\n"):
    if line[:1] in (b" ", b"\t") and fields:
        fields[-1] += b"\r\n" + line
    else:
        fields.append(line)
sigs = [i for i, f in enumerate(fields) if f.lower().startswith(b"dkim-signature:")]
for i in sigs:
    m = re.search(rb"[;\s]s\s*=\s*([^;\s]+)", fields[i])
    n = "%s.s-%s" % (name, m.group(1).decode() if m else i)
    keep = [f for j, f in enumerate(fields) if j == i or j not in sigs]
    open("%s/%s.eml" % (out, n), "wb").write(b"\r\n".join(keep) + sep + body)
    print(n)
EOF
}

echo "# OpenDKIM's verifier (opendkim-testmsg), one signature at a time"
if ! command -v opendkim-testmsg >/dev/null || ! command -v unbound >/dev/null ||
    ! command -v unshare >/dev/null; then
    it_skip "opendkim-testmsg" "needs opendkim-tools, unbound and unshare"
elif ! unshare -mn true 2>/dev/null; then
    it_skip "opendkim-testmsg" "cannot create namespaces here"
else
    mkdir -p "$IT_DIR/odkim"
    mapfile -t good < <(for c in "${ODKIM_PASS[@]}"; do one_sig "$c"; done)
    mapfile -t bad < <(for c in "${ODKIM_FAIL[@]}"; do one_sig "$c"; done)
    odkim_run "${good[@]}" "${bad[@]}" >"$IT_DIR/odkim/results" 2>&1
    if grep -q UNBOUND-DID-NOT-START "$IT_DIR/odkim/results"; then
        it_fail "opendkim-testmsg: private unbound did not start" \
            "$(tail -n 3 "$IT_DIR/odkim/unbound.out")"
    fi
    for c in "${good[@]}"; do
        line=$(grep -m1 "^$c " "$IT_DIR/odkim/results")
        it_check_eq "$c: opendkim-testmsg verifies" "$c 0" "$(cut -d' ' -f1-2 <<<"$line")"
    done
    for c in "${bad[@]}"; do
        line=$(grep -m1 "^$c " "$IT_DIR/odkim/results")
        it_check "$c: opendkim-testmsg rejects the modified copy ($(cut -d' ' -f3- <<<"$line"))" \
            test -n "$line" -a "$(cut -d' ' -f2 <<<"$line")" != 0
    done
fi

it_summary
