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
# 127.0.0.0/8 minus 127.0.0.9 is "internal"; 127.0.0.9 plays an outside client
it_daemon_config "$IT_DIR/outpolicy.conf" \
    'outbound.internal_hosts=[ "127.0.0.1/32", "127.0.0.2/32" ]'
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
echo "==> outpolicyd's log ($IT_DIR/outpolicyd.log):"
grep -E 'verdict|tls-required' "$IT_DIR/outpolicyd.log" | sed 's/^/  /'
echo
echo "==> JSON events ($IT_EVENTS), one per outbound message:"
"$IT_PY" -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    o = e["outpolicy"]
    print("  %-10s qid=%-12s from=%-20s tls=%-4s verdict=%s%s tls_required=%s" % (
        e["event"]["action"], e["email"].get("local_id", "-"),
        o["envelope"]["from"], e["tls"].get("version", "none"),
        o["verdict"]["action"], "(" + o["verdict"]["check"] + ")" if o["verdict"]["check"] else "",
        o["tls_required"]))
print()
print("  last event in full:")
print(json.dumps(e, indent=2).replace("\n", "\n  ").join(["  ", ""]))
' "$IT_EVENTS"
echo
echo "==> done; stopping what the demo started"
