#!/usr/bin/python3
"""tests/hostile/mapclient.py - a socketmap (Postfix socketmap_table(5))
client that sends outpolicyd's TLS policy map hostile requests: oversized
and malformed netstrings, truncated requests, odd keys, more connections
than the server keeps.  Standard library only.

Usage:
    mapclient.py SOCKET list                the case names
    mapclient.py SOCKET CASE...             one JSON line per case:
        {"case": NAME, "reply": TEXT, "closed": BOOL, "ms": N}
        reply = what the server sent (netstrings, latin-1), "" if nothing;
        closed = the server closed the connection within the case's wait
    mapclient.py SOCKET flood N SECONDS     open N connections that never
        send, then (while they are open) time 3 look-ups on new
        connections: prints "ready N", one line "MS REPLY" per look-up,
        then keeps the N open until SECONDS have passed and prints
        "closed K" (how many of them the server closed)

SOCKET is unix:/path or inet:PORT@HOST.
"""
import json
import socket
import sys
import time


def conn(spec):
    if spec.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(spec[5:])
    else:
        port, host = spec.split(":", 1)[1].split("@")
        s = socket.create_connection((host, int(port)))
    return s


def ns(b):
    return b"%d:%s," % (len(b), b)


def read(s, wait, want=1, check_close=True):
    """Read for up to wait seconds or until want netstrings came; returns
    (data, closed).  With check_close, wait 0.3 s more after the answer to
    see whether the server also closes."""
    s.settimeout(0.2)
    data, end = b"", time.monotonic() + wait
    while time.monotonic() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not d:
            return data, True
        data += d
        if data.count(b",") >= want and data.endswith(b","):
            if not check_close:
                return data, False
            try:
                s.settimeout(0.3)
                return data, s.recv(1) == b""
            except socket.timeout:
                return data, False
            except OSError:
                return data, True
    return data, False


def send(s, data):
    try:
        s.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


# each case: (bytes to send, seconds to wait for the outcome, answers wanted)
MB = 1024 * 1024
CASES = {
    "normal": (ns(b"tlspolicy example.com"), 3, 1),
    "oversized-length": (b"99999999999999999999999:" + b"x" * 100, 3, 1),
    "length-overflow": (b"18446744073709551617:x,", 3, 1),
    "digits-1m": (b"7" * MB, 3, 1),
    "data-1m": (b"1048576:" + b"y" * MB + b",", 3, 1),
    "max-plus-one": (ns(b"tlspolicy " + b"a" * 1091), 3, 1),
    "max-exact": (ns(b"tlspolicy " + b"a" * 1090), 3, 1),
    "no-colon": (b"12tlspolicy x,", 3, 1),
    "negative": (b"-5:hello,", 3, 1),
    "empty-netstring": (b"0:,", 3, 1),
    "nul-key": (ns(b"tlspolicy a\0b.example"), 3, 1),
    "utf8-invalid-key": (ns(b"tlspolicy \xff\xfe\xc3\x28.example"), 3, 1),
    "utf8-key": (ns("tlspolicy bücher.example".encode()), 3, 1),
    "crlf-key": (ns(b"tlspolicy a.example\r\nFORGED-MAP-LINE"), 3, 1),
    "wrong-map": (ns(b"othermap example.com"), 3, 1),
    "no-space": (ns(b"tlspolicy"), 3, 1),
    "binary": (bytes(range(256)) * 4, 3, 1),
    "pipelined-200": (b"".join(ns(b"tlspolicy d%d.example" % i) for i in range(200)), 5, 200),
}


def truncated(spec):
    """Half a request, then close: nothing to answer."""
    s = conn(spec)
    send(s, b"30:tlspolicy exa")
    s.close()
    return {"reply": "", "closed": True}


def slow_partial(spec):
    """One byte every 0.5 s: the server gives up after its partial-request
    limit (10 s); wait up to 15 s."""
    s = conn(spec)
    req = ns(b"tlspolicy " + b"s" * 60)
    t0 = time.monotonic()
    for b in req:
        if not send(s, bytes([b])):
            break
        data, closed = read(s, 0.5)
        if closed or data:
            return {"reply": data.decode("latin-1"), "closed": closed,
                    "after_s": round(time.monotonic() - t0, 1)}
        if time.monotonic() - t0 > 15:
            break
    data, closed = read(s, 1)
    return {"reply": data.decode("latin-1"), "closed": closed,
            "after_s": round(time.monotonic() - t0, 1)}


SPECIAL = {"truncated": truncated, "slow-partial": slow_partial}


def run(spec, name):
    t0 = time.monotonic()
    out = {"case": name}
    try:
        if name in SPECIAL:
            out.update(SPECIAL[name](spec))
        else:
            data, wait, want = CASES[name]
            s = conn(spec)
            ok = send(s, data)
            reply, closed = read(s, wait, want)
            out.update(reply=reply.decode("latin-1"), closed=closed or not ok)
            s.close()
    except OSError as e:
        out.update(reply="", closed=True, error=str(e))
    out["ms"] = int((time.monotonic() - t0) * 1000)
    return out


def flood(spec, n, seconds):
    cs = []
    for _ in range(n):
        try:
            cs.append(conn(spec))
        except OSError:
            break
    print("ready %d" % len(cs), flush=True)
    time.sleep(0.5)
    for key in (b"example.com", b"other.example", b"[127.0.0.1]:25"):
        t = time.monotonic()
        try:
            s = conn(spec)
            send(s, ns(b"tlspolicy " + key))
            reply, _ = read(s, 5, check_close=False)
            s.close()
        except OSError:
            reply = b""
        print(int((time.monotonic() - t) * 1000), reply.decode("latin-1") or "-", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.5)
    closed = 0
    for s in cs:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print("closed %d" % closed, flush=True)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    if argv[2] == "list":
        print(" ".join(sorted(CASES) + sorted(SPECIAL)))
        return 0
    if argv[2] == "flood":
        flood(argv[1], int(argv[3]), float(argv[4]))
        return 0
    for name in argv[2:]:
        if name not in CASES and name not in SPECIAL:
            sys.stderr.write("unknown case %s\n" % name)
            return 2
    for name in argv[2:]:
        print(json.dumps(run(argv[1], name)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
