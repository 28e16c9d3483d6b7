#!/bin/bash
# tests/conformance/run_arc_suite.sh - the ValiMail ARC test suite
# (../shared/testdata/arc-valimail) through outpolicyctl, offline:
#   1. validation: every case, cv compared (arc-suite validate);
#   2. signing: AMS and AAR compared with the suite's values (arc-suite
#      sign --fields AMS,AAR; the suite's expected ARC-Seals predate RFC
#      8617 and do not verify, see its SOURCE.md);
#   3. round trip: each signing case sealed by arc-seal (our normal field
#      format) must validate, with the same cv, by dkimpy
#      (mailauth-verify) and by arc-verify.
# Usage: run_arc_suite.sh [BUILD_DIR]  (default: the repo root).
# Prints "N passed, N failed"; exits non-zero on any failure.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-${OUTPOLICY_BUILD:-$SRC}}
SHARED=${OUTPOLICY_SHARED:-$SRC/../shared}
CTL=$BUILD/ctl/outpolicyctl
SUITE=$SHARED/tools/arc-suite
pass=0
fail=0

[ -x "$CTL" ] || { echo "no $CTL"; echo "0 passed, 1 failed"; exit 1; }
count() { # count LOG: add arc-suite's "N passed, N failed" to ours
    local line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
    p=${line%% passed*}
    f=${line#*, }
    f=${f%% failed*}
    pass=$((pass + ${p:-0}))
    fail=$((fail + ${f:-1}))
    grep '^FAIL' "$1"
    echo "$2: ${line:-no summary}"
}

tmp=$(mktemp -d /tmp/outpolicy-arc.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$SUITE" validate --cmd "$CTL arc-verify --zone {zone} {msg}" >"$tmp/validate.log" 2>&1
count "$tmp/validate.log" "validation (171 cases)"

# the suite writes its key 0644; arc-seal refuses keys others can read
SEAL="sh -c 'chmod 600 {key}; exec $CTL arc-seal --key {key} --selector {selector} --domain {domain} --authserv-id {srvid} --headers {headers} --timestamp {t} --zone {zone}"
"$SUITE" sign --fields AMS,AAR --cmd "$SEAL --standardize {msg} 2>/dev/null'" >"$tmp/sign.log" 2>&1
count "$tmp/sign.log" "signing, AMS and AAR byte for byte (17 cases)"

# round trip: seal in our own format, validate with dkimpy and with us
/usr/bin/python3 - "$SHARED" "$CTL" "$tmp" >"$tmp/roundtrip.log" 2>&1 <<'PY'
import json, os, subprocess, sys, yaml
shared, ctl, tmp = sys.argv[1:4]
verify = os.path.join(shared, "tools", "mailauth-verify")
suite = os.path.join(shared, "testdata", "arc-valimail", "arc-draft-sign-tests.yml")
ok = bad = 0
for sc in yaml.safe_load_all(open(suite)):
    key = os.path.join(tmp, "key.pem")
    with open(key, "w") as f:
        f.write(sc["privatekey"])
    os.chmod(key, 0o600)
    zone = os.path.join(tmp, "zone.txt")
    with open(zone, "w") as f:
        for name, v in sc["txt-records"].items():
            v = " ".join(str(v).split())
            f.write("%s. IN TXT %s\n" % (name.rstrip("."), " ".join(
                '"%s"' % v[i:i + 255] for i in range(0, len(v), 255))))
    for name, t in sc["tests"].items():
        msg = os.path.join(tmp, "msg.eml")
        with open(msg, "w") as f:
            f.write(t["message"])
        p = subprocess.run([ctl, "arc-seal", "--key", key, "--selector", sc["sel"],
            "--domain", sc["domain"], "--authserv-id", t["srv-id"], "--headers",
            t["sig-headers"], "--timestamp", str(t["t"]), "--zone", zone, msg],
            capture_output=True)
        if not t.get("AMS"):
            # the suite expects no new set (the chain already ended)
            if p.returncode == 1 and b"not extended" in p.stderr:
                ok += 1
            else:
                print("FAIL %s: a set was added to an ended chain" % name)
                bad += 1
            continue
        if p.returncode != 0:
            print("FAIL %s: arc-seal: %s" % (name, p.stderr.decode().strip()))
            bad += 1
            continue
        sealed = os.path.join(tmp, "sealed.eml")
        with open(sealed, "wb") as f:
            f.write(p.stdout)
        d = subprocess.run([verify, "--zone", zone, "--now", str(t["t"] + 60), sealed],
            capture_output=True)
        dcv = json.loads(d.stdout.decode().strip().splitlines()[-1])["arc"]["cv"]
        o = subprocess.run([ctl, "arc-verify", "--zone", zone, sealed], capture_output=True)
        ocv = json.loads(o.stdout.decode())["arc"]["cv"]
        # the chain the case hands us: failing input keeps cv=fail, else pass
        want = "fail" if "fail" in name else "pass"
        if dcv == ocv == want:
            ok += 1
        else:
            print("FAIL %s: dkimpy cv=%s, arc-verify cv=%s, want %s" % (name, dcv, ocv, want))
            bad += 1
print("%d passed, %d failed" % (ok, bad))
PY
count "$tmp/roundtrip.log" "round trip: sealed, then validated by dkimpy and arc-verify"

# a long chain: 10 hops, each sealed with its own selector, validates with
# the default budget of 10 key look-ups (one per distinct key, each kept
# for the message); an 11th distinct key is over the budget
long_chain() {
    local d=$tmp/long msg zone="$tmp/long/zone.txt" hops=$1 i out
    rm -rf "$d" && mkdir -p "$d" && chmod 700 "$d"
    : >"$zone"
    msg=$d/m0.eml
    printf 'From: a@example.org\r\nTo: b@example.net\r\nSubject: long\r\n\r\nbody\r\n' >"$msg"
    for i in $(seq 1 "$hops"); do
        "$CTL" keygen --domain hop.example --selector "s$i" --out "$d/k$i.pem" >>"$zone" 2>/dev/null || return 1
        { printf 'Authentication-Results: hop%d.example; arc=%s\r\n' "$i" "$([ "$i" = 1 ] && echo none || echo pass)"; cat "$msg"; } >"$d/in.eml"
        "$CTL" arc-seal --key "$d/k$i.pem" --selector "s$i" --domain hop.example \
            --authserv-id "hop$i.example" --zone "$zone" "$d/in.eml" >"$d/m$i.eml" 2>/dev/null || return 1
        msg=$d/m$i.eml
    done
    out=$("$CTL" arc-verify --zone "$zone" "$msg")
    echo "$out"
}
if out=$(long_chain 10) && echo "$out" | grep -q '"cv": "pass", "instances": 10'; then
    pass=$((pass + 1)); echo "ok: 10-hop chain, 10 distinct keys: pass"
else
    fail=$((fail + 1)); echo "FAIL: 10-hop chain: ${out:-arc-seal failed}"
fi
if out=$(long_chain 11) && echo "$out" | grep -q '"cv": "fail".*more than 10 key look-ups'; then
    pass=$((pass + 1)); echo "ok: 11-hop chain, 11 distinct keys: over the look-up budget"
else
    fail=$((fail + 1)); echo "FAIL: 11-hop chain: ${out:-arc-seal failed}"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
