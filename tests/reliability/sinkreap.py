#!/usr/bin/python3
"""tests/reliability/sinkreap.py - keep a load test's sink small.

smtp-sink -d writes one file per mail transaction.  For tens of thousands
of messages (up to 5 MB each) that is gigabytes, so this process follows
the dump directory: every file smtp-sink has finished (no longer open by
it) is summarised in one manifest line, then deleted, except a bounded
sample that is moved aside for signature verification.

usage: sinkreap.py SINKDIR SINK_PID OUTDIR WATCH_PID [SAMPLE_FIRST] [SAMPLE_EVERY]

  OUTDIR/manifest.tsv  one line per delivered message, tab-separated:
      file size message-id tag from-domain dkim arc-seals arc-i
    tag      the Message-Id's domain (smtp-source -M names each batch)
    dkim     "d:a:x-t" per DKIM-Signature, comma-separated ("-" if none;
             x-t is "-" without x=)
    arc-seals number of ARC-Seal fields; arc-i their highest i=
  OUTDIR/samples/      kept messages (the first SAMPLE_FIRST (2) of every
                       tag, then every SAMPLE_EVERY-th (500) message)
  OUTDIR/stats         "files N bytes B peak_bytes P peak_files F" (rewritten
                       at each scan)

Stops when OUTDIR/stop exists and a final scan found nothing left, when
WATCH_PID is gone, or after 6 h.  Python 3 standard library only.
"""
import os
import re
import sys
import time

sinkdir, sink_pid, outdir, watch = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
first = int(sys.argv[5]) if len(sys.argv) > 5 else 2
every = int(sys.argv[6]) if len(sys.argv) > 6 else 500
samples = os.path.join(outdir, "samples")
os.makedirs(samples, exist_ok=True)
manifest = open(os.path.join(outdir, "manifest.tsv"), "a", buffering=1)
per_tag = {}
total = 0
nbytes = 0
peak_bytes = 0
peak_files = 0
HEAD_MAX = 1 << 20          # headers are read up to 1 MB into a file


def open_by_sink():
    """Paths smtp-sink holds open (transactions still in progress)."""
    out = set()
    d = "/proc/%d/fd" % sink_pid
    try:
        for fd in os.listdir(d):
            try:
                out.add(os.readlink(os.path.join(d, fd)))
            except OSError:
                pass
    except OSError:
        pass
    return out


def unfold(lines):
    """(name, value) of each header field, folded lines joined."""
    fields = []
    for line in lines:
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += line
        elif ":" in line:
            name, value = line.split(":", 1)
            fields.append([name.strip().lower(), value.strip()])
    return fields


def tags(value):
    out = {}
    for part in value.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = re.sub(r"\s+", "", v)
    return out


def summarise(path):
    """Manifest fields of one dump file, or None if it is not complete."""
    with open(path, "rb") as f:
        head = f.read(HEAD_MAX).decode("latin-1")
    lines = head.split("\n")
    # smtp-sink's own records, then its 3-line Received:, then the message
    i = 0
    while i < len(lines) and re.match(r"X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args): ", lines[i]):
        i += 1
    if i >= len(lines) or not lines[i].startswith("Received: "):
        return None
    i += 3
    hdr = []
    while i < len(lines) and lines[i] != "":
        hdr.append(lines[i])
        i += 1
    if i >= len(lines):
        return None             # no end of header within HEAD_MAX
    msgid, frm, dkim, seals, arc_i = "-", "-", [], 0, 0
    for name, value in unfold(hdr):
        if name == "message-id" and msgid == "-":
            msgid = re.sub(r"\s+", "", value)
        elif name == "from" and frm == "-":
            m = re.search(r"@([A-Za-z0-9.-]+)", value)
            frm = m.group(1).lower() if m else "?"
        elif name == "dkim-signature":
            t = tags(value)
            xt = "-"
            if "x" in t and "t" in t:
                try:
                    xt = str(int(t["x"]) - int(t["t"]))
                except ValueError:
                    xt = "?"
            dkim.append("%s:%s:%s" % (t.get("d", "?"), t.get("a", "?"), xt))
        elif name == "arc-seal":
            seals += 1
            try:
                arc_i = max(arc_i, int(tags(value).get("i", "0")))
            except ValueError:
                pass
    tag = msgid.rsplit("@", 1)[1].rstrip(">") if "@" in msgid else "-"
    return [msgid, tag, frm, ",".join(dkim) or "-", str(seals), str(arc_i)]


def scan():
    global total, nbytes, peak_bytes, peak_files
    try:
        names = os.listdir(sinkdir)
    except OSError:
        return 0
    busy = open_by_sink()
    size_now = 0
    paths = []
    for n in names:
        p = os.path.join(sinkdir, n)
        try:
            size_now += os.path.getsize(p)
        except OSError:
            continue
        paths.append(p)
    peak_bytes = max(peak_bytes, size_now)
    peak_files = max(peak_files, len(paths))
    done = 0
    for p in sorted(paths):
        if p in busy:
            continue
        try:
            size = os.path.getsize(p)
            fields = summarise(p)
        except OSError:
            continue
        if fields is None:
            # closed but not a complete transaction (aborted): record it
            fields = ["-", "incomplete", "-", "-", "0", "0"]
        tag = fields[1]
        k = per_tag.get(tag, 0)
        per_tag[tag] = k + 1
        total += 1
        nbytes += size
        keep = k < first or total % every == 0
        name = os.path.basename(p)
        manifest.write("\t".join([name, str(size)] + fields) + "\n")
        if keep:
            os.rename(p, os.path.join(samples, name))
        else:
            os.unlink(p)
        done += 1
    with open(os.path.join(outdir, "stats.tmp"), "w") as f:
        f.write("files %d bytes %d peak_bytes %d peak_files %d\n"
                % (total, nbytes, peak_bytes, peak_files))
    os.replace(os.path.join(outdir, "stats.tmp"), os.path.join(outdir, "stats"))
    return done


t0 = time.monotonic()
stop = os.path.join(outdir, "stop")
while time.monotonic() - t0 < 6 * 3600:
    try:
        os.kill(watch, 0)
    except ProcessLookupError:
        break
    n = scan()
    if os.path.exists(stop) and n == 0:
        scan()
        break
    if n == 0:
        time.sleep(0.2)
manifest.close()
