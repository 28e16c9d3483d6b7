#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_shipping.sh - the SIEM shipper configs in
# contrib/shipping/ are valid, and rsyslog really forwards the events.
#
# 1. rsyslog (Debian's rsyslogd): contrib/shipping/rsyslog-outpolicy.conf
#    passes "rsyslogd -N1" as a drop-in of Debian's /etc/rsyslog.conf, and
#    so does its omelasticsearch variant (uncommented) when
#    rsyslog-elasticsearch is installed; a broken copy fails (the
#    validation can fail).
# 2. A private rsyslogd (its own -f config and -i pidfile, no system
#    service) runs the contrib config with only the file path, the target
#    and the port replaced: imfile on this test's event file, omfwd TCP to
#    a loopback listener.  Mail through the harness produces events (one
#    over 8 KB, one with quotes, backslashes and UTF-8 in its Message-ID);
#    the listener must receive every event line byte for byte, each a JSON
#    object, also after the event file was rotated (mv + SIGUSR1 as
#    contrib/logrotate does).
# 3. Vector and Filebeat are not in Debian: their native validators run
#    only if installed (else SKIP lines); the files must be valid YAML with
#    the structure their shippers need.
#
# Needs root, what lib.sh needs, rsyslog (Debian package; rsyslog-
# elasticsearch optional) and python3-yaml.  Prints one line per check
# and "N passed, N failed"; IT_KEEP=1 keeps the scratch directory.

set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init shipping
SHIP=$IT_SRC/contrib/shipping
RSCONF=$SHIP/rsyslog-outpolicy.conf
RS=$IT_DIR/rsyslog
mkdir -p "$RS/d" "$RS/work"
RUN=$$

command -v rsyslogd >/dev/null 2>&1 ||
    it_die "no rsyslogd (Debian: apt-get install rsyslog)"
it_check "contrib/shipping/rsyslog-outpolicy.conf exists" test -r "$RSCONF"

# ------------------------------------------------------------ rsyslogd -N1

echo "# rsyslog: the config validates as a drop-in of Debian's rsyslog.conf"

# validate DROPIN - rsyslogd -N1 on Debian's rsyslog.conf (or a minimal
# main config with a work directory if there is none) including DROPIN only
validate()
{
    local dir=$RS/validate.$$ rc
    rm -rf "$dir" && mkdir -p "$dir/d"
    cp "$1" "$dir/d/60-outpolicy.conf"
    if [ -r /etc/rsyslog.conf ] && grep -q '^.IncludeConfig ' /etc/rsyslog.conf; then
        sed "s#^\\\$IncludeConfig .*#\$IncludeConfig $dir/d/*.conf#" /etc/rsyslog.conf >"$dir/main.conf"
    else
        printf 'global(workDirectory="%s")\ninclude(file="%s/d/*.conf")\n' "$RS/work" "$dir" >"$dir/main.conf"
    fi
    rsyslogd -N1 -f "$dir/main.conf" >"$RS/validate.log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && ! grep -q 'End of config validation run' "$RS/validate.log"; then
        rc=1
    fi
    return "$rc"
}

if validate "$RSCONF"; then
    it_ok "rsyslogd -N1: contrib config valid"
else
    it_fail "rsyslogd -N1: contrib config valid" "$(grep -v '^rsyslogd: version' "$RS/validate.log" | head -n 3)"
fi

# the same validation must reject a broken config
sed 's/^template(name="outpolicy_json_line" type="string"/template(name="outpolicy_json_line" type="string" string=/' \
    "$RSCONF" >"$RS/broken.conf"
if ! cmp -s "$RSCONF" "$RS/broken.conf" && ! validate "$RS/broken.conf"; then
    it_ok "rsyslogd -N1: a broken copy is refused"
else
    it_fail "rsyslogd -N1: a broken copy is refused" "$(head -n 3 "$RS/validate.log")"
fi

# the omelasticsearch variant: uncomment the BEGIN..END block and the call
sed -e '/^# BEGIN omelasticsearch/,/^# END omelasticsearch/{/^# \(BEGIN\|END\) omelasticsearch/!s/^#//}' \
    -e 's/^\( *\)#call outpolicy_to_elasticsearch/\1call outpolicy_to_elasticsearch/' \
    "$RSCONF" >"$RS/es.conf"
it_check "omelasticsearch variant: uncommenting changes the config" \
    grep -q '^module(load="omelasticsearch")' "$RS/es.conf"
it_check "omelasticsearch variant: the call is uncommented" \
    grep -qE '^ +call outpolicy_to_elasticsearch' "$RS/es.conf"
RSLIB=$(dirname "$(find /usr/lib -path '*/rsyslog/imfile.so' -print -quit 2>/dev/null)")
if [ -e "$RSLIB/omelasticsearch.so" ]; then
    if validate "$RS/es.conf"; then
        it_ok "rsyslogd -N1: omelasticsearch variant valid"
    else
        it_fail "rsyslogd -N1: omelasticsearch variant valid" "$(grep -v '^rsyslogd: version' "$RS/validate.log" | head -n 3)"
    fi
else
    it_skip "rsyslogd -N1: omelasticsearch variant" "omelasticsearch not installed (Debian: rsyslog-elasticsearch)"
fi

# ------------------------------------------------------------ forwarding

echo "# rsyslog really forwards the events (imfile -> omfwd -> loopback listener)"
it_tls_cert
it_sink_start
it_daemon_config "$IT_DIR/outpolicyd.conf"
it_daemon_start "$IT_DIR/outpolicyd.conf" || it_die "outpolicyd did not start"
IT_MILTER="unix:$IT_SOCK" it_postfix_start

# the listener: accepts TCP connections, appends what arrives to a file
it_pick_port LPORT || it_die "no free port"
cat >"$RS/listener.py" <<'EOF'
import socket, sys, threading

port, out = int(sys.argv[1]), sys.argv[2]
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(8)
lock = threading.Lock()

def serve(conn):
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            with lock, open(out, "ab") as f:
                f.write(data)

while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
: >"$RS/received"
"$IT_PY" "$RS/listener.py" "$LPORT" "$RS/received" >"$RS/listener.log" 2>&1 &
it_track_pid $!
it_wait_for 10 it_port_listening "$LPORT" || it_die "listener did not listen on $LPORT"

# the contrib config with the path, target and port of this test
{
    printf '# private rsyslogd of %s (written by test_shipping.sh)\n' "$IT_NAME"
    printf 'global(workDirectory="%s")\n' "$RS/work"
    sed -e "s#File=\"/var/log/outpolicy/events.json\"#File=\"$IT_EVENTS\"#" \
        -e "s#Target=\"siem.example.net\"#Target=\"127.0.0.1\"#" \
        -e "s#Port=\"6514\"#Port=\"$LPORT\"#" "$RSCONF"
} >"$RS/rsyslog.conf"
it_check_eq "private config: path, target and port replaced" 3 \
    "$(grep -cE "File=\"$IT_EVENTS\"|Target=\"127\.0\.0\.1\"|Port=\"$LPORT\"" "$RS/rsyslog.conf")"
it_check_eq "private config: nothing else changed" \
    "$(grep -vcE 'File=|Target=|Port=' "$RSCONF")" \
    "$(tail -n +3 "$RS/rsyslog.conf" | grep -vcE 'File=|Target=|Port=')"
rsyslogd -N1 -f "$RS/rsyslog.conf" >"$RS/private-N1.log" 2>&1
it_check_eq "rsyslogd -N1: private config valid" 0 "$?"

rsyslogd -n -f "$RS/rsyslog.conf" -i "$RS/rsyslogd.pid" >"$RS/rsyslogd.log" 2>&1 &
RSPID=$!
it_track_pid "$RSPID"
rs_up()
{
    [ -s "$RS/rsyslogd.pid" ] || ! alive "$RSPID"
}
alive()
{
    ! it_pid_gone "$1"
}
it_wait_for 10 rs_up
it_check "rsyslogd (private) is running" alive "$RSPID"
it_check_eq "rsyslogd pidfile holds its PID" "$RSPID" "$(tr -d ' \n' <"$RS/rsyslogd.pid" 2>/dev/null)"

# mail that makes events: plain; 300 recipients (an event over 8 KB);
# a Message-ID with a quote, a backslash and UTF-8
MID_ODD="<odd\"quote\\back.zoë.$RUN@example.org>"
RCPTS=$(for i in $(seq 1 300); do printf 'recipient-number-%03d@many.example,' "$i"; done)
RCPTS=${RCPTS%,}
it_swaks --from ship@example.org --to a@one.example,b@two.example \
    --header "Message-Id: <plain.$RUN@example.org>" --tls --tls-protocol tlsv1_3
it_check_eq "plain: swaks" 0 "$IT_SWAKS_RC"
it_swaks --from ship@example.org --to "$RCPTS" \
    --header "Message-Id: <many.$RUN@example.org>" --tls --tls-protocol tlsv1_3
it_check_eq "300 recipients: swaks" 0 "$IT_SWAKS_RC"
it_swaks --from ship@example.org --to c@three.example \
    --header "Message-Id: $MID_ODD" --tls --tls-protocol tlsv1_3
it_check_eq "odd Message-ID: swaks" 0 "$IT_SWAKS_RC"

# received_all FILE - the listener got as many lines as FILE has
received_all()
{
    [ -s "$1" ] && [ "$(grep -c '' "$RS/received")" -ge "$(grep -c '' "$1")" ]
}
it_check_eq "events: submission events written" 3 \
    "$(it_events_query "g(e,'event.action') == 'submission'")"
it_check "listener received every event line (within 20 s)" \
    it_wait_for 20 received_all "$IT_EVENTS"

# compare EVENTS... - the received lines are the event lines, byte for byte,
# and each is a JSON object; prints "ok - ..."/"FAIL - ..." lines
compare()
{
    "$IT_PY" - "$RS/received" "$MID_ODD" "$@" <<'EOF'
import json, sys

recv_path, odd = sys.argv[1], sys.argv[2]
sent = b"".join(open(p, "rb").read() for p in sys.argv[3:])
recv = open(recv_path, "rb").read()

def say(ok, label, detail=""):
    print(("ok - " if ok else "FAIL - ") + label + ("" if ok else ": " + detail))

say(recv == sent, "received bytes = event file bytes (%d bytes, %d lines)" % (len(sent), sent.count(b"\n")),
    "received %d bytes, %d lines; first difference at byte %s" % (
        len(recv), recv.count(b"\n"),
        next((i for i, (a, b) in enumerate(zip(recv, sent)) if a != b), min(len(recv), len(sent)))))
events, bad = [], 0
for line in recv.split(b"\n")[:-1]:
    try:
        e = json.loads(line.decode("utf-8"))
        events.append(e)
        bad += not isinstance(e, dict)
    except ValueError:
        bad += 1
say(bad == 0 and events, "every received line is a JSON object (%d)" % len(events), "%d are not" % bad)
acts = {}
for e in events:
    a = e.get("event", {}).get("action")
    acts[a] = acts.get(a, 0) + 1
print("# received events by action: %s" % acts)
longest = max((len(l) for l in recv.split(b"\n")), default=0)
say(longest > 8192, "an event over 8 KB arrived whole (%d bytes)" % longest)
many = [e for e in events if e.get("event", {}).get("action") == "submission"
        and len(e.get("email", {}).get("to", {}).get("address", [])) == 300]
say(len(many) == 1, "the 300-recipient submission event parses with all 300 recipients")
say(any(e.get("email", {}).get("message_id") == odd for e in events),
    "Message-ID with quote, backslash and UTF-8 intact: %s" % odd)
EOF
}

# sh_count - turn "ok - "/"FAIL - " lines into harness results
sh_count()
{
    local line
    while IFS= read -r line; do
        case $line in
            "ok - "*) it_ok "${line#ok - }" ;;
            "FAIL - "*) it_fail "${line#FAIL - }" ;;
            "# "*) printf '%s\n' "$line" ;;
            *) it_fail "compare: $line" ;;
        esac
    done
}
sh_count < <(compare "$IT_EVENTS" 2>&1)

echo "# after a rotation (mv + SIGUSR1, as contrib/logrotate does)"
mv "$IT_EVENTS" "$IT_EVENTS.1"
it_daemon_usr1
it_swaks --from ship@example.org --to d@four.example \
    --header "Message-Id: <rotated.$RUN@example.org>" --tls --tls-protocol tlsv1_3
it_check_eq "rotated: swaks" 0 "$IT_SWAKS_RC"
it_check "rotated: outpolicyd wrote a new event file" it_wait_for 10 test -s "$IT_EVENTS"
both()
{
    cat "$IT_EVENTS.1" "$IT_EVENTS" >"$RS/both"
    received_all "$RS/both"
}
it_check "rotated: listener received the new file's events (within 20 s)" it_wait_for 20 both
sh_count < <(compare "$IT_EVENTS.1" "$IT_EVENTS" 2>&1)
it_check "rsyslogd still running" alive "$RSPID"
if grep -qiE 'error|fail' "$RS/rsyslogd.log"; then
    it_fail "rsyslogd logged no errors" "$(grep -iE 'error|fail' "$RS/rsyslogd.log" | head -n 3)"
else
    it_ok "rsyslogd logged no errors"
fi

# ------------------------------------------------------------ Vector, Filebeat

echo "# Vector and Filebeat configs"
# apt_has PKG - Debian has a candidate for PKG
apt_has()
{
    apt-cache policy "$1" 2>/dev/null | grep -qE '^  Candidate: [^(]'
}
for p in vector filebeat; do
    if apt_has "$p"; then
        it_ok "$p: Debian has a package ($(apt-cache policy "$p" | sed -n 's/^  Candidate: //p'))"
    else
        it_skip "$p: Debian package" "apt-cache policy $p: no such package in this system's sources"
    fi
done
if command -v vector >/dev/null 2>&1; then
    if OUTPOLICY_ES_PASSWORD=x vector validate --no-environment "$SHIP/vector.yaml" >"$IT_DIR/vector.log" 2>&1; then
        it_ok "vector validate --no-environment: valid"
    else
        it_fail "vector validate --no-environment: valid" "$(tail -n 3 "$IT_DIR/vector.log")"
    fi
else
    it_skip "vector validate" "vector is not installed (not in Debian)"
fi
if command -v filebeat >/dev/null 2>&1; then
    if OUTPOLICY_ES_PASSWORD=x filebeat test config -c "$SHIP/filebeat.yml" >"$IT_DIR/filebeat.log" 2>&1; then
        it_ok "filebeat test config: valid"
    else
        it_fail "filebeat test config: valid" "$(tail -n 3 "$IT_DIR/filebeat.log")"
    fi
else
    it_skip "filebeat test config" "filebeat is not installed (not in Debian)"
fi

"$IT_PY" - "$SHIP/vector.yaml" "$SHIP/filebeat.yml" "$RS/bad.yaml" >"$IT_DIR/yaml.out" 2>&1 <<'EOF'
import sys
import yaml

vec, fb, badpath = sys.argv[1:4]
EVENTS = "/var/log/outpolicy/events.json"

def say(ok, label, detail=""):
    print(("ok - " if ok else "FAIL - ") + label + ("" if ok else ": " + detail))

def load(path):
    try:
        return yaml.safe_load(open(path, encoding="utf-8")), None
    except yaml.YAMLError as err:
        return None, str(err).replace("\n", " ")

# the YAML check can fail: a broken document is refused
open(badpath, "w").write("sources:\n  a: [1, 2\n  b: c\n")
say(load(badpath)[1] is not None, "YAML check refuses a broken document")

v, err = load(vec)
say(isinstance(v, dict), "vector.yaml is valid YAML (a mapping)", err or "")
v = v if isinstance(v, dict) else {}
src = v.get("sources") or {}
tr = v.get("transforms") or {}
sk = v.get("sinks") or {}
files = [s for s in src.values() if s.get("type") == "file"]
say(len(files) == 1 and EVENTS in files[0].get("include", []),
    "vector: a file source on " + EVENTS)
say(isinstance(files[0].get("max_line_bytes") if files else None, int) and files[0]["max_line_bytes"] >= 65536,
    "vector: max_line_bytes allows long events")
names = set(src) | set(tr)
dangling = [(n, i) for n, c in list(tr.items()) + list(sk.items()) for i in c.get("inputs", []) if i not in names]
say(not dangling and all(c.get("inputs") for c in list(tr.values()) + list(sk.values())),
    "vector: every transform/sink input names a defined component", repr(dangling))
remap = [t for t in tr.values() if t.get("type") == "remap"]
say(len(remap) == 1 and "parse_json" in remap[0].get("source", "") and ".message" in remap[0].get("source", ""),
    "vector: a remap transform parses .message as JSON")
es = [s for s in sk.values() if s.get("type") == "elasticsearch"]
say(len(es) == 1 and es[0].get("endpoints") and
    (es[0].get("mode") != "data_stream" or (es[0].get("bulk") or {}).get("action") == "create"),
    "vector: an elasticsearch sink (data streams with bulk action create)")
say(bool(v.get("data_dir")), "vector: data_dir set (checkpoints)")

f, err = load(fb)
say(isinstance(f, dict), "filebeat.yml is valid YAML (a mapping)", err or "")
f = f if isinstance(f, dict) else {}
inputs = f.get("filebeat.inputs") or []
fs = [i for i in inputs if i.get("type") == "filestream"]
say(len(fs) == 1 and fs[0].get("id") and EVENTS in fs[0].get("paths", []),
    "filebeat: one filestream input with an id, on " + EVENTS)
nd = [p["ndjson"] for p in (fs[0].get("parsers") or []) if "ndjson" in p] if fs else []
say(len(nd) == 1 and nd[0].get("target") == "" and nd[0].get("overwrite_keys") is True,
    "filebeat: ndjson parser to the document root, keys overwrite Filebeat's")
outs = [k for k in f if k.startswith("output.")]
say(outs == ["output.elasticsearch"], "filebeat: exactly one output enabled", repr(outs))
es = f.get("output.elasticsearch") or {}
say(not es.get("index") or (f.get("setup.template.name") and f.get("setup.template.pattern")),
    "filebeat: a custom index comes with setup.template.name/pattern")
EOF
sh_count <"$IT_DIR/yaml.out"

it_summary
