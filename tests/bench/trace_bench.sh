#!/usr/bin/env bash
# tests/bench/trace_bench.sh - throughput and memory of "outpolicyctl trace"
# on a synthetic Postfix log (not a test: nothing is asserted on timing).
#
# Generates a realistic log of LINES lines (default 1,000,000): submission
# (smtpd connect, TLS, client=, disconnect), cleanup message-id=, qmgr
# from= and removed, smtp TLS and delivery lines (sent, deferred with
# retries later in the log, bounced with the bounce daemon's notice, a few
# qmgr "status=expired"), anvil/scache noise and warnings; 200 destination
# domains with a skewed mix, several recipients per message, 40 smtp and 8
# smtpd processes interleaved, and an outpolicy events file with the
# submission and destination events of every message.  Then, on that log:
#
#   outpolicyctl trace --events EVENTS LOG >/dev/null        (delivery events)
#   outpolicyctl trace --summary LOG >/dev/null              (per-domain table)
#
# each RUNS times (default 3): lines/s (median wall-clock time) and peak
# RSS (/usr/bin/time -v, Debian package "time").  Memory: trace --summary and
# trace are also run on logs of LINES/10 and 2*LINES lines, to show that the
# peak RSS stops growing with the log.  Ends with a markdown snippet for
# BENCHMARKS.md.
#
# Usage: OUTPOLICY_BUILD=/path/to/build tests/bench/trace_bench.sh
# Environment: OUTPOLICY_BUILD (default the repo root), LINES, RUNS,
# BENCH_DIR (scratch, default a mktemp dir, removed unless KEEP=1), SEED.

set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${OUTPOLICY_BUILD:-$SRC}
CTL=$BUILD/ctl/outpolicyctl
LINES=${LINES:-1000000}
RUNS=${RUNS:-3}
SEED=${SEED:-7}
TIME=/usr/bin/time

[ -x "$CTL" ] || { echo "no $CTL (set OUTPOLICY_BUILD)" >&2; exit 2; }
[ -x "$TIME" ] || { echo "no $TIME (Debian: apt-get install time)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "no python3" >&2; exit 2; }

DIR=${BENCH_DIR:-$(mktemp -d /tmp/trace-bench.XXXXXX)}
mkdir -p "$DIR"
cleanup()
{
    if [ "${KEEP:-0}" = 1 ] || [ -n "${BENCH_DIR:-}" ]; then
        echo "kept $DIR" >&2
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT

# ------------------------------------------------------------ the log

cat >"$DIR/gen.py" <<'EOF'
"""Synthetic Postfix log + outpolicy events: gen.py LINES SEED LOG EVENTS"""
import random
import sys
import time

nlines, seed, logpath, evpath = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = random.Random(seed)
HOST = "gw"
NDOM = 200
DOMAINS = ["d%03d.example" % i for i in range(NDOM)]
WEIGHTS = [1.0 / (i + 1) for i in range(NDOM)]            # skewed: a few big ones
PROFILE = {}
for i, d in enumerate(DOMAINS):
    r = rng.random()
    tls = ("TLSv1.3" if r < 0.70 else "TLSv1.2" if r < 0.88 else None)
    trust = rng.choice(["Verified", "Trusted", "Untrusted", "Untrusted"]) if tls else None
    PROFILE[d] = dict(tls=tls, trust=trust, ip="198.51.%d.%d" % (i // 250, i % 250 + 1),
                      defer=0.3 if i % 37 == 5 else 0.01, bounce=0.08 if i % 23 == 3 else 0.005)
CIPHER = {"TLSv1.3": "TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature "
                     "RSA-PSS (2048 bits) server-digest SHA256",
          "TLSv1.2": "ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)"}
SMTP = [2000 + i for i in range(40)]
SMTPD = [1000 + i for i in range(8)]
t0 = time.time() - 2 * 86400
clock = [t0]
qn = [0x10000]


def qid():
    qn[0] += 1
    return "%X%05X" % (rng.randrange(0x1000, 0xFFFF), qn[0])


def delays(conn):
    a, b, c, d = rng.random() * 0.05, rng.random() * 0.01, conn, rng.random() * 0.3
    return "delay=%.2g, delays=%.2g/%.2g/%.2g/%.2g" % (a + b + c + d, a, b, c, d)


def message(ev):
    """One message's lines, in order; ev collects its outpolicy events."""
    q = qid()
    spid = rng.choice(SMTPD)
    cip = "10.1.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))
    user = "user%d" % rng.randrange(5000)
    sender = "%s@org.example" % user
    mid = "<%s.%d@org.example>" % (q, rng.randrange(10 ** 6))
    n = rng.choice([1, 1, 1, 1, 2, 2, 3, 5])
    rcpts = []
    for d in rng.choices(DOMAINS, WEIGHTS, k=n):
        rcpts.append("r%d@%s" % (rng.randrange(10 ** 5), d))
    yield "postfix/smtpd[%d]: connect from client[%s]" % (spid, cip)
    yield ("postfix/smtpd[%d]: Anonymous TLS connection established from client[%s]: TLSv1.3 with "
           "cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" % (spid, cip))
    yield "postfix/smtpd[%d]: %s: client=client[%s], sasl_method=PLAIN, sasl_username=%s" % (spid, q, cip, user)
    yield "postfix/cleanup[%d]: %s: message-id=%s" % (3000 + rng.randrange(4), q, mid)
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(clock[0]))
    to = ",".join('"%s"' % r for r in rcpts)
    ev.append('{"@timestamp":"%s","event":{"kind":"event","category":["email"],"action":"submission",'
              '"outcome":"success"},"email":{"direction":"outbound","local_id":"%s","message_id":"%s",'
              '"from":{"address":["%s"]},"to":{"address":[%s]}},"source":{"ip":"%s"},"user":{"name":"%s"},'
              '"tls":{"established":true,"version":"1.3","version_protocol":"tls","cipher":"TLS_AES_256_GCM_SHA384"},'
              '"outpolicy":{"schema":1,"mode":"enforce","stage":"eom","envelope":{"from":"%s"},'
              '"verdict":{"action":"accept","check":"","reason":"","applied":true},"tls_required":"absent",'
              '"dkim":{"result":"signed","signatures":[{"domain":"org.example","selector":"s1",'
              '"algorithm":"rsa-sha256"}]}}}' % (ts, q, mid, sender, to, cip, user, sender))
    bydom = {}
    for r in rcpts:
        bydom.setdefault(r.split("@")[1], []).append(r)
    for d, rs in bydom.items():
        ev.append('{"@timestamp":"%s","event":{"kind":"event","category":["email"],"action":"destination"},'
                  '"email":{"local_id":"%s","message_id":"%s","to":{"address":[%s]}},"destination":{"domain":"%s"},'
                  '"outpolicy":{"schema":1,"envelope_from":"%s","recipient_count":%d,"tls_policy":'
                  '{"policy":"encrypt protocols=>=TLSv1.2","rule":"default"},"verdict":"accept",'
                  '"dkim":{"result":"signed","signatures":[]}}}'
                  % (ts, q, mid, ",".join('"%s"' % r for r in rs), d, sender, len(rs)))
    yield "postfix/qmgr[900]: %s: from=<%s>, size=%d, nrcpt=%d (queue active)" % (q, sender, rng.randrange(2000, 90000), n)
    yield "postfix/smtpd[%d]: disconnect from client[%s] ehlo=2 starttls=1 auth=1 mail=1 rcpt=%d data=1 quit=1 commands=%d" % (
        spid, cip, n, 7 + n)
    pending = dict(bydom)
    attempt = 0
    while pending:
        attempt += 1
        for d, rs in list(pending.items()):
            p = PROFILE[d]
            pid = rng.choice(SMTP)
            relay = "mx.%s[%s]:25" % (d, p["ip"])
            if rng.random() < p["defer"] and attempt < 4:
                for r in rs:
                    yield ("postfix/smtp[%d]: %s: to=<%s>, relay=none, %s, dsn=4.4.1, status=deferred "
                           "(connect to %s: Connection timed out)" % (pid, q, r, delays(30.0), relay))
                continue
            if p["tls"]:
                yield "postfix/smtp[%d]: %s TLS connection established to %s: %s with cipher %s" % (
                    pid, p["trust"], relay, p["tls"], CIPHER[p["tls"]])
            for r in rs:
                if rng.random() < p["bounce"]:
                    yield ("postfix/smtp[%d]: %s: to=<%s>, relay=%s, %s, dsn=5.1.1, status=bounced (host %s said: "
                           "550 5.1.1 <%s>: Recipient address rejected: User unknown (in reply to RCPT TO command))"
                           % (pid, q, r, relay, delays(0.1), relay.rsplit(":", 1)[0], r))
                    yield "postfix/bounce[%d]: %s: sender non-delivery notification: %s" % (4000 + rng.randrange(3), q, qid())
                else:
                    yield ("postfix/smtp[%d]: %s: to=<%s>, relay=%s, %s, dsn=2.0.0, status=sent "
                           "(250 2.0.0 Ok: queued as %s)" % (pid, q, r, relay, delays(0.1), qid()))
            del pending[d]
        if pending:
            if attempt >= 3 and rng.random() < 0.3:
                yield "postfix/qmgr[900]: %s: from=<%s>, status=expired, returned to sender" % (q, sender)
                break
            yield "postfix/qmgr[900]: %s: from=<%s>, size=%d, nrcpt=%d (queue active)" % (q, sender, 3000, len(pending))
    yield "postfix/qmgr[900]: %s: removed" % q


NOISE = ["postfix/anvil[950]: statistics: max connection rate 12/60s for (smtp:10.1.2.3) at Nov 26 22:01:01",
         "postfix/scache[951]: statistics: start interval Nov 26 22:01:01",
         "postfix/smtpd[1003]: warning: hostname client does not resolve to address 10.1.9.9",
         "postfix/smtp[2011]: warning: TLS library problem: error:0A000126:SSL routines::unexpected eof while reading"]
out = open(logpath, "w")
evout = open(evpath, "w")
active, written, ev = [], 0, []
while written < nlines:
    while len(active) < 60:
        active.append(message(ev))
    if rng.random() < 0.01:
        line = rng.choice(NOISE)
    else:
        g = active[rng.randrange(len(active))]
        try:
            line = next(g)
        except StopIteration:
            active.remove(g)
            continue
    clock[0] += 0.004
    out.write("%s %s %s\n" % (time.strftime("%b %d %H:%M:%S", time.localtime(clock[0])), HOST, line))
    written += 1
    if len(ev) > 1000:
        evout.write("\n".join(ev) + "\n")
        ev.clear()
if ev:
    evout.write("\n".join(ev) + "\n")
EOF

gen()
{
    python3 "$DIR/gen.py" "$1" "$SEED" "$DIR/log.$1" "$DIR/events.$1" ||
        { echo "generator failed" >&2; exit 2; }
}

# run NAME N ARGS... - one timed run of outpolicyctl trace ARGS on a log of N
# lines; appends "NAME N seconds maxrss_kb" to $DIR/results
run()
{
    local name=$1 n=$2 s kb t0 t1
    shift 2
    t0=$(date +%s%N)
    "$TIME" -v -o "$DIR/time.out" "$CTL" trace "$@" >/dev/null 2>"$DIR/trace.err" ||
        { echo "outpolicyctl trace $* failed: $(tail -n 2 "$DIR/trace.err")" >&2; exit 1; }
    t1=$(date +%s%N)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$DIR/time.out")
    echo "$name $n $s $kb" >>"$DIR/results"
}

# median NAME N - median seconds of NAME's runs on N lines
median()
{
    awk -v n="$1" -v l="$2" '$1 == n && $2 == l { print $3 }' "$DIR/results" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# rss NAME N - largest peak RSS (MB) of NAME's runs on N lines
rss()
{
    awk -v n="$1" -v l="$2" '$1 == n && $2 == l && $4 > m { m = $4 } END { printf "%.1f", m / 1024 }' "$DIR/results"
}

SMALL=$((LINES / 10))
BIG=$((LINES * 2))
: >"$DIR/results"
for n in "$SMALL" "$LINES" "$BIG"; do
    echo "generating $n lines ..." >&2
    gen "$n"
done
LOGSIZE=$(du -m "$DIR/log.$LINES" | cut -f1)
EVN=$(wc -l <"$DIR/events.$LINES")

# sanity: the trace sees every delivery line of the log
# (an expired message gives one event per recipient last deferred, so at
# least one per status=expired line)
WANT=$(grep -cE ': to=<[^>]*>, .* status=(sent|deferred|bounced) |: from=<.*status=expired' "$DIR/log.$LINES")
"$CTL" trace --events "$DIR/events.$LINES" "$DIR/log.$LINES" >"$DIR/sanity.json" 2>"$DIR/sanity.err"
GOT=$(grep -c '"action":"delivery"' "$DIR/sanity.json")
# every message has a submission event: how many delivery events got it
JOINED=$(grep -c '"submission":{' "$DIR/sanity.json")
rm -f "$DIR/sanity.json"
echo "sanity: $WANT delivery lines in the log, $GOT delivery events; $(cat "$DIR/sanity.err")" >&2
[ "$GOT" -ge "$WANT" ] || { echo "trace missed delivery lines" >&2; exit 1; }

echo "timing ($RUNS runs each) ..." >&2
for ((i = 0; i < RUNS; i++)); do
    run trace "$LINES" --events "$DIR/events.$LINES" "$DIR/log.$LINES"
    run summary "$LINES" --summary "$DIR/log.$LINES"
done
for n in "$SMALL" "$BIG"; do
    run trace "$n" --events "$DIR/events.$n" "$DIR/log.$n"
    run summary "$n" --summary "$DIR/log.$n"
done

T_TRACE=$(median trace "$LINES")
T_SUMM=$(median summary "$LINES")
rate()
{
    awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "n/a" }'
}
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
cat <<EOF

### outpolicyctl trace: synthetic Postfix log

Command (from the repository root, on a build in \`\$OUTPOLICY_BUILD\`):

    OUTPOLICY_BUILD=$BUILD LINES=$LINES RUNS=$RUNS SEED=$SEED tests/bench/trace_bench.sh

Machine: ${CPU:-unknown CPU}, $(nproc) CPUs; outpolicyctl built with configure's default CFLAGS (-g -O2).
Log: $LINES lines ($LOGSIZE MB; 200 destination domains, sent/deferred/bounced/expired,
TLS 1.3/1.2/none, 40 smtp + 8 smtpd processes interleaved) and $EVN outpolicy events
(submission + destination events of every message).  Delivery events: $GOT, of which
$JOINED joined with their message's submission event.

| run | lines | median of $RUNS | lines/s | peak RSS |
| --- | ---: | ---: | ---: | ---: |
| \`trace --events EVENTS LOG >/dev/null\` | $LINES | ${T_TRACE} s | $(rate "$LINES" "$T_TRACE") | $(rss trace "$LINES") MB |
| \`trace --summary LOG >/dev/null\` | $LINES | ${T_SUMM} s | $(rate "$LINES" "$T_SUMM") | $(rss summary "$LINES") MB |

Peak RSS by log size (bounded: fixed-size tables whose entries are overwritten when full):

| lines | \`trace --events\` | \`trace --summary\` |
| ---: | ---: | ---: |
| $SMALL | $(rss trace "$SMALL") MB | $(rss summary "$SMALL") MB |
| $LINES | $(rss trace "$LINES") MB | $(rss summary "$LINES") MB |
| $BIG | $(rss trace "$BIG") MB | $(rss summary "$BIG") MB |
EOF
