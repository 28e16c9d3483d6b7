#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_faults.sh - resource faults (issue 10): the events
# file on a full filesystem or unwritable, and a signing key that is gone
# or unsafe at reload.  Mail must keep flowing as configured, failures must
# be logged once per interval (not once per message), and a reload that
# cannot read its keys must leave the old keys signing.
#
# Cases:
#   1. full filesystem: the events file lives on a 64 KB tmpfs owned by the
#      daemon user, filled up after the first message.
#      a. events.on_error = "accept" (buffered sink, the default): 20
#         messages are all accepted, delivered and DKIM-signed; the daemon
#         logs "events write-error" once (at most once a minute), naming
#         the file and ENOSPC.
#      b. SIGHUP to events.on_error = "tempfail" (each event written at
#         once): 10 messages each get "451 4.3.0" at end of data, none is
#         delivered, and the failure is logged once for the 10.
#      c. space freed: the next message is accepted and its event written.
#   2. unwritable events file:
#      a. at start (root-owned, mode 0600): outpolicyd refuses to start,
#         exit status 73 (EX_CANTCREAT), the message names the file;
#      b. rotated, the new file unwritable, SIGUSR1: reopen refused and
#         logged, events keep going to the old (rotated) file, mail flows;
#         made writable, SIGUSR1 again: events go to the new file;
#      c. SIGHUP with an unwritable events file: reload refused, the old
#         configuration stays, mail flows.
#   3. signing key at reload: removed, then back with mode 0644, then not
#      a PEM key: each SIGHUP is refused with the key file named, and the
#      old key keeps signing (s=dk1, verified by dkimpy:
#      ../shared/tools/mailauth-verify); restored (0600): reload accepted.
# outpolicyd stays the same process throughout.
#
# Needs what test_submission.sh needs, plus mount(8) with tmpfs (root with
# CAP_SYS_ADMIN) and python3-dkim + python3-nacl (for mailauth-verify).
# Prints one line per check and "N passed, N failed"; exits non-zero when a
# check failed.  IT_KEEP=1 keeps the scratch directory (the tmpfs is
# unmounted on exit either way).

set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init faults

it_need_verifier
it_sanitizer_env

RUN=$$
CONF=$IT_DIR/outpolicyd.conf
KEYDIR=$IT_DIR/keys
KEY=$KEYDIR/dk.pem
ZONE=$IT_DIR/keys.zone
OUT=$IT_DIR/out
EVFS=$IT_DIR/evfs               # the small tmpfs
EVFILE=$EVFS/events.json
CLIENT=127.0.0.2                # internal and exempt from the TLS check
N=0
mkdir -p "$KEYDIR" "$OUT" "$EVFS"
chmod 755 "$KEYDIR"

# ------------------------------------------------------------ helpers

# faults_on_exit - unmount the tmpfs, then the harness's cleanup
faults_on_exit()
{
    local rc=$?
    mountpoint -q "$EVFS" && umount "$EVFS"
    (exit "$rc")
    it_cleanup
}
trap faults_on_exit EXIT

# config ARGS... - the daemon config with these settings on top
config()
{
    it_daemon_config "$CONF" 'spf.enabled=false' 'dmarc.enabled=false' \
        'arc.enabled=false' \
        "submission_tls.exempt_hosts=[ \"$CLIENT\" ]" \
        "keys=( { id = \"dk\"; domain = \"example.com\"; selector = \"dk1\"; file = \"$KEY\"; } )" \
        'dkim.signing=( { from = "example.com"; keys = [ "dk" ]; } )' \
        "events.file=\"$EVFILE\"" "$@"
}

# send - one message from $CLIENT; sets MID (its Message-Id)
send()
{
    N=$((N + 1))
    MID="<f$N.$RUN@example.com>"
    it_swaks --local-interface "$CLIENT" --from "alice@example.com" \
        --header "From: Alice <alice@example.com>" --header "Message-Id: $MID" \
        --header "Subject: fault test $N" --body "message $N"
}

# delivered_signed LABEL - the last message arrived, signed with s=dk1,
# and dkimpy verifies it
delivered_signed()
{
    it_sink_save "$1" "$MID" "$OUT/$N.eml" 20 || return 1
    it_check "$1: delivered, signed by s=dk1 and verified (dkimpy)" \
        it_verify_dkim "$ZONE" "$OUT/$N.eml" dk1
}

# errlines - "events write-error" lines in the daemon's log so far
errlines()
{
    grep -c 'events write-error' "$IT_DIR/outpolicyd.log"
}

# log_lines ERE - lines of the daemon's log matching ERE
log_lines()
{
    grep -cE -- "$1" "$IT_DIR/outpolicyd.log"
}

log_more()
{
    [ "$(log_lines "$1")" -gt "$2" ]
}

# signal SIG ERE - send SIG, wait until one more log line matches ERE;
# LOGGED is then the newest such line
signal()
{
    local n
    n=$(log_lines "$2")
    kill "-$1" "$IT_DAEMON_PID"
    it_wait_for 10 log_more "$2" "$n"
    LOGGED=$(grep -E -- "$2" "$IT_DIR/outpolicyd.log" | tail -n 1)
}

# reload ARGS... - rewrite the config with ARGS, SIGHUP, wait for the outcome
reload()
{
    config "$@"
    signal HUP 'reloaded configuration|reload refused'
}

events_count()
{
    grep -c . "$1" 2>/dev/null || echo 0
}

# ------------------------------------------------------------ set-up

"$CTL" keygen --domain example.com --selector dk1 --out "$KEY" \
    >"$KEYDIR/dk.txt" 2>>"$IT_DIR/keygen.log" || it_die "outpolicyctl keygen failed"
tr '\n()' '   ' <"$KEYDIR/dk.txt" | tr -s ' ' >"$ZONE"
printf '\n' >>"$ZONE"
chown nobody:nogroup "$KEY"
cp -p "$KEY" "$KEYDIR/dk.pem.orig"

mount -t tmpfs -o size=64k,mode=0755,uid=65534,gid=65534 tmpfs "$EVFS" ||
    it_die "cannot mount a tmpfs on $EVFS (needs root with CAP_SYS_ADMIN)"
install -o nobody -g nogroup -m 0640 /dev/null "$EVFILE"

it_tls_cert
it_sink_start
config 'events.on_error="accept"' 'events.buffer=true'
it_daemon_start "$CONF" || it_die "outpolicyd did not start"
PID0=$IT_DAEMON_PID
IT_MILTER="unix:$IT_SOCK" it_postfix_start

# ------------------------------------------------------------ 1. full filesystem

echo "# 1. events file on a full 64 KB tmpfs"
send
it_check_eq "before: accepted" 0 "$IT_SWAKS_RC"
delivered_signed "before"
it_check "before: its event is written (within 2 s, buffered)" \
    it_wait_for 3 test "$(events_count "$EVFILE")" -ge 1
dd if=/dev/zero of="$EVFS/filler" bs=1k count=128 >/dev/null 2>&1
it_check_eq "the tmpfs is full" 0 "$(df --output=avail "$EVFS" | tail -n 1 | tr -d ' ')"
EV_BEFORE=$(events_count "$EVFILE")

echo "# 1a. events.on_error = accept: 20 messages"
E0=$(errlines)
ok=0
for _ in $(seq 20); do
    send && ok=$((ok + 1))
done
it_check_eq "1a: 20 of 20 accepted" 20 "$ok"
delivered_signed "1a (the last one)"
it_check_eq "1a: 21 messages at the sink" 21 "$(it_sink_count)"
sleep 2     # one more buffer flush
send >/dev/null
it_check "1a: the failure is logged" it_wait_for 5 test "$(errlines)" -gt "$E0"
it_check_eq "1a: ... once for 21 messages (at most once a minute)" 1 $(($(errlines) - E0))
line=$(grep 'events write-error' "$IT_DIR/outpolicyd.log" | tail -n 1)
echo "    $line"
it_check "1a: the log line names the file, ENOSPC and on_error=accept" \
    grep -qE "file=$EVFILE .*No space left on device.*on_error=accept" <<<"$line"
# (tmpfs fills whole pages: lines still fit in the file's last page)
echo "    events written to the full file: $(($(events_count "$EVFILE") - EV_BEFORE)) of 21"

echo "# 1b. events.on_error = tempfail: 10 messages"
reload 'events.on_error="tempfail"' 'events.buffer=false'
it_check "1b: reload accepted ($LOGGED)" grep -q 'reloaded configuration' <<<"$LOGGED"
E0=$(errlines)
SINK0=$(it_sink_count)
n451=0
for _ in $(seq 10); do
    send
    [[ $(it_swaks_reply_to .) == "451 4.3.0 "* ]] && n451=$((n451 + 1))
done
it_check_eq "1b: 10 of 10 refused at end of data with 451 4.3.0 ($(it_swaks_reply_to .))" 10 "$n451"
sleep 1
it_check_eq "1b: none delivered" "$SINK0" "$(it_sink_count)"
it_check_eq "1b: the failure is logged once for 10 messages" 1 $(($(errlines) - E0))
it_check "1b: ... with on_error=tempfail" \
    grep -q 'events write-error.*on_error=tempfail' "$IT_DIR/outpolicyd.log"

echo "# 1c. space freed"
rm -f "$EVFS/filler"
EV_BEFORE=$(events_count "$EVFILE")
send
it_check_eq "1c: accepted again" 0 "$IT_SWAKS_RC"
delivered_signed "1c"
it_check "1c: its event is written" test "$(events_count "$EVFILE")" -gt "$EV_BEFORE"
it_check "1: outpolicyd is the same process" it_daemon_is "$PID0"

# ------------------------------------------------------------ 2. unwritable

echo "# 2. unwritable events file"
# a. at start: a second daemon on its own socket, with a root-only file
mkdir -p "$IT_DIR/ro/run"
chown nobody:nogroup "$IT_DIR/ro/run"
install -o root -g root -m 0600 /dev/null "$IT_DIR/ro/events.json"
it_daemon_config "$IT_DIR/ro.conf" 'spf.enabled=false' 'dmarc.enabled=false' \
    "daemon.socket=\"unix:$IT_DIR/ro/run/op.sock\"" "daemon.pidfile=\"$IT_DIR/ro/run/op.pid\"" \
    "events.file=\"$IT_DIR/ro/events.json\""
timeout 20 "$IT_BUILD/milter/outpolicyd" -f -c "$IT_DIR/ro.conf" >"$IT_DIR/ro/start.log" 2>&1
rc=$?
echo "    $(grep -m1 fatal "$IT_DIR/ro/start.log")"
it_check_eq "2a: refuses to start: exit status 73 (EX_CANTCREAT)" 73 "$rc"
it_check "2a: the message names the file and the reason" \
    grep -q "events.file $IT_DIR/ro/events.json: cannot open: Permission denied" "$IT_DIR/ro/start.log"
it_check "2a: no socket left behind" test ! -e "$IT_DIR/ro/run/op.sock"

# b. rotated, the new file unwritable by the daemon user
reload 'events.on_error="accept"' 'events.buffer=false'
it_check "2b: reload to on_error=accept ($LOGGED)" grep -q 'reloaded configuration' <<<"$LOGGED"
mv "$EVFILE" "$EVFILE.1"
install -o root -g root -m 0600 /dev/null "$EVFILE"
signal USR1 'reopen|reopened'
it_check "2b: SIGUSR1 reopen refused and logged ($LOGGED)" \
    grep -q "reopen: events.file $EVFILE: cannot open: Permission denied" <<<"$LOGGED"
R0=$(events_count "$EVFILE.1")
send
it_check_eq "2b: mail flows" 0 "$IT_SWAKS_RC"
delivered_signed "2b"
it_check "2b: its event went to the old (rotated) file" \
    test "$(events_count "$EVFILE.1")" -gt "$R0"
chown nobody:nogroup "$EVFILE"
signal USR1 'reopen|reopened'
it_check "2b: made writable, SIGUSR1: reopened ($LOGGED)" grep -q 'reopened event file' <<<"$LOGGED"
send
delivered_signed "2b (after the reopen)"
it_check "2b: its event went to the new file" test "$(events_count "$EVFILE")" -ge 1

# c. SIGHUP with an unwritable events file
chown root:root "$EVFILE"
reload 'events.on_error="accept"' 'events.buffer=false' 'mode="monitor"'
it_check "2c: reload refused ($LOGGED)" \
    grep -q "reload refused: events.file $EVFILE: cannot open: Permission denied" <<<"$LOGGED"
send
it_check_eq "2c: mail flows" 0 "$IT_SWAKS_RC"
delivered_signed "2c"
it_check "2c: the old configuration stays (enforce: no monitor-mode verdicts)" \
    test "$(log_lines 'applied=no')" -eq 0
chown nobody:nogroup "$EVFILE"
it_check "2: outpolicyd is the same process" it_daemon_is "$PID0"

# ------------------------------------------------------------ 3. keys at reload

echo "# 3. signing key removed or unsafe before SIGHUP"
rm -f "$KEY"
reload 'events.on_error="accept"'
it_check "3a: key removed: reload refused, the file named ($LOGGED)" \
    grep -qE "reload refused: .*key file $KEY: No such file or directory" <<<"$LOGGED"
send
delivered_signed "3a: the old key keeps signing"

cp "$KEYDIR/dk.pem.orig" "$KEY"
chown nobody:nogroup "$KEY"
chmod 0644 "$KEY"
reload 'events.on_error="accept"'
it_check "3b: key mode 0644: reload refused, the file named ($LOGGED)" \
    grep -qE "reload refused: .*key file $KEY is accessible by group or others \(mode 0644\)" <<<"$LOGGED"
send
delivered_signed "3b: the old key keeps signing"

echo "not a key" >"$KEY"
chmod 0600 "$KEY"
reload 'events.on_error="accept"'
it_check "3c: not a PEM key: reload refused, the file named ($LOGGED)" \
    grep -qE "reload refused: .*key file $KEY is not a PEM private key" <<<"$LOGGED"
send
delivered_signed "3c: the old key keeps signing"

cp -p "$KEYDIR/dk.pem.orig" "$KEY"
reload 'events.on_error="accept"'
it_check "3d: key restored (0600): reload accepted ($LOGGED)" grep -q 'reloaded configuration' <<<"$LOGGED"
send
delivered_signed "3d"
it_check "3: outpolicyd is the same process" it_daemon_is "$PID0"

it_daemon_stop
rc=$?
it_check_eq "outpolicyd stops cleanly (exit status)" 0 "$rc"
it_check "no sanitizer report in the daemon's log" it_sanitizer_reports
it_summary
