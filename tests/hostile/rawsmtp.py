#!/usr/bin/python3
"""tests/hostile/rawsmtp.py - submit hostile messages to an SMTP server
byte for byte (swaks and smtplib normalise line ends; this does not):
10,000 header fields, a 1 MB header field, NUL bytes, bare CR and bare
LF, broken MIME, invalid UTF-8 in From: and MAIL FROM, ARC sets with
instance 0, 51 and duplicates.  Standard library only.

Usage:
    rawsmtp.py list                                 the case names
    rawsmtp.py HOST PORT SOURCE-IP RUN CASE...      one JSON line per case:
        {"case": NAME, "stage": S, "reply": "250 2.0.0 Ok: queued as X",
         "code": 250, "msgid": "<NAME.RUN@example.com>", "bytes": N}
    stage is the command whose reply ended the transaction: "connect",
    "ehlo", "mail", "rcpt", "data" or "eod" (end of data); "closed" when
    the server closed the connection (reply then says after what).

Messages come from MAIL FROM <NAME@example.com> (or a hostile sender), To
rcpt@remote.example, and carry Message-ID <NAME.RUN@example.com>.
"""
import json
import re
import socket
import sys

DATE = b"Thu, 01 Jan 2026 10:00:00 +0000"


def headers(case, run, frm=b"Alice <alice@example.com>"):
    return (b"From: " + frm + b"\r\nTo: Bob <rcpt@remote.example>\r\n"
            b"Subject: hostile " + case.encode() + b"\r\nDate: " + DATE + b"\r\n"
            b"Message-ID: <" + case.encode() + b"." + run.encode() + b"@example.com>\r\n")


BODY = b"Hello Bob,\r\nthis is a hostile test message.\r\n"


def arc(i, cv=b"none"):
    return (b"ARC-Seal: i=%d; a=rsa-sha256; t=1; cv=%s; d=example.org; s=x; b=AAAA\r\n"
            b"ARC-Message-Signature: i=%d; a=rsa-sha256; c=relaxed/relaxed;\r\n"
            b"\td=example.org; s=x; h=from; bh=AAAA; b=AAAA\r\n"
            b"ARC-Authentication-Results: i=%d; example.org; spf=pass\r\n" % (i, cv, i, i))


def build(case, run):
    """(mail-from, message bytes) of a case."""
    sender = ("<%s@example.com>" % case).encode()
    h = headers(case, run)
    if case == "plain":
        return sender, h + b"\r\n" + BODY
    if case == "headers-10000":
        return sender, h + b"".join(b"X-Filler-%d: value %d\r\n" % (i, i)
                                    for i in range(10000)) + b"\r\n" + BODY
    if case == "header-1m":
        return sender, h + b"X-Huge: " + b"b" * (1024 * 1024) + b"\r\n\r\n" + BODY
    if case == "header-1m-folded":
        return sender, h + b"X-Folded: " + b"\r\n\t".join([b"c" * 70] * 15000) + b"\r\n\r\n" + BODY
    if case == "header-90k-folded":
        return sender, h + b"X-Folded: " + b"\r\n\t".join([b"e" * 70] * 1250) + b"\r\n\r\n" + BODY
    if case == "nul-header":
        return sender, h + b"X-Nul: before\0after\r\nSubject2: \0\0\0\r\n\r\n" + BODY
    if case == "nul-body":
        return sender, h + b"\r\nline with \0 nul\r\n\0\0\0\r\n" + BODY
    if case == "bare-cr":
        return sender, h + b"X-Bare-CR: one\rtwo\r\n\r\nbare\rcr\rin body\r\n" + BODY
    if case == "bare-lf":
        return sender, h.replace(b"\r\n", b"\n") + b"X-Bare-LF: one\n\ttwo\n\nbare\nlf\n\n"
    if case == "broken-mime":
        return sender, (h + b"MIME-Version: 1.0\r\n"
                        b"Content-Type: multipart/mixed; boundary=\"unterminated\r\n"
                        b"Content-Transfer-Encoding: base64!!\r\n\r\n"
                        + b"--unterminated\r\nContent-Type: text/plain; charset=\"\r\n\r\n"
                          b"=?utf-8?B?####?=\r\n--unterminated\r\nContent-Type: multipart/mixed;"
                          b" boundary=\r\n\r\n--\r\n--\r\n" * 200)
    if case == "utf8-from-header":
        return sender, headers(case, run, b"\xc3\x28 \xff\xfe <al\xe9ice@exa\xffmple.com>") + b"\r\n" + BODY
    if case == "utf8-mail-from":
        return b"<alice\xed\xa0\x80@ex\xf8\x88\x80\x80ample.com>", h + b"\r\n" + BODY
    if case == "utf8-mail-from-smtputf8":
        return b"<al\xc3\xafce@ex\xff\xfeample.com> SMTPUTF8", h + b"\r\n" + BODY
    if case == "arc-i0":
        return sender, arc(0) + h + b"\r\n" + BODY
    if case == "arc-i51":
        return sender, arc(51, b"pass") + h + b"\r\n" + BODY
    if case == "arc-duplicates":
        return sender, arc(2, b"pass") + arc(2, b"pass") + arc(1) + arc(1) + h + b"\r\n" + BODY
    raise KeyError(case)


CASES = ["plain", "headers-10000", "header-1m", "header-1m-folded", "header-90k-folded",
         "nul-header", "nul-body", "bare-cr", "bare-lf", "broken-mime", "utf8-from-header",
         "utf8-mail-from", "utf8-mail-from-smtputf8", "arc-i0", "arc-i51", "arc-duplicates"]


class Done(Exception):
    pass


def send(host, port, src, run, case):
    out = {"case": case, "msgid": "<%s.%s@example.com>" % (case, run)}
    sender, msg = build(case, run)
    out["bytes"] = len(msg)
    s = socket.create_connection((host, port), timeout=60, source_address=(src, 0))
    f = s.makefile("rb")

    def reply(stage):
        text = ""
        while True:
            line = f.readline()
            if not line:
                out.update(stage="closed", reply="closed after " + stage, code=0)
                raise Done()
            text = line.decode("latin-1").rstrip("\r\n")
            if line[3:4] != b"-":
                break
        out.update(stage=stage, reply=text, code=int(text[:3]) if text[:3].isdigit() else 0)
        return out["code"]

    def cmd(stage, data, want):
        s.sendall(data + b"\r\n")
        if reply(stage) // 100 != want:
            raise Done()

    try:
        if reply("connect") != 220:
            raise Done()
        cmd("ehlo", b"EHLO hostile.example.com", 2)
        cmd("mail", b"MAIL FROM:" + sender, 2)
        cmd("rcpt", b"RCPT TO:<rcpt@remote.example>", 2)
        cmd("data", b"DATA", 3)
        msg = re.sub(rb"(^|\n)\.", rb"\1..", msg)
        if not msg.endswith(b"\n"):
            msg += b"\r\n"
        s.sendall(msg + b".\r\n")
        reply("eod")
        s.sendall(b"QUIT\r\n")
    except Done:
        pass
    except OSError as e:
        out.update(stage="closed", reply=str(e), code=0)
    s.close()
    return out


def main(argv):
    if len(argv) == 2 and argv[1] == "list":
        print(" ".join(CASES))
        return 0
    if len(argv) < 6:
        sys.stderr.write(__doc__)
        return 2
    host, port, src, run = argv[1], int(argv[2]), argv[3], argv[4]
    for case in argv[5:]:
        if case not in CASES:
            sys.stderr.write("unknown case %s\n" % case)
            return 2
    for case in argv[5:]:
        print(json.dumps(send(host, port, src, run, case)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
