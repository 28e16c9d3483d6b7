#!/bin/bash
# contrib/quickstart.sh - a self-contained outpolicy demo on loopback.
#
# Installs the dependencies (Debian 12, as root), builds outpolicy in
# ./build-quickstart, starts a private Postfix instance on 127.0.0.1 with
# outpolicyd as its milter and an smtp-sink that captures what Postfix
# delivers, sends a few messages, prints what happened and the JSON events,
# then stops everything it started (by PID / postfix -c ... stop).
# No system service is touched.  QUICKSTART_KEEP=1 keeps the scratch dir.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${OUTPOLICY_BUILD:-$SRC/build-quickstart}

[ "$(id -u)" -eq 0 ] || { echo "quickstart: run as root (it starts a private Postfix)" >&2; exit 1; }
echo "==> installing dependencies (contrib/install-deps.sh)"
"$SRC/contrib/install-deps.sh" || exit 1

echo "==> building outpolicy in $BUILD"
if [ ! -x "$BUILD/milter/outpolicyd" ]; then
    rm -rf "$BUILD" && mkdir -p "$BUILD"
    (cd "$SRC" && git ls-files -z -co --exclude-standard 2>/dev/null | xargs -0 cp --parents -t "$BUILD") ||
        (cd "$SRC" && tar --exclude='./build-*' -cf - . | tar -C "$BUILD" -xf -)
    (cd "$BUILD" && autoreconf -fi && ./configure -q && make -j"$(nproc)") \
        >"$BUILD.log" 2>&1 || { echo "build failed; see $BUILD.log" >&2; tail -20 "$BUILD.log"; exit 1; }
fi

export OUTPOLICY_BUILD=$BUILD IT_KEEP=${QUICKSTART_KEEP:-0}
# shellcheck source=../tests/integration/lib.sh
. "$SRC/tests/integration/lib.sh"
it_init quickstart
it_tls_cert
it_sink_start
# DKIM (RSA + Ed25519) and ARC keys for example.com, as an admin makes them
KEYS=$IT_DIR/keys
mkdir -p "$KEYS" && chmod 700 "$KEYS"
CTL=$OUTPOLICY_BUILD/ctl/outpolicyctl
"$CTL" keygen --domain example.com --selector s1 --out "$KEYS/s1.pem" >"$KEYS/zone.txt" 2>/dev/null
"$CTL" keygen --domain example.com --selector e1 --algorithm ed25519 --out "$KEYS/e1.pem" >>"$KEYS/zone.txt" 2>/dev/null
chown -R nobody "$KEYS"
TLSMAP=$IT_RUN/tlspolicy.sock
# 127.0.0.0/8 minus 127.0.0.9 is "internal"; 127.0.0.9 plays an outside client
it_daemon_config "$IT_DIR/outpolicy.conf" \
    'outbound.internal_hosts=[ "127.0.0.1/32", "127.0.0.2/32" ]' \
    "keys=( { id = \"rsa\"; domain = \"example.com\"; selector = \"s1\"; file = \"$KEYS/s1.pem\"; }, { id = \"ed\"; domain = \"example.com\"; selector = \"e1\"; file = \"$KEYS/e1.pem\"; algorithm = \"ed25519-sha256\"; } )" \
    'dkim.signing=( { from = "example.com"; keys = [ "rsa", "ed" ]; } )' \
    'arc.authserv_id="mx.outpolicy.test"' 'arc.key="rsa"' \
    "tls_policy.socket=\"unix:$TLSMAP\"" \
    'tls_policy.destinations=( { match = ".legacy.example"; policy = "may"; } )'
it_daemon_start "$IT_DIR/outpolicy.conf" || exit 1
IT_MILTER="unix:$IT_SOCK" it_postfix_start

row() { printf '  %-44s %s\n' "$1" "$2"; }
reply() { it_swaks_reply_to "$1" 2>/dev/null | cut -c1-70; }

echo
echo "==> Postfix on 127.0.0.1:$IT_SMTP_PORT, outpolicyd on $IT_SOCK, sink on 127.0.0.1:$IT_SINK_PORT"
echo "==> sending test messages"
it_swaks --local-interface 127.0.0.2 --from alice@example.com --to bob@remote.example \
    --header "Subject: plaintext from an internal host"
row "1. internal host, no TLS" "MAIL FROM -> $(reply 'MAIL FROM')"

it_swaks --local-interface 127.0.0.2 --from alice@example.com --to bob@remote.example \
    --tls --tls-protocol tlsv1_3 --header "Subject: TLS 1.3 from an internal host"
row "2. internal host, STARTTLS $(it_swaks_tls_version)" "end of data -> $(reply '.')"

it_swaks --local-interface 127.0.0.2 --from alice@example.com --to carol@remote.example \
    --tls --tls-protocol tlsv1_2 --header "Subject: asks to relax TLS" --header "TLS-Required: No"
row "3. TLS 1.2 + 'TLS-Required: No'" "end of data -> $(reply '.')"

it_swaks --local-interface 127.0.0.9 --from alice@example.com --to dave@remote.example \
    --tls --tls-protocol tlsv1_3 --auth PLAIN --auth-user alice@outpolicy.test \
    --auth-password secret --header "Subject: authenticated from outside"
row "4. outside host, AUTH + TLS 1.3" "end of data -> $(reply '.')"

it_swaks --local-interface 127.0.0.9 --from someone@elsewhere.example --to eve@remote.example \
    --header "Subject: inbound-style mail, not ours"
row "5. outside host, no AUTH (not outbound)" "end of data -> $(reply '.')"

it_sink_wait 4 30 >/dev/null
echo
echo "==> the sink received $(it_sink_count) message(s):"
for f in $(it_sink_messages); do
    subj=$(it_sink_header "$f" subject | head -1)
    tlsreq=$(it_sink_header "$f" tls-required | head -1)
    row "  $subj" "${tlsreq:+TLS-Required: $tlsreq}${tlsreq:-(no TLS-Required header)}"
done
echo
echo "==> DKIM and ARC of what was delivered, checked by dkimpy (an independent verifier):"
VERIFY=${OUTPOLICY_SHARED:-$SRC/../shared}/tools/mailauth-verify
for f in $(it_sink_messages); do
    subj=$(it_sink_header "$f" subject | head -1)
    if [ -x "$VERIFY" ]; then
        it_sink_message_body "$f" crlf >"$IT_DIR/check.eml"
        res=$("$VERIFY" --zone "$KEYS/zone.txt" "$IT_DIR/check.eml" | "$IT_PY" -c '
import json, sys
r = json.loads(sys.stdin.read())
sigs = ", ".join("%s s=%s %s" % (d["algorithm"], d["selector"], d["result"]) for d in r["dkim"])
print("DKIM: %s; ARC cv=%s" % (sigs or "none", r["arc"]["cv"]))')
    else
        res="(../shared/tools/mailauth-verify not found)"
    fi
    row "  $subj" "$res"
done
echo
echo "==> the TLS policy map Postfix would query (smtp_tls_policy_maps):"
mkdir -p "$IT_DIR/pm" && touch "$IT_DIR/pm/main.cf"
for k in gmail.com mx.legacy.example '[smtp.exmail.qq.com]:465'; do
    row "  postmap -q $k" "$(postmap -c "$IT_DIR/pm" -q "$k" "socketmap:unix:$TLSMAP:tlspolicy")"
done
echo
echo "==> outpolicyd's log ($IT_DIR/outpolicyd.log):"
grep -E 'verdict|tls-required' "$IT_DIR/outpolicyd.log" | sed 's/^/  /'
echo
echo "==> JSON events ($IT_EVENTS): $(grep -c '"action":"submission"' "$IT_EVENTS") submission, $(grep -c '"action":"destination"' "$IT_EVENTS") destination, $(grep -c '"action":"tls_policy"' "$IT_EVENTS") tls_policy"
"$IT_PY" -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"]["action"] != "submission":
        continue
    o = e["outpolicy"]
    last = e
    print("  qid=%-12s from=%-18s tls=%-4s verdict=%-6s%s dkim=%s arc=%s" % (
        e["email"].get("local_id", "-"), o["envelope"]["from"],
        e["tls"].get("version", "none"), o["verdict"]["action"],
        "(" + o["verdict"]["check"] + ")" if o["verdict"]["check"] else "",
        o["dkim"]["result"], o.get("arc", {}).get("sealed_instance", 0)))
print()
print("  last submission event in full:")
print(json.dumps(last, indent=2).replace("\n", "\n  ").join(["  ", ""]))
' "$IT_EVENTS"
echo
echo "==> done; stopping what the demo started"
