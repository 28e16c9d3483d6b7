#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_trace.sh - delivery tracing through a real Postfix:
# outpolicyctl trace joins Postfix's log with outpolicyd's events.
#
# Messages go through the private Postfix (syslog_name postfix-out, as a
# multi-instance gateway logs) to five destination domains, routed with
# transport_maps:
#
#   sent.example    the smtp-sink (relayhost)                  -> sent
#   bounce.example  an smtp-sink that answers RCPT with 550     -> bounced
#   defer.example   a port where nothing listens                -> deferred,
#                   then expired (maximal_queue_lifetime = 10s)
#   tls.example     a second Postfix with STARTTLS, TLS policy
#                   "verify" (its certificate in smtp_tls_CAfile) -> sent,
#                   TLS 1.3, Verified
#   eu.tls2.example the same server as [localhost]:port, TLS policy
#                   "encrypt" (rule ".tls2.example" for the
#                   destination event)                          -> sent,
#                   TLS 1.3, Trusted
#
# outpolicyd serves the TLS policy map (smtp_tls_policy_maps) and writes
# submission, destination and tls_policy events (buffered, the default).
# A "trace --follow" runs live from before the first message.  Then the
# test runs outpolicyctl trace on the maillog and checks the delivery
# events against the log lines (parsed here independently), the joins by
# queue ID, the summary (text and JSON), that the live follower saw the
# same, --follow across appends, a split line and a rotation, skipped
# lines, stdin (with and without syslog headers), and the --since/--until
# window; and, on small made-up logs, an IPv6 relay, a TLS line of an
# earlier session, RFC 3339 time stamps with UTC offsets and address
# verification probes.
#
# Needs what lib.sh needs, and a built ctl/outpolicyctl.  Prints one line
# per check and "N passed, N failed"; IT_KEEP=1 keeps the scratch directory.

set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init trace
it_second_init

it_need_ctl
RUN=$$
CONF=$IT_DIR/outpolicyd.conf
LOG=$IT_DIR/postfix/maillog
T=$IT_DIR/trace
mkdir -p "$T"

# alive PID - PID has not exited
alive()
{
    ! it_pid_gone "$1"
}

it_pick_port DEAD_PORT || it_die "no free port"
P2=$IT2_SMTP_PORT

# rej_settled - the rejecting sink listens, or has exited
rej_settled()
{
    it_port_listening "$REJ_PORT" || ! alive "$REJ_PID"
}

# ------------------------------------------------------------ receivers

it_tls_cert
it_sink_start

# bounce.example: every RCPT gets a hard 550 (another port if another
# process took this one between the pick and the bind)
for try in 1 2 3; do
    it_pick_port REJ_PORT || it_die "no free port"
    smtp-sink -u nobody -h reject.outpolicy.test -f RCPT \
        -B "550 5.1.1 No such user here" \
        "127.0.0.1:$REJ_PORT" 16 >"$IT_DIR/reject-sink.log" 2>&1 &
    REJ_PID=$!
    it_track_pid "$REJ_PID"
    it_wait_for 10 rej_settled && alive "$REJ_PID" && break
    it_log "rejecting smtp-sink: $(cat "$IT_DIR/reject-sink.log") (try $try)"
done
it_port_listening "$REJ_PORT" ||
    it_die "rejecting smtp-sink did not listen on $REJ_PORT"

# tls.example / eu.tls2.example: a second Postfix with STARTTLS (no milter),
# relaying to the same smtp-sink
it_second it_tls_cert
IT_MILTER='' it_second it_postfix_start

# ------------------------------------------------------------ outpolicyd + Postfix

TLSMAP=$IT_RUN/tlspolicy.sock
# events.buffer: the default (lib.sh turns it off), as a live
# "trace --follow" meets it in production
it_daemon_config "$CONF" \
    'events.buffer=true' \
    "tls_policy.socket=\"unix:$TLSMAP\"" \
    'tls_policy.default="may"' \
    "tls_policy.destinations=( { match = \"[127.0.0.1]:$P2\"; policy = \"verify match=mx.outpolicy.test protocols=>=TLSv1.2\"; }, { match = \"[localhost]:$P2\"; policy = \"encrypt protocols=>=TLSv1.2\"; }, { match = \"tls.example\"; policy = \"verify match=mx.outpolicy.test protocols=>=TLSv1.2\"; }, { match = \".tls2.example\"; policy = \"encrypt protocols=>=TLSv1.2\"; } )"
"$CTL" check-config "$CONF" >"$IT_DIR/check-config.log" 2>&1 ||
    it_die "check-config: $(head -n 3 "$IT_DIR/check-config.log")"
it_daemon_start "$CONF" || it_die "outpolicyd did not start"
it_check "tls policy map socket exists" test -S "$TLSMAP"

it_postconf "syslog_name=postfix-out" \
    "transport_maps=inline:{ bounce.example=smtp:[127.0.0.1]:$REJ_PORT, defer.example=smtp:[127.0.0.1]:$DEAD_PORT, tls.example=smtp:[127.0.0.1]:$P2, eu.tls2.example=smtp:[localhost]:$P2 }" \
    "smtp_tls_policy_maps=socketmap:unix:$TLSMAP:tlspolicy" \
    "smtp_tls_security_level=may" \
    "smtp_tls_loglevel=1" \
    "smtp_tls_CAfile=$IT2_DIR/tls/cert.pem" \
    "maximal_queue_lifetime=10s" \
    "bounce_queue_lifetime=10s" \
    "queue_run_delay=3s" \
    "minimal_backoff_time=3s" \
    "maximal_backoff_time=6s"
IT_MILTER="unix:$IT_SOCK" it_postfix_start

# a live follower, started before any mail, as an admin would run it
"$CTL" trace --follow --events "$IT_EVENTS" "$LOG" >"$T/live.json" 2>"$T/live.err" &
LIVE_PID=$!
it_track_pid "$LIVE_PID"

# ------------------------------------------------------------ mail

declare -A QID      # case -> queue ID
CASES=()

# send CASE RCPT[,RCPT...] - one message over STARTTLS TLSv1.3 from
# CASE@example.org
send()
{
    local c=$1
    it_swaks --from "$c@example.org" --to "$2" --tls --tls-protocol tlsv1_3 \
        --header "Message-Id: <$c.$RUN@example.org>" --header "Subject: $c"
    QID[$c]=$(it_swaks_queue_id)
    CASES+=("$c")
    if [ "$IT_SWAKS_RC" = 0 ] && [ -n "${QID[$c]}" ]; then
        it_ok "$c: queued as ${QID[$c]}"
    else
        it_fail "$c: queued" "swaks status $IT_SWAKS_RC, transcript $IT_SWAKS_OUT"
    fi
}

echo "# mail to five destination domains"
send m-sent a@sent.example
send m-bounce b@bounce.example
send m-defer c@defer.example
send m-tls d@tls.example
send m-tls2 e@eu.tls2.example
send m-multi f@sent.example,g@tls.example,h@bounce.example,i@sent.example

# queue_empty - the first instance's queue holds nothing
queue_empty()
{
    postqueue -c "$IT_DIR/postfix/etc" -p 2>/dev/null | grep -q '^Mail queue is empty'
}

# expired - qmgr gave up on m-defer
expired()
{
    grep -q "${QID[m-defer]}: from=<.*status=expired" "$LOG"
}

it_check "m-defer: expired within 60 s" it_wait_for 60 expired
it_check "queue empty within 60 s (all final, bounces delivered)" \
    it_wait_for 60 queue_empty
sleep 1             # the last log lines after the queue emptied

# ------------------------------------------------------------ trace

"$CTL" trace --events "$IT_EVENTS" "$LOG" >"$T/trace.json" 2>"$T/trace.err"
it_check_eq "trace: exit status" 0 "$?"
"$CTL" trace --events "$IT_EVENTS" --summary --json "$LOG" \
    >"$T/summary.json" 2>"$T/summary.err"
it_check_eq "trace --summary --json: exit status" 0 "$?"
"$CTL" trace --events "$IT_EVENTS" --summary "$LOG" \
    >"$T/summary.txt" 2>"$T/summary-txt.err"
it_check_eq "trace --summary: exit status" 0 "$?"

for c in "${CASES[@]}"; do
    printf '%s %s\n' "$c" "${QID[$c]}"
done >"$T/cases.txt"

# check.py: every check prints "ok - ..." or "FAIL - ..."; the shell counts
cat >"$T/check.py" <<'EOF'
import json, math, re, sys

T, LOG, EVENTS, SINK, REJ, P2, RUN = sys.argv[1:8]
SINK, REJ, P2 = int(SINK), int(REJ), int(P2)

def say(ok, label, detail=""):
    print(("ok - " if ok else "FAIL - ") + label + ("" if ok or not detail else ": " + detail))

def eq(label, want, got):
    say(want == got, label, "want %r, got %r" % (want, got))

cases = dict(l.split() for l in open(T + "/cases.txt"))
qid2case = {v: k for k, v in cases.items()}

# -- the log, parsed here on its own terms
LINE = re.compile(r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ (postfix-out/\w+)\[(\d+)\]: (.*)$")
DELIV = re.compile(r"^([0-9A-Za-z]+): to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=([^,]+), "
                   r"(?:conn_use=\d+, )?delay=([\d.]+), delays=([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+), "
                   r"dsn=([\d.]+), status=(\w+) \((.*)\)$")
TLSL = re.compile(r"^(\w+) TLS connection established to (\S+): (TLSv[\d.]+) with cipher (\S+)")
log_deliv, log_tls, expired, senders = [], {}, [], {}
for raw in open(LOG, encoding="utf-8", errors="replace"):
    m = LINE.match(raw.rstrip("\n"))
    if not m:
        continue
    ts, prog, pid, msg = m.groups()
    d = DELIV.match(msg)
    if d:
        t = log_tls.get((prog, pid))
        log_deliv.append(dict(qid=d[1], to=d[2], relay=d[3], delay=float(d[4]),
                              delays=[float(d[i]) for i in range(5, 9)], dsn=d[9],
                              status=d[10], reason=d[11], prog=prog,
                              tls=t if t and t["relay"] == d[3] else None))
        continue
    t = TLSL.match(msg)
    if t:
        log_tls[(prog, pid)] = dict(trust=t[1], relay=t[2], version=t[3], cipher=t[4])
        continue
    f = re.match(r"^([0-9A-Za-z]+): from=<([^>]*)>", msg)
    if f and prog.endswith("/qmgr"):
        senders[f[1]] = f[2]
        if "status=expired" in msg:
            expired.append(f[1])

# -- the trace output
out = [json.loads(l) for l in open(T + "/trace.json") if l.strip()]
say(all(l.endswith("\n") for l in open(T + "/trace.json")), "trace: one JSON object per line")

def g(e, dotted):
    for p in dotted.split("."):
        if not isinstance(e, dict) or p not in e:
            return None
        e = e[p]
    return e

deliv = [e for e in out if g(e, "event.action") == "delivery"]
eq("trace: every output line is a delivery event", len(out), len(deliv))
# expired notices are qmgr "from=" lines, not per-recipient lines
rcpt_ev = [e for e in deliv if g(e, "outpolicy.delivery.status") != "expired"]
eq("trace: one delivery event per delivery line in the log (%d)" % len(log_deliv),
   len(log_deliv), len(rcpt_ev))

# -- field by field, in log order
bad = []
for n, (l, e) in enumerate(zip(log_deliv, rcpt_ev)):
    want = {
        "email.local_id": l["qid"],
        "email.to.address": [l["to"]],
        "destination.domain": l["to"].split("@")[1],
        "outpolicy.delivery.status": l["status"],
        "outpolicy.delivery.dsn": l["dsn"],
        "outpolicy.delivery.relay": l["relay"],
        "outpolicy.delivery.response": l["reason"],
        "outpolicy.delivery.service": l["prog"],
        "outpolicy.delivery.delay": l["delay"],
        "outpolicy.delivery.delays.before_queue_manager": l["delays"][0],
        "outpolicy.delivery.delays.in_queue_manager": l["delays"][1],
        "outpolicy.delivery.delays.connection_setup": l["delays"][2],
        "outpolicy.delivery.delays.transmission": l["delays"][3],
        "event.outcome": {"sent": "success", "bounced": "failure"}.get(l["status"], "unknown"),
        "outpolicy.schema": 1,
        "tls.established": l["tls"] is not None,
    }
    if l["tls"]:
        want["tls.version"] = l["tls"]["version"][4:]
        want["tls.cipher"] = l["tls"]["cipher"]
        want["outpolicy.delivery.tls_trust"] = l["tls"]["trust"].lower()
        want["outpolicy.delivery.tls_verified"] = l["tls"]["trust"] == "Verified"
    m = re.match(r"^(.*)\[(.*)\]:(\d+)$", l["relay"])
    if m:
        want["destination.address"] = m[1]
        want["destination.ip"] = m[2]
        want["destination.port"] = int(m[3])
    for k, v in want.items():
        if g(e, k) != v:
            bad.append("line %d %s %s: %s want %r got %r" % (n, l["qid"], l["to"], k, v, g(e, k)))
say(not bad, "trace: every delivery event matches its log line (qid, to, status, dsn, relay, "
    "response, service, delay, delays, outcome, TLS)", "; ".join(bad[:5]))

# -- per case: the statuses a person expects
by_qid = {}
for e in deliv:
    by_qid.setdefault(g(e, "email.local_id"), []).append(e)

def statuses(case, rcpt=None):
    return [g(e, "outpolicy.delivery.status") for e in by_qid.get(cases[case], [])
            if rcpt is None or g(e, "email.to.address") == [rcpt]]

eq("m-sent: one delivery, sent", ["sent"], statuses("m-sent"))
eq("m-bounce: one delivery, bounced", ["bounced"], statuses("m-bounce"))
eq("m-tls: one delivery, sent", ["sent"], statuses("m-tls"))
eq("m-tls2: one delivery, sent", ["sent"], statuses("m-tls2"))
st = [s for s in statuses("m-defer", "c@defer.example") if s != "expired"]
say(len(st) >= 1 and set(st) == {"deferred"}, "m-defer: one deferred event per attempt (%d)" % len(st), repr(st))
eq("m-defer: attempts in trace = deferred lines in the log", len(st),
   sum(1 for l in log_deliv if l["qid"] == cases["m-defer"] and l["status"] == "deferred"))
for r, s in (("f@sent.example", "sent"), ("g@tls.example", "sent"),
             ("h@bounce.example", "bounced"), ("i@sent.example", "sent")):
    eq("m-multi: %s %s" % (r, s), [s], statuses("m-multi", r))

def one(case, rcpt=None, status=None):
    for e in by_qid.get(cases[case], []):
        if (rcpt is None or g(e, "email.to.address") == [rcpt]) and \
           (status is None or g(e, "outpolicy.delivery.status") == status):
            return e
    return {}

e = one("m-sent")
eq("m-sent: relay is the sink", "127.0.0.1[127.0.0.1]:%d" % SINK, g(e, "outpolicy.delivery.relay"))
eq("m-sent: dsn 2.0.0", "2.0.0", g(e, "outpolicy.delivery.dsn"))
eq("m-sent: destination.ip", "127.0.0.1", g(e, "destination.ip"))
eq("m-sent: destination.port", SINK, g(e, "destination.port"))
eq("m-sent: no TLS (the sink has no STARTTLS)", False, g(e, "tls.established"))
say(isinstance(g(e, "outpolicy.delivery.delay"), (int, float)) and
    all(isinstance(g(e, "outpolicy.delivery.delays." + k), (int, float)) for k in
        ("before_queue_manager", "in_queue_manager", "connection_setup", "transmission")),
    "m-sent: delay and delays.* are numbers")
eq("m-sent: outcome success", "success", g(e, "event.outcome"))

e = one("m-bounce")
eq("m-bounce: dsn 5.1.1", "5.1.1", g(e, "outpolicy.delivery.dsn"))
eq("m-bounce: relay is the rejecting sink", "127.0.0.1[127.0.0.1]:%d" % REJ, g(e, "outpolicy.delivery.relay"))
say("550 5.1.1 No such user here" in (g(e, "outpolicy.delivery.response") or ""),
    "m-bounce: response carries the 550 reply", repr(g(e, "outpolicy.delivery.response")))
eq("m-bounce: outcome failure", "failure", g(e, "event.outcome"))

e = one("m-defer", "c@defer.example", "deferred")
eq("m-defer: dsn 4.4.1", "4.4.1", g(e, "outpolicy.delivery.dsn"))
eq("m-defer: relay none", "none", g(e, "outpolicy.delivery.relay"))
say(sys.argv[8] in (g(e, "outpolicy.delivery.response") or "") and
    "Connection refused" in (g(e, "outpolicy.delivery.response") or ""),
    "m-defer: response names the refused connection", repr(g(e, "outpolicy.delivery.response")))
eq("m-defer: outcome unknown", "unknown", g(e, "event.outcome"))

# expired: the issue lists it as a delivery status of the message
ex = one("m-defer", status="expired")
say(bool(ex), "m-defer: an expired delivery event", "none in the trace output")
eq("m-defer: the log says expired", [cases["m-defer"]], expired)
eq("m-defer: expired event names the recipient", ["c@defer.example"], g(ex, "email.to.address"))
eq("m-defer: expired event names the destination domain", "defer.example", g(ex, "destination.domain"))
eq("m-defer: expired outcome failure", "failure", g(ex, "event.outcome"))

for case, rcpt, trust, verified, relay in (
        ("m-tls", None, "verified", True, "127.0.0.1[127.0.0.1]:%d" % P2),
        ("m-multi", "g@tls.example", "verified", True, "127.0.0.1[127.0.0.1]:%d" % P2),
        ("m-tls2", None, "trusted", False, "localhost[127.0.0.1]:%d" % P2)):
    e = one(case, rcpt)
    lab = case + (" " + rcpt if rcpt else "")
    eq(lab + ": tls.established", True, g(e, "tls.established"))
    eq(lab + ": tls.version 1.3", "1.3", g(e, "tls.version"))
    eq(lab + ": tls.version_protocol tls", "tls", g(e, "tls.version_protocol"))
    say(str(g(e, "tls.cipher") or "").startswith("TLS_"), lab + ": tls.cipher is a TLS 1.3 suite",
        repr(g(e, "tls.cipher")))
    eq(lab + ": tls_trust " + trust, trust, g(e, "outpolicy.delivery.tls_trust"))
    eq(lab + ": tls_verified", verified, g(e, "outpolicy.delivery.tls_verified"))
    eq(lab + ": relay", relay, g(e, "outpolicy.delivery.relay"))

# -- joins: submission, destination and delivery share the queue ID
ev = [json.loads(l) for l in open(EVENTS) if l.strip()]
subs = {g(e, "email.local_id"): e for e in ev if g(e, "event.action") == "submission"}
dests = {}
for e in ev:
    if g(e, "event.action") == "destination":
        dests.setdefault(g(e, "email.local_id"), []).append(e)
want_doms = {"m-sent": ["sent.example"], "m-bounce": ["bounce.example"],
             "m-defer": ["defer.example"], "m-tls": ["tls.example"],
             "m-tls2": ["eu.tls2.example"],
             "m-multi": ["sent.example", "tls.example", "bounce.example"]}
for case, q in cases.items():
    s = subs.get(q)
    say(s is not None, case + ": a submission event with local_id " + q)
    eq(case + ": destination events, one per recipient domain",
       want_doms[case], [g(d, "destination.domain") for d in dests.get(q, [])])
    dl = by_qid.get(q, [])
    say(len(dl) >= len(g(s, "email.to.address") or [1]), case + ": a delivery event per recipient",
        "%d events" % len(dl))
    for d in dl:
        if not s:
            break
        bad = []
        for k, v in (("email.message_id", "<%s.%s@example.org>" % (case, RUN)),
                     ("outpolicy.envelope.from", case + "@example.org"),
                     ("outpolicy.submission.verdict", g(s, "outpolicy.verdict.action")),
                     ("outpolicy.submission.dkim", g(s, "outpolicy.dkim.result")),
                     ("outpolicy.submission.tls_version", "1.3")):
            if g(d, k) != v:
                bad.append("%s want %r got %r" % (k, v, g(d, k)))
        pol = [g(x, "outpolicy.tls_policy.policy") for x in dests.get(q, [])
               if g(x, "destination.domain") == g(d, "destination.domain")]
        if pol and g(d, "outpolicy.tls_policy.policy") != pol[0]:
            bad.append("tls_policy.policy want %r got %r" % (pol[0], g(d, "outpolicy.tls_policy.policy")))
        if bad:
            break
    say(not bad, case + ": delivery events joined with submission + destination", "; ".join(bad))

m = next((d for d in dests.get(cases["m-multi"], []) if g(d, "destination.domain") == "sent.example"), {})
eq("m-multi: destination sent.example recipient_count 2", 2, g(m, "outpolicy.recipient_count"))
eq("m-multi: destination sent.example addresses", ["f@sent.example", "i@sent.example"],
   g(m, "email.to.address"))
m = next((d for d in dests.get(cases["m-tls"], [])), {})
eq("m-tls: destination tls_policy.rule", "tls.example", g(m, "outpolicy.tls_policy.rule"))
eq("m-tls: destination tls_policy.policy", "verify match=mx.outpolicy.test protocols=>=TLSv1.2",
   g(m, "outpolicy.tls_policy.policy"))
m = next((d for d in dests.get(cases["m-tls2"], [])), {})
eq("m-tls2: destination tls_policy.rule (parent rule)", ".tls2.example", g(m, "outpolicy.tls_policy.rule"))
m = next((d for d in dests.get(cases["m-sent"], [])), {})
eq("m-sent: destination tls_policy default", ["may", "default"],
   [g(m, "outpolicy.tls_policy.policy"), g(m, "outpolicy.tls_policy.rule")])

# tls_policy events: what the map answered to Postfix's smtp
tp = {g(e, "outpolicy.tls_policy.nexthop"): e for e in ev if g(e, "event.action") == "tls_policy"}
e = tp.get("[127.0.0.1]:%d" % P2, {})
eq("tls_policy event for [127.0.0.1]:P2", ["verify match=mx.outpolicy.test protocols=>=TLSv1.2",
   "[127.0.0.1]:%d" % P2, "[127.0.0.1]:%d" % P2],
   [g(e, "outpolicy.tls_policy.policy"), g(e, "outpolicy.tls_policy.rule"), g(e, "destination.address")])
e = tp.get("[localhost]:%d" % P2, {})
eq("tls_policy event for [localhost]:P2", ["encrypt protocols=>=TLSv1.2", "[localhost]:%d" % P2],
   [g(e, "outpolicy.tls_policy.policy"), g(e, "outpolicy.tls_policy.rule")])
e = tp.get("[127.0.0.1]:%d" % SINK, {})
eq("tls_policy event for the sink: default may", ["may", "default"],
   [g(e, "outpolicy.tls_policy.policy"), g(e, "outpolicy.tls_policy.rule")])

# bounce notifications (from=<>) are delivered too, without outpolicy events
dsn = [q for q, s in senders.items() if s == "" and q not in subs]
say(len(dsn) >= 2, "bounce notifications seen in the log (%d)" % len(dsn))
say(all(g(d, "outpolicy.submission") is None for q in dsn for d in by_qid.get(q, [])),
    "bounce notifications: delivery events without a submission join")

# -- summary, JSON: one object per domain, counts from the log
summ = {}
for l in open(T + "/summary.json"):
    if l.strip():
        o = json.loads(l)
        summ[g(o, "destination.domain")] = g(o, "outpolicy.summary")
want = {}
for l in log_deliv:
    d = want.setdefault(l["to"].split("@")[1], dict(sent=0, deferred=0, bounced=0, expired=0,
                                                   tls={"1.0": 0, "1.1": 0, "1.2": 0, "1.3": 0, "none": 0},
                                                   unv=0, n=0, delays=[]))
    d[l["status"]] += 1
    v = l["tls"]["version"][4:] if l["tls"] else "none"
    d["tls"][v] += 1
    d["unv"] += not (l["tls"] and l["tls"]["trust"] == "Verified")
    d["n"] += 1
    d["delays"].append(l["delay"])
eq("summary --json: the domains of the log", sorted(want), sorted(k for k in summ if k not in ("?", "")))
bad = []
for dom, w in want.items():
    s = summ.get(dom) or {}
    for k in ("sent", "deferred", "bounced"):
        if s.get(k) != w[k]:
            bad.append("%s %s want %d got %r" % (dom, k, w[k], s.get(k)))
    if s.get("tls") != w["tls"]:
        bad.append("%s tls want %r got %r" % (dom, w["tls"], s.get("tls")))
    if s.get("not_verified_percent") != round(100.0 * w["unv"] / w["n"], 1):
        bad.append("%s not_verified_percent want %.1f got %r" % (dom, 100.0 * w["unv"] / w["n"],
                                                                s.get("not_verified_percent")))
    dl = sorted(w["delays"])
    if abs((s.get("delay") or {}).get("max", -1) - round(max(dl), 3)) > 0.0005:
        bad.append("%s delay.max want %.3f got %r" % (dom, max(dl), s.get("delay")))
    dly = s.get("delay") or {}
    if not dly.get("p50", -1) <= dly.get("p95", -1) <= dly.get("max", -1):
        bad.append("%s delay p50 <= p95 <= max does not hold: %r" % (dom, dly))
    for p in ("p50", "p95"):
        true = dl[max(0, math.ceil({"p50": .5, "p95": .95}[p] * len(dl)) - 1)]
        got = (s.get("delay") or {}).get(p, -1)
        if not (true / 1.26 - 0.001 <= got <= true * 1.26 + 0.001):
            bad.append("%s delay.%s want ~%.3f got %r" % (dom, p, true, got))
say(not bad, "summary --json: per-domain sent/deferred/bounced, TLS versions, unverified share, delays (p50 <= p95 <= max)",
    "; ".join(bad))
eq("summary --json: sent.example", [3, 0, 0], [(summ.get("sent.example") or {}).get(k) for k in ("sent", "deferred", "bounced")])
eq("summary --json: bounce.example", [0, 0, 2], [(summ.get("bounce.example") or {}).get(k) for k in ("sent", "deferred", "bounced")])
eq("summary --json: tls.example TLS 1.3, all verified", [2, 2, 0.0],
   [(summ.get("tls.example") or {}).get("sent"), ((summ.get("tls.example") or {}).get("tls") or {}).get("1.3"),
    (summ.get("tls.example") or {}).get("not_verified_percent")])
eq("summary --json: eu.tls2.example trusted = not verified", 100.0,
   (summ.get("eu.tls2.example") or {}).get("not_verified_percent"))
dd = summ.get("defer.example") or {}
eq("summary --json: defer.example deferred = attempts", len([s for s in statuses("m-defer", "c@defer.example") if s == "deferred"]), dd.get("deferred"))
eq("summary --json: defer.example one message", 1, dd.get("messages"))
eq("summary --json: defer.example expired 1", 1, dd.get("expired"))

# -- summary, text: a header and one row per domain with the same counts
rows = {}
txt = open(T + "/summary.txt").read().splitlines()
say(bool(txt) and txt[0].split()[:6] == ["domain", "msgs", "sent", "defer", "bounce", "expire"],
    "summary: header line", txt[0] if txt else "empty")
for r in txt[1:]:
    f = r.split()
    rows[f[0]] = f
bad = []
for dom, s in summ.items():
    f = rows.get(dom)
    if not f or [int(x) for x in f[1:6]] != [s["messages"], s["sent"], s["deferred"], s["bounced"], s["expired"]]:
        bad.append("%s: %r" % (dom, f))
    elif f[6] != "/".join(str(s["tls"][k]) for k in ("1.0", "1.1", "1.2", "1.3", "none")):
        bad.append("%s tls %r" % (dom, f[6]))
    elif f[7] != "%.1f%%" % s["not_verified_percent"]:
        bad.append("%s unverified %r" % (dom, f[7]))
say(not bad and len(rows) == len(summ), "summary: one row per domain, same counts as --json", "; ".join(bad))
EOF

tr_py()
{
    "$IT_PY" "$T/check.py" "$T" "$LOG" "$IT_EVENTS" "$IT_SINK_PORT" "$REJ_PORT" "$P2" "$RUN" "$DEAD_PORT"
}

# tr_count - turn check.py's lines into harness results
tr_count()
{
    local line
    while IFS= read -r line; do
        case $line in
            "ok - "*) it_ok "${line#ok - }" ;;
            "FAIL - "*) it_fail "${line#FAIL - }" ;;
            *) it_fail "check.py: $line" ;;
        esac
    done
}

echo "# delivery events, joins, summary"
tr_count < <(tr_py 2>&1)

# the trace reads every line; unknown ones are counted as skipped
TOTAL=$(wc -l <"$LOG")
it_check "trace: stderr counts lines read, used, skipped" \
    grep -qE "^trace: $TOTAL lines read, [0-9]+ used, [0-9]+ skipped$" "$T/trace.err"

# the live follower saw the same deliveries, joined the same way
sleep 1
it_check "live --follow: still running" alive "$LIVE_PID"
it_stop_pid "$LIVE_PID" 5
unjoined()
{
    grep -c '"action":"delivery"' "$1" | tr -d '\n'
    printf ' deliveries, %s without submission join' "$(grep -vc '"submission":{' "$1")"
}
if cmp -s "$T/trace.json" "$T/live.json"; then
    it_ok "live --follow (buffered events): same delivery events and joins as the one-shot trace"
else
    it_fail "live --follow (buffered events): same delivery events and joins as the one-shot trace" \
        "one-shot: $(unjoined "$T/trace.json"); live: $(unjoined "$T/live.json")"
fi

# ------------------------------------------------------------ skipped lines

echo "# unknown lines are skipped and counted, never fatal"
{
    cat "$LOG"
    printf '\n'
    printf 'garbage without any structure\n'
    printf 'Nov 26 22:51:59 mx postfix-out/smtp[77]: 4AB12: to=<x@y.example>, relay=none, status=\n'
    printf 'Nov 26 22:51:59 mx postfix-out/smtp[77]: 4AB12: to=<x@y.example>, relay=none\n'
    printf 'Nov 26 22:51:59 mx postfix-out/smtp[77]: warning: %s\n' "$(head -c 20000 /dev/zero | tr '\0' x)"
    printf '\x01\x02\xff\xfe binary\n'
    printf '2026-11-26T22:51:59.1+00:00 mx kernel: something else\n'
} >"$T/noisy.log"
"$CTL" trace --events "$IT_EVENTS" "$T/noisy.log" >"$T/noisy.json" 2>"$T/noisy.err"
it_check_eq "noisy log: exit status" 0 "$?"
it_check "noisy log: same delivery events as the clean log" cmp -s "$T/trace.json" "$T/noisy.json"
skipped_of()
{
    sed -n 's/^trace: [0-9]* lines read, [0-9]* used, \([0-9]*\) skipped$/\1/p' "$1"
}
S0=$(skipped_of "$T/trace.err")
S1=$(skipped_of "$T/noisy.err")
it_check_eq "noisy log: 7 more lines skipped" "$((${S0:-0} + 7))" "${S1:-none}"
it_check_eq "noisy log: $((TOTAL + 7)) lines read" "$((TOTAL + 7))" \
    "$(sed -n 's/^trace: \([0-9]*\) lines read.*/\1/p' "$T/noisy.err")"

# ------------------------------------------------------------ stdin

echo "# a log on standard input"
"$CTL" trace --events "$IT_EVENTS" - <"$LOG" >"$T/stdin.json" 2>"$T/stdin.err"
it_check "stdin (-): same output as the file" cmp -s "$T/trace.json" "$T/stdin.json"
"$CTL" trace --events "$IT_EVENTS" <"$LOG" >"$T/stdin2.json" 2>/dev/null
it_check "stdin (no argument): same output as the file" cmp -s "$T/trace.json" "$T/stdin2.json"

# "journalctl -o cat" prints the bare message: no time, host or program
sed -E 's/^[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [^ ]+ [^ ]+\[[0-9]+\]: //' "$LOG" >"$T/bare.log"
"$CTL" trace --events "$IT_EVENTS" <"$T/bare.log" >"$T/bare.json" 2>"$T/bare.err"
"$IT_PY" - "$T/trace.json" "$T/bare.json" >"$T/bare.cmp" 2>&1 <<'EOF'
import json, sys
key = lambda e: (e["email"]["local_id"], e["email"]["to"]["address"], e["outpolicy"]["delivery"]["status"],
                 e["outpolicy"]["delivery"]["relay"], e["outpolicy"]["delivery"]["dsn"],
                 e["tls"].get("version"), e["outpolicy"]["delivery"].get("tls_trust"))
a = [key(json.loads(l)) for l in open(sys.argv[1])]
b = [key(json.loads(l)) for l in open(sys.argv[2])]
print("same" if a == b else "differ: %r" % [(x, y) for x, y in zip(a, b) if x != y][:3])
EOF
it_check_eq "stdin, bare messages (journalctl -o cat): same deliveries, statuses and TLS" \
    same "$(cat "$T/bare.cmp")"

# IPv6 relay, with the TLS line of the same process
{
    printf 'Nov 26 22:51:58 gw postfix-out/smtp[901]: Verified TLS connection established to mx.v6.example[2001:db8::25]:25: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)\n'
    printf 'Nov 26 22:51:59 gw postfix-out/smtp[902]: 7A1B2C3D4E: to=<z@v6.example>, relay=mx.v6.example[2001:db8::25]:25, delay=0.31, delays=0.01/0/0.2/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n'
    printf 'Nov 26 22:51:59 gw postfix-out/smtp[901]: 7A1B2C3D4F: to=<y@v6.example>, relay=mx.v6.example[2001:db8::25]:25, delay=1.5, delays=0.01/0/1.2/0.29, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n'
} | "$CTL" trace >"$T/v6.json" 2>/dev/null
V6=$("$IT_PY" -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
print(" ".join("%s/%s/%s/%s" % (e["destination"].get("ip"), e["destination"].get("port"),
      e["tls"].get("version", "-"), e["outpolicy"]["delivery"].get("tls_trust", "-")) for e in ev))' "$T/v6.json")
it_check_eq "IPv6 relay: ip, port; TLS joined only for the same process" \
    "2001:db8::25/25/-/- 2001:db8::25/25/1.2/verified" "$V6"

# a later session of the same smtp process to the same relay, refused
# before STARTTLS (no TLS line of its own), did not use TLS
{
    printf 'Nov 26 22:51:58 gw postfix-out/smtp[901]: Verified TLS connection established to mx.a.example[192.0.2.25]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n'
    printf 'Nov 26 22:51:59 gw postfix-out/smtp[901]: 7A1B2C3D4E: to=<z@a.example>, relay=mx.a.example[192.0.2.25]:25, delay=0.31, delays=0.01/0/0.2/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n'
    printf 'Nov 26 22:53:59 gw postfix-out/smtp[901]: 7A1B2C3D4F: to=<y@a.example>, relay=mx.a.example[192.0.2.25]:25, delay=1.5, delays=0.01/0/1.2/0.29, dsn=4.3.0, status=deferred (host mx.a.example[192.0.2.25] said: 421 4.3.0 busy (in reply to EHLO command))\n'
} | "$CTL" trace >"$T/stale.json" 2>/dev/null
STALE=$("$IT_PY" -c '
import json, sys
print(" ".join(str(json.loads(l)["tls"]["established"]).lower() for l in open(sys.argv[1])))' "$T/stale.json")
it_check_eq "TLS of an earlier session is not joined to a later one (same process, same relay)" \
    "true false" "$STALE"

# RFC 3339 time stamps (rsyslog's file format, journalctl -o short-iso):
# the same instant written with two UTC offsets, read in a zone that is
# neither: both are 22:51:59Z
{
    printf '2026-11-26T22:51:59.250+00:00 gw postfix-out/smtp[7]: 7A1B2C3D50: to=<x@a.example>, relay=mx.a.example[192.0.2.25]:25, delay=0.3, delays=0.01/0/0.2/0.09, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n'
    printf '2026-11-27T06:51:59.250+08:00 gw postfix-out/smtp[7]: 7A1B2C3D51: to=<y@a.example>, relay=mx.a.example[192.0.2.25]:25, delay=0.3, delays=0.01/0/0.2/0.09, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n'
} >"$T/rfc3339.log"
TS=$(TZ=America/New_York "$CTL" trace "$T/rfc3339.log" 2>/dev/null |
    sed -n 's/^{"@timestamp":"\([^".]*\)[^"]*Z".*/\1/p' | tr '\n' ' ')
it_check_eq "RFC 3339 time stamps: the UTC offset is honoured" \
    "2026-11-26T22:51:59 2026-11-26T22:51:59 " "$TS"

# address verification probes (status=deliverable/undeliverable) are not
# expired deliveries
{
    printf 'Nov 26 22:51:59 gw postfix-out/smtp[8]: 7A1B2C3D52: to=<p@probe.example>, relay=mx.probe.example[192.0.2.26]:25, delay=0.2, delays=0/0/0.1/0.1, dsn=2.1.5, status=deliverable (250 2.1.5 Ok)\n'
    printf 'Nov 26 22:51:59 gw postfix-out/smtp[8]: 7A1B2C3D53: to=<q@probe.example>, relay=mx.probe.example[192.0.2.26]:25, delay=0.2, delays=0/0/0.1/0.1, dsn=5.1.1, status=undeliverable (550 5.1.1 no such user)\n'
} | "$CTL" trace --summary --json >"$T/probe.json" 2>/dev/null
it_check_eq "summary: address probes are not counted as expired" 0 \
    "$("$IT_PY" -c 'import json,sys; print(sum(json.loads(l)["outpolicy"]["summary"]["expired"] for l in open(sys.argv[1])))' "$T/probe.json")"

# ------------------------------------------------------------ window

echo "# --since / --until"
"$CTL" trace --events "$IT_EVENTS" --since "$(($(date +%s) + 86400))" "$LOG" >"$T/since.json" 2>/dev/null
it_check_eq "--since tomorrow: no delivery events" 0 "$(grep -c . "$T/since.json")"
"$CTL" trace --events "$IT_EVENTS" --until 1 "$LOG" >"$T/until.json" 2>/dev/null
it_check_eq "--until 1970: no delivery events" 0 "$(grep -c . "$T/until.json")"
"$CTL" trace --events "$IT_EVENTS" --since "$(($(date +%s) - 3600))" "$LOG" >"$T/window.json" 2>/dev/null
it_check "--since an hour ago: all delivery events" cmp -s "$T/trace.json" "$T/window.json"
"$CTL" trace --follow --summary "$LOG" >/dev/null 2>&1
it_check_eq "--follow with --summary: usage error (64)" 64 "$?"

# ------------------------------------------------------------ follow

echo "# --follow: appended lines, a split line, a rotation"
FL=$T/follow.log
N=$(wc -l <"$LOG")
HALF=$((N / 2))
: >"$FL"
"$CTL" trace --follow --events "$IT_EVENTS" "$FL" >"$T/follow.json" 2>"$T/follow.err" &
FPID=$!
it_track_pid "$FPID"

# events_in FILE N - FILE has at least N lines
events_in()
{
    [ "$(grep -c . "$1" 2>/dev/null)" -ge "$2" ]
}
# deliveries_in FILE - delivery lines (and expired notices) in a log part
deliveries_in()
{
    grep -cE ': to=<[^>]*>, .* status=[a-z]+|: from=<.*status=expired' "$1"
}

head -n "$HALF" "$LOG" >"$T/part1.log"
tail -n +"$((HALF + 1))" "$LOG" >"$T/part2.log"
W1=$(deliveries_in "$T/part1.log")
WALL=$(grep -c . "$T/trace.json")
sleep 0.5
cat "$T/part1.log" >>"$FL"
it_check "follow: events for lines appended after start ($W1)" \
    it_wait_for 10 events_in "$T/follow.json" "$W1"

# rotation: the old file is renamed, a new one appears
mv "$FL" "$FL.1"
sleep 0.6
# the first delivery line of part 2 arrives in two writes
FIRST=$(grep -nE ': to=<[^>]*>, .* status=' "$T/part2.log" | head -n 1 | cut -d: -f1)
head -n "$((FIRST - 1))" "$T/part2.log" >"$FL"
LINE=$(sed -n "${FIRST}p" "$T/part2.log")
printf '%s' "${LINE:0:40}" >>"$FL"
sleep 0.7
printf '%s\n' "${LINE:40}" >>"$FL"
tail -n +"$((FIRST + 1))" "$T/part2.log" >>"$FL"
it_check "follow: events from the new file after rotation ($WALL in all)" \
    it_wait_for 10 events_in "$T/follow.json" "$WALL"
sleep 0.5
it_check "follow: still running (never exits on its own)" alive "$FPID"
it_stop_pid "$FPID" 5
it_check "follow: output identical to the one-shot trace (split line joined once)" \
    cmp -s "$T/trace.json" "$T/follow.json"

it_summary
