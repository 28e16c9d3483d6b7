#!/usr/bin/python3
"""tests/conformance/spf_suite.py - the RFC 7208 SPF test suite (openspf /
pyspf YAML) through libspf2 and outpolicy's DNS layer.

Each scenario's zonedata is converted to unbound local-data and served by
its own loopback unbound (names clash between scenarios: one server per
scenario, all started at once and loaded once).  The driver spf_eval (C,
pol_spf_eval on a pol_dns resolver) evaluates every test against the
scenario's server.  TIMEOUT entries cannot be expressed by a DNS server per
record type, so they become timeout rules inside the driver's DNS layer
(see spf_eval.c); tests whose evaluation hit such a rule are counted
separately.  Names a DNS server cannot hold (over 253 octets, labels over
63) are left out and reported.

Zone semantics follow the suite's driver (pyspf testspf.py): an SPF entry
is also served as TXT unless the name has a TXT entry; "TXT: NONE" serves
nothing and stops that duplication; a bare TIMEOUT makes every query type
not listed before it time out.

Usage: spf_suite.py --driver SPF_EVAL --suite YML --xfail LIST --work DIR
Prints a line per failing test, the expected failures and unexpected
passes, and "N passed, N failed".  Exit 1 on an unexpected failure (and on
an unexpected pass with --strict), 2 when the servers cannot be run.
Licence: BSD-2-Clause.
"""
import argparse
import os
import random
import socket
import struct
import subprocess
import sys
import time

import yaml

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16,
         "AAAA": 28, "SPF": 99}
SAFE = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
           b" !#$%&()*+,-./:<=>?@[]^_`{|}~")


def escape(data, safe=SAFE):
    """Zone-file text for bytes: unsafe octets as \\DDD."""
    return "".join(chr(c) if c in safe else "\\%03d" % c for c in data)


def dname(name):
    """A domain name for a zone file, or None when DNS cannot carry it."""
    raw = name.rstrip(".").encode("utf-8")
    labels = raw.split(b".")
    if len(raw) > 253 or any(len(l) == 0 or len(l) > 63 for l in labels):
        return None
    label_safe = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     b"0123456789-_*")
    return ".".join(escape(l, label_safe) for l in labels) + "."


def txt_rdata(value):
    """TXT rdata: a string, or a list of strings (several character-strings);
    strings over 255 octets are split as a publisher would."""
    strings = value if isinstance(value, list) else [value]
    chunks = []
    for s in strings:
        b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
        chunks.extend(b[i:i + 255] for i in range(0, max(len(b), 1), 255))
    if not chunks:
        return "\\# 0"              # a TXT record with no string at all
    return " ".join('"%s"' % escape(c, SAFE - set(b'"\\;')) for c in chunks)


def zone_of(scenario):
    """(local-data lines, timeout rules, names left out) of one scenario."""
    lines, rules, skipped = [], [], []
    for name, records in (scenario.get("zonedata") or {}).items():
        owner = dname(str(name))
        if owner is None:
            skipped.append(str(name))
            continue
        has_txt = any(isinstance(r, dict) and "TXT" in r for r in records)
        before = set()              # types served before a TIMEOUT
        timed_out = False
        for r in records:
            if r == "TIMEOUT":
                if not timed_out:
                    rules.append((str(name), sorted(before)))
                timed_out = True
                continue
            for rtype, value in r.items():
                if value == "NONE":
                    continue
                if not timed_out:
                    before.add(TYPES[rtype])
                types = [rtype]
                if rtype == "SPF" and not has_txt:
                    types.append("TXT")
                for t in types:
                    lines.append("%s 300 IN %s %s" % (owner, t,
                                                      rdata(rtype, value)))
    return lines, rules, skipped


def target(host):
    host = str(host)
    return host if host.endswith(".") else host + "."


def rdata(rtype, value):
    if rtype in ("TXT", "SPF"):
        return txt_rdata(value)
    if rtype == "MX":
        return "%d %s" % (int(value[0]), target(value[1]))
    if rtype in ("PTR", "CNAME", "NS"):
        return target(value)
    return str(value)


def free_port():
    for _ in range(200):
        p = random.randrange(20000, 60000)
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p
    raise RuntimeError("no free port")


def unbound_conf(port, workdir, lines):
    out = ["server:",
           "  interface: 127.0.0.1@%d" % port,
           "  port: %d" % port,
           "  do-ip6: no",
           "  do-daemonize: no",
           '  username: ""',
           '  chroot: ""',
           '  directory: "%s"' % workdir,
           '  pidfile: ""',
           "  use-syslog: no",
           '  logfile: ""',
           "  verbosity: 1",
           "  num-threads: 1",
           "  so-reuseport: no",
           '  module-config: "iterator"',
           "  minimal-responses: yes",
           "  rrset-roundrobin: no",
           '  local-zone: "." static']
    out += ["  local-data: '%s'" % l for l in lines]
    out += ["remote-control:", "  control-enable: no", ""]
    return "\n".join(out)


def answers(port):
    """The server at port answers a query (any rcode)."""
    qid = random.randrange(65536)
    pkt = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    pkt += b"\x05probe\x07invalid\x00" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    try:
        s.sendto(pkt, ("127.0.0.1", port))
        return struct.unpack(">H", s.recv(512)[:2])[0] == qid
    except OSError:
        return False
    finally:
        s.close()


def start_servers(scenarios, work):
    """One unbound per scenario; returns [(port, Popen)]."""
    servers = []
    for i, sc in enumerate(scenarios):
        lines, _, _ = zone_of(sc)
        d = os.path.join(work, "s%02d" % i)
        os.makedirs(d, exist_ok=True)
        port = free_port()
        conf = os.path.join(d, "unbound.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(unbound_conf(port, d, lines))
        log = open(os.path.join(d, "unbound.log"), "w")
        p = subprocess.Popen(["unbound", "-d", "-c", conf], stdout=log,
                             stderr=subprocess.STDOUT)
        servers.append((port, p))
    deadline = time.time() + 15
    for i, (port, p) in enumerate(servers):
        while not answers(port):
            if p.poll() is not None or time.time() > deadline:
                log = os.path.join(work, "s%02d" % i, "unbound.log")
                with open(log, encoding="utf-8", errors="replace") as f:
                    tail = f.read()[-600:]
                raise RuntimeError("unbound for scenario %d (%s) did not start:\n%s"
                                   % (i, scenarios[i]["description"], tail))
            time.sleep(0.05)
    return servers


def stop_servers(servers):
    for _, p in servers:
        if p.poll() is None:
            p.terminate()
    for _, p in servers:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def load_xfail(path):
    """{test name: reason} from the expected-failures list."""
    xfail = {}
    if not path or not os.path.exists(path):
        return xfail
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition(" ")
            xfail[name] = reason.strip()
    return xfail


def field(v):
    v = "" if v is None else str(v)
    return "-" if v == "" else v.replace("\t", " ")


def run(args):
    with open(args.suite, encoding="utf-8") as f:
        scenarios = [d for d in yaml.safe_load_all(f) if d]
    xfail = load_xfail(args.xfail)
    servers = start_servers(scenarios, args.work)
    try:
        commands, order = [], []
        for i, sc in enumerate(scenarios):
            _, rules, skipped = zone_of(sc)
            for name in skipped:
                print("note: scenario %d (%s): %.60s... cannot be a DNS name; left out"
                      % (i, sc["description"], name))
            commands.append("server\t%d" % servers[i][0])
            for name, keep in rules:
                commands.append("timeout\t%s\t%s" % (name, ",".join(map(str, keep)) or "-"))
            for tname, t in sc["tests"].items():
                commands.append("eval\t%s\t%s\t%s\t%s" % (tname, field(t.get("host")),
                                                          field(t.get("mailfrom")),
                                                          field(t.get("helo"))))
                order.append((i, tname, t))
        env = dict(os.environ, SPF_EVAL_TIMEOUT=str(args.timeout))
        t0 = time.time()
        proc = subprocess.run([args.driver], input="\n".join(commands) + "\n",
                              capture_output=True, text=True, env=env,
                              errors="replace", timeout=600)
        took = time.time() - t0
    finally:
        stop_servers(servers)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        print("driver failed with status %d" % proc.returncode)
        return 2
    got = {}
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) >= 6:
            got[parts[0]] = Outcome(parts[1], int(parts[2]), parts[3], parts[4],
                                    parts[5])
    return report(scenarios, order, got, xfail, took, args)


class Outcome:
    """What the driver printed for one test."""

    def __init__(self, result, simulated, raw, error, comment):
        self.result, self.simulated = result, simulated
        self.raw, self.error, self.comment = raw, error, comment

    def engine_maps_error(self):
        """libspf2 gave no result (SPF_RESULT_INVALID) for an error that is
        not a DNS failure, and the engine called it temperror."""
        return (self.result == "temperror" and self.raw == "invalid"
                and self.error not in ("-", DNS_ERROR) and not self.simulated)


DNS_ERROR = "DNS lookup failure"
DEFAULT_EXP = "Please see http://www.openspf.org/Why?"


def verdict(t, res):
    """None when Outcome res meets test t, else why.  The suite's driver sets
    the default explanation to "DEFAULT"; libspf2's default is DEFAULT_EXP."""
    want = t["result"] if isinstance(t["result"], list) else [t["result"]]
    if res.result not in want:
        return "got %s, want %s" % (res.result, "/".join(want))
    exp = t.get("explanation")
    if exp is None or res.result != "fail":
        return None
    exp = DEFAULT_EXP if exp == "DEFAULT" else str(exp)
    if not res.comment.startswith(exp):
        return "explanation %r, want %r" % (res.comment.split(" : Reason:")[0], exp)
    return None


def detail(res):
    """libspf2's own answer, when it tells more than the engine's result."""
    if res.engine_maps_error():
        return " [libspf2: no result, error %r: the engine answers temperror]" % res.error
    if res.error != "-" or res.raw != res.result:
        return " [libspf2: %s, error %r]" % (res.raw, res.error)
    return ""


def report(scenarios, order, got, xfail, took, args):
    passed = failed = xfailed = xpassed = mapped = 0
    sim_pass = sim_fail = 0
    missing = Outcome("missing", 0, "-", "-", "no output from the driver")
    for i, tname, t in order:
        res = got.get(tname, missing)
        why = verdict(t, res)
        sim = res.simulated > 0
        label = "%s/%s" % (scenarios[i]["description"], tname)
        if why is None and args.verbose:
            print("ok    %s: %s%s" % (label, res.result, detail(res)))
        if why is None:
            if tname in xfail:
                xpassed += 1
                print("XPASS %s: passes but is listed as expected failure (%s)"
                      % (label, xfail[tname]))
            passed += 1
            sim_pass += sim
            continue
        sim_fail += sim
        if tname in xfail:
            xfailed += 1
            print("xfail %s: %s [%s]" % (label, why, xfail[tname]))
            continue
        failed += 1
        mapped += res.engine_maps_error()
        print("FAIL  %s (spec %s, %s): %s%s%s" % (label, t.get("spec", "?"),
              t.get("mailfrom") or "helo " + str(t.get("helo")), why, detail(res),
              " (simulated DNS timeout)" if sim else ""))
    stale = sorted(set(xfail) - {n for _, n, _ in order})
    for name in stale:
        print("note: expected-failures entry %s names no test of the suite" % name)
    print("RFC 7208 suite: %d tests in %d scenarios, evaluated in %.1f s"
          % (len(order), len(scenarios), took))
    print("expected failures (libspf2 deviations, listed): %d; unexpected passes: %d"
          % (xfailed, xpassed))
    if mapped:
        print("of the failures, %d are libspf2 errors that pol_spf_eval reports as "
              "temperror (SPF_RESULT_INVALID with a non-DNS error)" % mapped)
    print("tests that met a TIMEOUT entry (simulated in the DNS layer, not served "
          "by unbound): %d passed, %d not" % (sim_pass, sim_fail))
    print("%d passed, %d failed" % (passed, failed))
    if failed or (args.strict and xpassed):
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--driver", required=True)
    ap.add_argument("--suite", required=True)
    ap.add_argument("--xfail")
    ap.add_argument("--work", required=True)
    ap.add_argument("--timeout", type=int, default=3)
    ap.add_argument("--strict", action="store_true",
                    help="an unexpected pass fails the run")
    ap.add_argument("--verbose", action="store_true",
                    help="a line for every test, with libspf2's own answer")
    ap.add_argument("--dump-zones", action="store_true",
                    help="print each scenario's local-data and timeout rules")
    args = ap.parse_args()
    if args.dump_zones:
        with open(args.suite, encoding="utf-8") as f:
            for i, sc in enumerate(d for d in yaml.safe_load_all(f) if d):
                lines, rules, skipped = zone_of(sc)
                print("# scenario %d: %s" % (i, sc["description"]))
                print("\n".join(lines))
                for name, keep in rules:
                    print("# TIMEOUT %s (answers only types %s)" % (name, keep))
                for name in skipped:
                    print("# left out: %s" % name)
        return 0
    try:
        return run(args)
    except RuntimeError as err:
        print("error: %s" % err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
