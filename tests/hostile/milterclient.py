#!/usr/bin/python3
"""tests/hostile/milterclient.py - a small milter-protocol client (the MTA
side of libmilter's protocol, version 6) that sends outpolicyd hostile
input directly on its milter socket, byte for byte, including what no MTA
would send: half packets, bogus lengths, unknown commands, commands out of
order.  Standard library only.

Usage:
    milterclient.py SOCKET list                 the case names
    milterclient.py SOCKET [--nr] CASE...       run cases, one JSON line each;
                                                --nr offers what Postfix offers:
                                                no-reply steps, no DATA/unknown
    milterclient.py SOCKET idle N SECONDS       hold N connections that never
                                                send; prints "ready N", then
                                                "closed K" after SECONDS
    milterclient.py SOCKET stall N SECONDS      N connections that stop in the
                                                middle of a header packet, held
                                                for SECONDS; "ready N", then
                                                "closed K"
    milterclient.py SOCKET loop N               N well-formed messages on one
                                                connection (memory growth)

SOCKET is unix:/path or inet:PORT@HOST.  Each case prints one line
    {"case": NAME, "result": R, "reply": TEXT, "edits": [...], "pflags": N, "ms": N}
where R is what the filter finally answered: "accept", "continue",
"reject", "tempfail", "discard", "replycode" (then "reply" holds the SMTP
reply it set), "closed" (the filter closed the connection), "timeout"
(no answer within the case's limit, 20 s unless said), or "sent" (a case
that only sends and closes).  "edits" lists the header fields the filter
added or inserted at end of message; "pflags" the protocol flags it agreed
to at option negotiation (0 if there was none).  A case that cannot even connect
prints result "noconnect".  Exit status 0 unless a usage error.
"""
import json
import socket
import struct
import sys
import time

# commands (MTA -> filter)
C_ABORT, C_BODY, C_CONNECT, C_MACRO, C_EOM = b"A", b"B", b"C", b"D", b"E"
C_HELO, C_HEADER, C_MAIL, C_EOH, C_OPTNEG = b"H", b"L", b"M", b"N", b"O"
C_QUIT, C_RCPT, C_DATA = b"Q", b"R", b"T"
# replies (filter -> MTA)
FINAL = {b"a": "accept", b"c": "continue", b"r": "reject", b"t": "tempfail",
         b"d": "discard", b"y": "replycode", b"f": "conn_fail", b"4": "shutdown",
         b"s": "skip"}
SMFIP_HDR_LEADSPC = 0x00100000
SMFIP_NR_HDR, SMFIP_NOUNKNOWN, SMFIP_NODATA = 0x80, 0x100, 0x200
SMFIP_NR_CONN, SMFIP_NR_HELO, SMFIP_NR_MAIL = 0x1000, 0x2000, 0x4000
SMFIP_NR_RCPT, SMFIP_NR_DATA, SMFIP_NR_EOH = 0x8000, 0x10000, 0x40000
SMFIP_NR_BODY = 0x80000
# what negotiate() offers; --nr adds the no-reply steps, as Postfix does
OFFER = SMFIP_HDR_LEADSPC
OFFER_NR = (SMFIP_HDR_LEADSPC | SMFIP_NR_HDR | SMFIP_NOUNKNOWN | SMFIP_NODATA
            | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT
            | SMFIP_NR_DATA | SMFIP_NR_EOH | SMFIP_NR_BODY)
ACTIONS = 0x1FF                    # everything, incl. SETSYMLIST
TIMEOUT = 20.0


class Closed(Exception):
    pass


class Conn:
    def __init__(self, spec, timeout=TIMEOUT):
        if spec.startswith("unix:") or spec.startswith("local:"):
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            addr = spec.split(":", 1)[1]
        else:
            port, host = spec.split(":", 1)[1].split("@")
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            addr = (host, int(port))
        self.s.settimeout(timeout)
        self.s.connect(addr)
        self.edits = []
        self.pflags = 0        # protocol flags agreed at option negotiation

    def raw(self, data):
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Closed() from e

    def send(self, cmd, data=b""):
        self.raw(struct.pack(">I", len(data) + 1) + cmd + data)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                d = self.s.recv(n - len(buf))
            except ConnectionResetError as e:
                raise Closed() from e
            if not d:
                raise Closed()
            buf += d
        return buf

    def packet(self):
        n = struct.unpack(">I", self.recv_exact(4))[0]
        body = self.recv_exact(n)
        return body[:1], body[1:]

    def reply(self):
        """Read until a final answer; header edits are collected."""
        while True:
            cmd, data = self.packet()
            if cmd in (b"h", b"i", b"m"):
                if cmd == b"h":
                    name = data.split(b"\0")[0]
                else:
                    name = data[4:].split(b"\0")[0]
                self.edits.append(cmd.decode() + ":" + name.decode("latin-1"))
                continue
            if cmd in (b"p", b"q", b"+", b"-", b"e", b"2", b"b"):
                if cmd == b"q":
                    self.edits.append("quarantine")
                continue
            if cmd in FINAL:
                return FINAL[cmd], data.rstrip(b"\0").decode("latin-1")
            return "unknown:" + cmd.decode("latin-1"), ""

    def cmd(self, cmd, data=b""):
        self.send(cmd, data)
        return self.reply()

    def negotiate(self, proto=None):
        self.send(C_OPTNEG, struct.pack(">III", 6, ACTIONS, OFFER if proto is None else proto))
        cmd, data = self.packet()
        if cmd != C_OPTNEG:
            raise Closed()
        agreed = struct.unpack(">III", data[:12])
        self.pflags = agreed[2]
        return agreed

    def step(self, cmd, data, nr_bit):
        """a protocol step: the filter's answer, or "continue" without
        reading when it agreed not to answer this step"""
        self.send(cmd, data)
        if self.pflags & nr_bit:
            return ("continue", "")
        return self.reply()

    def macros(self, stage, pairs):
        self.send(C_MACRO, stage + b"".join(k + b"\0" + v + b"\0" for k, v in pairs))

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def z(s):
    return (s if isinstance(s, bytes) else s.encode()) + b"\0"


class Msg:
    """A message transaction; each step stops at a final non-continue."""

    def __init__(self, c, client=b"127.0.0.2", qid=b"HOSTILE1"):
        self.c, self.client, self.qid = c, client, qid

    def session(self, helo=b"client.hostile.test"):
        c = self.c
        c.negotiate()
        c.macros(C_CONNECT, [(b"j", b"mx.hostile.test"), (b"{daemon_name}", b"hostile")])
        r = c.step(C_CONNECT, z(b"client.hostile.test") + b"4" + struct.pack(">H", 40000)
                   + z(self.client), SMFIP_NR_CONN)
        if r[0] != "continue":
            return r
        c.macros(C_HELO, [(b"{tls_version}", b"TLSv1.3"), (b"{cipher}", b"TLS_AES_256_GCM_SHA384"),
                          (b"{cipher_bits}", b"256")])
        return c.step(C_HELO, z(helo), SMFIP_NR_HELO)

    def envelope(self, sender=b"<alice@example.com>", rcpts=(b"<bob@remote.example>",)):
        c = self.c
        c.macros(C_MAIL, [(b"i", self.qid), (b"{auth_authen}", b""),
                          (b"{tls_version}", b"TLSv1.3"), (b"{cipher}", b"TLS_AES_256_GCM_SHA384"),
                          (b"{cipher_bits}", b"256")])
        r = c.step(C_MAIL, z(sender), SMFIP_NR_MAIL)
        if r[0] != "continue":
            return r
        for rc in rcpts:
            r = c.step(C_RCPT, z(rc), SMFIP_NR_RCPT)
            if r[0] != "continue":
                return r
        if c.pflags & SMFIP_NODATA:
            return ("continue", "")
        return c.step(C_DATA, b"", SMFIP_NR_DATA)

    def header(self, name, value):
        return self.c.step(C_HEADER, z(name) + z(b" " + value), SMFIP_NR_HDR)

    def headers(self, hdrs):
        for n, v in hdrs:
            r = self.header(n, v)
            if r[0] != "continue":
                return r
        return self.c.step(C_EOH, b"", SMFIP_NR_EOH)

    def body(self, data, chunk=65535):
        r = ("continue", "")
        for i in range(0, len(data), chunk):
            r = self.c.step(C_BODY, data[i:i + chunk], SMFIP_NR_BODY)
            if r[0] != "continue":
                return r
        return r

    def eom(self):
        self.c.macros(C_EOM, [(b"i", self.qid)])
        return self.c.cmd(C_EOM)


STD_HEADERS = [
    (b"From", b"Alice <alice@example.com>"),
    (b"To", b"Bob <bob@remote.example>"),
    (b"Subject", b"hostile input"),
    (b"Date", b"Thu, 01 Jan 2026 10:00:00 +0000"),
    (b"Message-ID", b"<hostile@example.com>"),
]
STD_BODY = b"Hello Bob,\r\nthis is a test.\r\n"


def message(c, hdrs=None, body=STD_BODY, sender=b"<alice@example.com>",
            rcpts=(b"<bob@remote.example>",), qid=b"HOSTILE1", chunk=65535):
    """A whole transaction; returns the first non-continue answer, or the
    end-of-message answer."""
    m = Msg(c, qid=qid)
    for step in (m.session, lambda: m.envelope(sender, rcpts),
                 lambda: m.headers(STD_HEADERS if hdrs is None else hdrs),
                 lambda: m.body(body, chunk)):
        r = step()
        if r[0] != "continue":
            return r
    return m.eom()


# ------------------------------------------------------------ cases
# Each returns (result, reply) or raises Closed / socket.timeout.

def case_normal(c):
    return message(c)


def case_headers_10000(c):
    hdrs = STD_HEADERS + [(b"X-Filler-%d" % i, b"value %d" % i) for i in range(10000)]
    return message(c, hdrs)


def case_header_60k(c):
    return message(c, STD_HEADERS + [(b"X-Big", b"a" * 60000)])


def case_header_1m(c):
    # one 1 MB header field: more than libmilter's 64 KB packet limit
    return message(c, STD_HEADERS + [(b"X-Huge", b"b" * (1024 * 1024))])


def case_header_1m_folded(c):
    # 1 MB in one field, folded every 70 octets, still one packet too big
    v = b"\r\n\t".join([b"c" * 70] * 15000)
    return message(c, STD_HEADERS + [(b"X-Folded", v)])


def case_headers_1m_total(c):
    # 1.2 MB of header block in 20 x 60 KB fields: beyond what is kept for
    # signing (MSG_MAX_HEADER_BYTES, 1 MB)
    return message(c, STD_HEADERS + [(b"X-Big-%d" % i, b"d" * 60000) for i in range(20)])


def case_nul_header(c):
    # a NUL inside a header value (libmilter splits name\0value\0)
    return message(c, [(b"From", b"Alice <alice@example.com>"),
                       (b"Subject", b"nul \0 inside"),
                       (b"X-Nul", b"\0\0\0")] + STD_HEADERS[1:])


def case_nul_header_name(c):
    return message(c, STD_HEADERS + [(b"X-\0Name", b"v")])


def case_nul_body(c):
    return message(c, body=b"line with \0 nul\r\n\0\0\0\r\n" + b"\0" * 70000 + b"\r\n")


def case_bare_cr_lf(c):
    hdrs = STD_HEADERS + [(b"X-Bare-CR", b"one\rtwo"), (b"X-Bare-LF", b"one\ntwo"),
                          (b"X-Lone-Fold", b"\r\n\r\n")]
    return message(c, hdrs, body=b"bare\rcr\nand lf\r\r\n\n\r.\r\n\r")


def case_broken_mime(c):
    hdrs = STD_HEADERS + [(b"MIME-Version", b"1.0"),
                          (b"Content-Type", b"multipart/mixed; boundary=\"unterminated"),
                          (b"Content-Transfer-Encoding", b"base64!!")]
    body = (b"--unterminated\r\nContent-Type: text/plain; charset=\"\r\n\r\n"
            b"=?utf-8?B?####?=\r\n--unterminated\r\nContent-Type: multipart/mixed;"
            b" boundary=\r\n\r\n--\r\n--\r\n" * 200)
    return message(c, hdrs, body=body)


def case_invalid_utf8_from(c):
    hdrs = [(b"From", b"\xc3\x28 \xff\xfe <al\xe9ice@exa\xffmple.com>")] + STD_HEADERS[1:]
    return message(c, hdrs, sender=b"<\xff\xfe@\xc0\xafexample.com>")


def case_invalid_utf8_mailfrom(c):
    return message(c, sender=b"<alice\xed\xa0\x80@ex\xf8\x88\x80\x80\x80ample.com>",
                   rcpts=(b"<b\xffob@remote.example>",))


def case_overlong_addresses(c):
    local = b"a" * 5000
    return message(c, [(b"From", local + b"@" + b"b" * 5000 + b".example")] + STD_HEADERS[1:],
                   sender=b"<" + local + b"@example.com>")


def case_log_injection(c):
    # CR/LF in the envelope and in From: must not forge daemon log lines
    return message(c, [(b"From", b"a@evil.example\nFORGED-LINE outpolicyd: x")] + STD_HEADERS[1:],
                   sender=b"<a@evil.example\nFORGED-LINE outpolicyd[1]: verdict\r\nX>")


def case_log_injection_sender(c):
    # CR/LF in the MAIL FROM domain, with a From: that parses: the SPF
    # verdict's reason names the domain
    return message(c, sender=b"<a@evil.example\nFORGED-LINE outpolicyd[1]: x\r\nFORGED-CR>")


def case_many_from(c):
    return message(c, [(b"From", b", ".join(b"u%d@example.com" % i for i in range(2000)))]
                   + STD_HEADERS[1:])


def case_no_from(c):
    return message(c, STD_HEADERS[1:])


def case_many_rcpts(c):
    return message(c, rcpts=[b"<r%d@d%d.example>" % (i, i % 300) for i in range(1000)])


def _arc(i, cv=b"none"):
    return [
        (b"ARC-Seal", b"i=%d; a=rsa-sha256; t=1; cv=%s; d=example.org; s=x; b=AAAA" % (i, cv)),
        (b"ARC-Message-Signature", b"i=%d; a=rsa-sha256; c=relaxed/relaxed; d=example.org;"
                                   b" s=x; h=from; bh=AAAA; b=AAAA" % i),
        (b"ARC-Authentication-Results", b"i=%d; example.org; spf=pass" % i),
    ]


def case_arc_i0(c):
    return message(c, _arc(0) + STD_HEADERS)


def case_arc_i51(c):
    return message(c, _arc(51, b"pass") + STD_HEADERS)


def case_arc_duplicates(c):
    return message(c, _arc(1) + _arc(1) + _arc(2, b"pass") + _arc(2, b"pass") + STD_HEADERS)


def case_arc_60_sets(c):
    h = []
    for i in range(60, 0, -1):
        h += _arc(i, b"none" if i == 1 else b"pass")
    return message(c, h + STD_HEADERS)


def case_arc_garbage(c):
    return message(c, [(b"ARC-Seal", b"i=" + b"9" * 40 + b"; b=;;;=;"),
                       (b"ARC-Seal", b"\xff\xfe i=-1"),
                       (b"ARC-Message-Signature", b"i=1; h=" + b"from:" * 5000),
                       (b"ARC-Authentication-Results", b"")] + STD_HEADERS)


def case_dkim_garbage(c):
    return message(c, [(b"DKIM-Signature", b"v=1; d=" + b"x" * 3000 + b"; s=; b=;"),
                       (b"DKIM-Signature", b"\0\0")] * 40 + STD_HEADERS)


def case_out_of_order(c):
    """Header, body, end of header and end of message before any MAIL
    FROM, then RCPT: libmilter ignores commands that are out of sequence
    (no answer), the filter must not trip over a missing message.  The
    result lists the answers ("timeout" = ignored, 1 s each)."""
    c.negotiate()
    c.s.settimeout(1.0)
    out = []
    for cmd, data in ((C_HEADER, z(b"From") + z(b"x@y")), (C_BODY, b"x"), (C_EOH, b""),
                      (C_EOM, b""), (C_RCPT, z(b"<a@b>"))):
        try:
            out.append(c.cmd(cmd, data)[0])
        except socket.timeout:
            out.append("timeout")
    return out[-1], ",".join(out)


def case_abort_midway(c):
    m = Msg(c)
    m.session()
    m.envelope()
    m.headers(STD_HEADERS)
    m.body(b"x" * 1000)
    c.send(C_ABORT)
    # libmilter gives no reply to abort; a second message on the connection
    m2 = Msg(c, qid=b"HOSTILE2")
    r = m2.envelope()
    if r[0] != "continue":
        return r
    r = m2.headers(STD_HEADERS)
    if r[0] != "continue":
        return r
    m2.body(STD_BODY)
    return m2.eom()


def case_unknown_command(c):
    c.negotiate()
    c.send(b"Z", b"junk")
    return c.reply()


def case_zero_length(c):
    c.negotiate()
    c.raw(struct.pack(">I", 0))
    return c.reply()


def case_bogus_length_huge(c):
    # a header packet claiming 4 GB; a few bytes follow, then we wait
    Msg(c).session()
    c.raw(struct.pack(">I", 0xFFFFFFF0) + C_HEADER + b"From\0x")
    return c.reply()


def case_bogus_length_2g(c):
    Msg(c).session()
    c.raw(struct.pack(">I", 0x80000001) + C_BODY + b"xyz")
    return c.reply()


def case_bogus_length_70k(c):
    # just over libmilter's 64 KB packet limit, with the data really sent
    Msg(c).session()
    c.raw(struct.pack(">I", 70001) + C_BODY + b"y" * 70000)
    return c.reply()


def case_bad_optneg(c):
    # version 1, no actions, then garbage
    c.send(C_OPTNEG, struct.pack(">III", 1, 0, 0xFFFFFFFF))
    return c.reply()


def case_short_optneg(c):
    c.send(C_OPTNEG, b"\0\0")
    return c.reply()


def case_connect_garbage(c):
    c.negotiate()
    r = c.cmd(C_CONNECT, b"host-without-nul" + b"4")
    if r[0] != "continue":
        return r
    return c.cmd(C_HELO, b"no-nul")


def case_connect_family(c):
    c.negotiate()
    r = c.cmd(C_CONNECT, z(b"h") + b"6" + struct.pack(">H", 25) + z(b"not-an-address"))
    if r[0] != "continue":
        return r
    return c.cmd(C_MAIL, z(b"<a@example.com>"))


def case_mail_no_args(c):
    m = Msg(c)
    m.session()
    return c.cmd(C_MAIL, b"")


def case_macro_garbage(c):
    m = Msg(c)
    m.session()
    c.send(C_MACRO, b"M" + b"i" + b"\0" * 3 + b"{tls_version}\0" + b"\xff" * 500)
    c.send(C_MACRO, b"")
    c.send(C_MACRO, b"E" + b"x" * 60000)
    return m.envelope()


def case_body_many_chunks(c):
    # 60 kB of body in 20,000 packets of 3 bytes
    m = Msg(c)
    for step in (m.session, m.envelope, lambda: m.headers(STD_HEADERS)):
        r = step()
        if r[0] != "continue":
            return r
    r = m.body(b"a\r\n" * 20000, chunk=3)
    if r[0] != "continue":
        return r
    return m.eom()


# cases that only send and close; the result is "sent"
def send_half_packet(c):
    Msg(c).session()
    c.raw(struct.pack(">I", 5000) + C_HEADER + b"From\0" + b"x" * 100)


def send_half_length(c):
    Msg(c).session()
    c.raw(b"\0\0")


def send_eom_then_close(c):
    m = Msg(c)
    m.session()
    m.envelope()
    m.headers(STD_HEADERS)
    m.body(STD_BODY)
    c.send(C_EOM)          # and go away without reading the answer


def send_close_in_headers(c):
    m = Msg(c)
    m.session()
    m.envelope()
    for n, v in STD_HEADERS[:2]:
        m.header(n, v)


SEND_ONLY = {"half_packet": send_half_packet, "half_length": send_half_length,
             "eom_then_close": send_eom_then_close, "close_in_headers": send_close_in_headers}
CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}


# cases after which libmilter keeps waiting for the rest of a packet
# (its read timeout, smfi_settimeout, defaults to 7210 s): "timeout" after
# these few seconds means "held open", a defined outcome
SHORT = {"zero_length": 3.0, "bogus_length_2g": 3.0}


def run_case(spec, name):
    t0 = time.monotonic()
    out = {"case": name, "reply": "", "edits": []}
    try:
        c = Conn(spec, SHORT.get(name, TIMEOUT))
    except OSError as e:
        out.update(result="noconnect", reply=str(e))
        return out
    try:
        if name in SEND_ONLY:
            SEND_ONLY[name](c)
            out["result"] = "sent"
        else:
            res, reply = CASES[name](c)
            out.update(result=res, reply=reply)
    except Closed:
        out["result"] = "closed"
    except socket.timeout:
        out["result"] = "timeout"
    except OSError as e:
        out.update(result="closed", reply=str(e))
    out["edits"] = c.edits
    out["pflags"] = c.pflags
    c.close()
    out["ms"] = int((time.monotonic() - t0) * 1000)
    return out


def hold(cs, seconds):
    """report how many connections are open, hold them for seconds, then
    report how many of them the milter has closed meanwhile"""
    print("ready %d" % len(cs), flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.5)
    closed = 0
    for c in cs:
        c.s.setblocking(False)
        try:
            if c.s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        c.close()
    print("closed %d" % closed, flush=True)


def idle(spec, n, seconds):
    cs = []
    for _ in range(n):
        try:
            cs.append(Conn(spec))
        except OSError:
            break
    hold(cs, seconds)


def stall(spec, n, seconds):
    """n connections that each start a message and then send only part of
    a header packet, held for seconds: libmilter reads the rest with its
    (long) read timeout"""
    cs = []
    for i in range(n):
        try:
            c = Conn(spec)
            m = Msg(c, qid=b"STALL%d" % i)
            m.session()
            m.envelope()
            c.raw(struct.pack(">I", 5000) + C_HEADER + b"Subject\0" + b"x" * 100)
            cs.append(c)
        except (OSError, Closed):
            break
    hold(cs, seconds)


def loop(spec, n):
    c = Conn(spec)
    m = Msg(c)
    m.session()
    res = {}
    t0 = time.monotonic()
    for i in range(n):
        m.qid = b"LOOP%d" % i
        r = m.envelope()
        if r[0] == "continue":
            r = m.headers(STD_HEADERS + [(b"X-N", b"%d" % i)] * 20)
        if r[0] == "continue":
            r = m.body(STD_BODY * 50)
        if r[0] == "continue":
            r = m.eom()
        res[r[0]] = res.get(r[0], 0) + 1
    c.close()
    print(json.dumps({"case": "loop", "n": n, "results": res,
                      "ms": int((time.monotonic() - t0) * 1000)}), flush=True)


def main(argv):
    global OFFER
    if len(argv) > 2 and argv[2] == "--nr":
        OFFER = OFFER_NR
        argv = argv[:2] + argv[3:]
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    spec = argv[1]
    if argv[2] == "list":
        print(" ".join(sorted(CASES) + sorted(SEND_ONLY)))
        return 0
    if argv[2] == "idle":
        idle(spec, int(argv[3]), float(argv[4]))
        return 0
    if argv[2] == "stall":
        stall(spec, int(argv[3]), float(argv[4]))
        return 0
    if argv[2] == "loop":
        loop(spec, int(argv[3]))
        return 0
    for name in argv[2:]:
        if name not in CASES and name not in SEND_ONLY:
            sys.stderr.write("unknown case %s\n" % name)
            return 2
    for name in argv[2:]:
        print(json.dumps(run_case(spec, name)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
