#!/usr/bin/python3
"""tests/reliability/relcheck.py - account for every message of a load phase.

usage: relcheck.py MAILLOG FROM_LINE MANIFEST PHASE EXPECT [FRONT_MAILLOG FRONT_FROM_LINE]

  MAILLOG        the gateway Postfix's log (the instance running outpolicyd)
  FROM_LINE      first line of MAILLOG written during the phase (1-based):
                 lines without a queue ID (milter warnings) are counted from
                 there; lines with one are matched by Message-ID
  MANIFEST       sinkreap.py's manifest.tsv
  PHASE          messages of the phase have Message-Ids ending "@*.PHASE.rel"
  EXPECT         signatures expected per From domain, e.g.
                 "a.example=a.example:rsa-sha256+a.example:ed25519-sha256;b.example="
                 (every message also needs an ARC set with i=1)
  FRONT_MAILLOG  a front Postfix that relays the phase's mail to the gateway
                 (crash phase): what it accepted, deferred and sent

Prints KEY=VALUE lines (numbers, or short lists) for the shell:
  accepted       distinct Message-Ids the gateway queued (qmgr "queue active")
  queued_twice   Message-Ids the gateway queued more than once
  sent           gateway queue files of the phase with status=sent
  not_sent       gateway queue files of the phase never logged status=sent
  (a queue file is one use of a queue ID: short IDs are reused)
  deferred bounced   gateway delivery lines with those statuses
  milter_reject  "milter-reject" lines (milter said 4xx/5xx), phase window
  milter_warn    "warning: milter ..." lines (milter unreachable, died), window
  reject_lines   smtpd "reject:" lines (any 4xx/5xx to the client), window
  sink sink_unique sink_dup   delivered dump files, distinct Message-Ids,
                 Message-Ids delivered more than once
  missing        accepted Message-Ids never delivered
  unexpected     delivered Message-Ids the gateway never accepted
  unsigned       delivered messages without every expected DKIM signature
  no_arc         delivered messages without an ARC set i=1
  bad_examples   up to 3 Message-Ids of the above, for the report
  expiry         RSA signature x= minus t= values: "VALUE:COUNT,..."
  front_accepted front_deferred front_sent   (with FRONT_MAILLOG)
"""
import collections
import re
import sys

maillog, from_line, manifest, phase, expect = sys.argv[1:6]
from_line = int(from_line)
front = sys.argv[6] if len(sys.argv) > 6 else None
suffix = ".%s.rel>" % phase

want = {}
for part in expect.split(";"):
    if "=" in part:
        dom, sigs = part.split("=", 1)
        want[dom] = set(s for s in sigs.split("+") if s)

QID = re.compile(r" postfix[^ ]*/([a-z]+)\[\d+\]: ([0-9A-Za-z]{6,}): (.*)$")


def parse(path, first):
    """instance -> msgid, set of active instances, sent instances, status
    counts, window counters.  Short queue IDs are reused once a queue file
    is gone, so each "cleanup ... message-id=" line starts a new instance
    "QID#n" of its queue ID and later lines belong to the newest one."""
    mid, active, sent = {}, set(), set()
    status = collections.Counter()
    window = collections.Counter()
    cur, uses = {}, collections.Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = QID.search(line)
            if m:
                prog, qid, rest = m.groups()
                if prog == "cleanup" and rest.startswith("message-id="):
                    uses[qid] += 1
                    cur[qid] = "%s#%d" % (qid, uses[qid])
                    mid[cur[qid]] = rest[len("message-id="):].strip()
                    continue
                key = cur.get(qid, qid + "#0")
                if prog == "qmgr" and "(queue active)" in rest:
                    active.add(key)
                elif "status=" in rest and " to=<" in " " + rest:
                    st = re.search(r"status=([a-z]+)", rest).group(1)
                    status[(key, st)] += 1
                    if st == "sent":
                        sent.add(key)
            if n >= first:
                if "milter-reject:" in line:
                    window["milter_reject"] += 1
                if re.search(r"warning: milter ", line):
                    window["milter_warn"] += 1
                if re.search(r"/smtpd\[\d+\]: .*reject: ", line):
                    window["reject_lines"] += 1
    return mid, active, sent, status, window


mid, active, sent, status, window = parse(maillog, from_line)
phase_q = {q for q, m in mid.items() if m.endswith(suffix)}
acc = collections.Counter(mid[q] for q in phase_q & active)
out = collections.OrderedDict()
out["accepted"] = len(acc)
out["queued_twice"] = sum(1 for c in acc.values() if c > 1)
out["sent"] = len(phase_q & sent)
out["not_sent"] = len((phase_q & active) - sent)
out["deferred"] = sum(c for (q, st), c in status.items() if q in phase_q and st == "deferred")
out["bounced"] = sum(c for (q, st), c in status.items() if q in phase_q and st == "bounced")
out["milter_reject"] = window["milter_reject"]
out["milter_warn"] = window["milter_warn"]
out["reject_lines"] = window["reject_lines"]

seen = collections.Counter()
unsigned, no_arc, bad = 0, 0, []
expiry = collections.Counter()
with open(manifest, encoding="utf-8", errors="replace") as f:
    for line in f:
        p = line.rstrip("\n").split("\t")
        if len(p) < 8 or not p[2].endswith(suffix):
            continue
        _, _, msgid, _, frm, dkim, seals, arc_i = p[:8]
        seen[msgid] += 1
        have = set()
        for s in dkim.split(","):
            if s == "-":
                continue
            d, a, xt = s.split(":")
            have.add("%s:%s" % (d, a))
            if a == "rsa-sha256":
                expiry[xt] += 1
        if not want.get(frm, set()) <= have or frm not in want:
            unsigned += 1
            if len(bad) < 3:
                bad.append("%s(from %s dkim %s)" % (msgid, frm, dkim))
        if int(seals) < 1 or arc_i != "1":
            no_arc += 1
            if len(bad) < 3:
                bad.append("%s(arc seals %s i=%s)" % (msgid, seals, arc_i))
out["sink"] = sum(seen.values())
out["sink_unique"] = len(seen)
out["sink_dup"] = sum(1 for c in seen.values() if c > 1)
out["missing"] = len(set(acc) - set(seen))
out["unexpected"] = len(set(seen) - set(acc))
out["unsigned"] = unsigned
out["no_arc"] = no_arc
for m in sorted(set(acc) - set(seen))[:2]:
    bad.append("%s(missing)" % m)
for m in [m for m, c in seen.items() if c > 1][:2]:
    bad.append("%s(delivered %d times)" % (m, seen[m]))
out["bad_examples"] = " ".join(bad) or "-"
out["expiry"] = ",".join("%s:%d" % kv for kv in sorted(expiry.items())) or "-"

if front:
    fmid, factive, fsent, fstatus, _ = parse(front, 1)
    fq = {q for q, m in fmid.items() if m.endswith(suffix)}
    out["front_accepted"] = len({fmid[q] for q in fq & factive})
    out["front_deferred"] = sum(c for (q, st), c in fstatus.items() if q in fq and st == "deferred")
    out["front_sent"] = len(fq & fsent)

for k, v in out.items():
    print("%s=%s" % (k, v))
