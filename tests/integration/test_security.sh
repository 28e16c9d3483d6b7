#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_security.sh - privilege and secrecy (issue 10).
#
# Cases:
#   1. started as root with daemon.user = nobody: after start every Uid and
#      Gid of /proc/PID/status is the user's, the only supplementary group
#      is its group, no capability is left (CapEff/CapPrm 0).
#   2. sockets: the milter socket and the TLS policy socket have the
#      configured modes (0660, 0640) and group (postfix), owned by the user;
#      with daemon.socket_group = "" they get the user's group.
#   3. keys are read before the privilege drop: a root-owned 0600 key (that
#      the user cannot read) signs (dkimpy verifies); a SIGHUP as the user
#      then cannot read it: the reload is refused naming the file, and the
#      old key keeps signing.  (Operators: keep key files owned by the
#      daemon user, mode 0600, if they must survive a reload; see
#      docs/reliability.md.)
#   4. refusals at start: as root without daemon.user (exit 78, EX_CONFIG,
#      "refusing to run as root"), with daemon.user = "root" (78), a
#      daemon.user that does not exist (67, EX_NOUSER); a second instance on
#      the live milter socket (69, EX_UNAVAILABLE, "another process is
#      listening") and one on the live TLS policy socket (71, EX_OSERR):
#      neither removes the first one's sockets, which still serve; a stale
#      socket file (nobody listening) is taken over.
#   5. no secret in any log line or event: the daemon runs at log_level 3,
#      signs, reloads with a broken and a truncated key; no 64-character
#      line of the private key's base64 body, and no "PRIVATE KEY", appears
#      in the daemon's log, its events, Postfix's log or the delivered mail.
#
# Needs what test_submission.sh needs, plus python3-dkim + python3-nacl
# (for mailauth-verify).  Prints one line per check and "N passed, N
# failed"; exits non-zero when a check failed.  IT_KEEP=1 keeps the scratch
# directory.

set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init security

it_need_verifier
BIN=$IT_BUILD/milter/outpolicyd
it_sanitizer_env

RUN=$$
CONF=$IT_DIR/outpolicyd.conf
KEYDIR=$IT_DIR/keys
ZONE=$IT_DIR/keys.zone
OUT=$IT_DIR/out
TSOCK=$IT_RUN/tlspolicy.sock
CLIENT=127.0.0.2
N=0
mkdir -p "$KEYDIR" "$OUT"
chmod 755 "$KEYDIR"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(getent group nogroup | cut -d: -f3)

# ------------------------------------------------------------ helpers

# config FILE ARGS... - a daemon config signing example.com with key dk
config()
{
    local f=$1
    shift
    it_daemon_config "$f" 'spf.enabled=false' 'dmarc.enabled=false' 'arc.enabled=false' \
        'daemon.log_level=3' \
        "submission_tls.exempt_hosts=[ \"$CLIENT\" ]" \
        "keys=( { id = \"dk\"; domain = \"example.com\"; selector = \"dk1\"; file = \"$KEYDIR/dk.pem\"; } )" \
        'dkim.signing=( { from = "example.com"; keys = [ "dk" ]; } )' \
        "tls_policy.socket=\"unix:$TSOCK\"" 'tls_policy.socket_mode="0640"' "$@"
}

# send_signed LABEL - one message; delivered with a DKIM signature that
# dkimpy verifies (selector dk1)
send_signed()
{
    local mid
    N=$((N + 1))
    mid="<s$N.$RUN@example.com>"
    it_swaks --local-interface "$CLIENT" --from alice@example.com \
        --header "From: Alice <alice@example.com>" --header "Message-Id: $mid" \
        --header "Subject: security $N" --body "message $N"
    it_sink_save "$1" "$mid" "$OUT/$N.eml" 20 || return 1
    it_check "$1: delivered, signed (s=dk1), dkimpy verifies" \
        it_verify_dkim "$ZONE" "$OUT/$N.eml" dk1
}

# status_field PID NAME - a line of /proc/PID/status without its name
status_field()
{
    sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s ' \t' ' ' | sed 's/ $//'
}

# reload - SIGHUP, wait for the outcome; LOGGED = that log line
reload()
{
    local n
    n=$(grep -cE 'reloaded configuration|reload refused' "$IT_DIR/outpolicyd.log")
    it_daemon_hup
    it_wait_for 10 reload_more "$n"
    LOGGED=$(grep -E 'reloaded configuration|reload refused' "$IT_DIR/outpolicyd.log" | tail -n 1)
}

reload_more()
{
    [ "$(grep -cE 'reloaded configuration|reload refused' "$IT_DIR/outpolicyd.log")" -gt "$1" ]
}

# start_other NAME CONF - run another outpolicyd in the foreground for at
# most 15 s; RC = its exit status, its output in $IT_DIR/NAME.log
start_other()
{
    timeout 15 "$BIN" -f -c "$2" >"$IT_DIR/$1.log" 2>&1
    RC=$?
    echo "    $1: exit $RC: $(grep -m1 -E 'fatal|error' "$IT_DIR/$1.log")"
}

# ------------------------------------------------------------ set-up

"$CTL" keygen --domain example.com --selector dk1 --out "$KEYDIR/dk.pem" \
    >"$KEYDIR/dk.txt" 2>>"$IT_DIR/keygen.log" || it_die "outpolicyctl keygen failed"
tr '\n()' '   ' <"$KEYDIR/dk.txt" | tr -s ' ' >"$ZONE"
printf '\n' >>"$ZONE"
cp -p "$KEYDIR/dk.pem" "$IT_DIR/dk.pem.orig"
# the key stays root's, mode 0600: the daemon user cannot read it
chown root:root "$KEYDIR/dk.pem"
chmod 0600 "$KEYDIR/dk.pem"
it_check "the daemon user cannot read the key file" \
    test -z "$(su nobody -s /bin/sh -c "cat '$KEYDIR/dk.pem'" 2>/dev/null)"

it_tls_cert
it_sink_start
config "$CONF"
it_daemon_start "$CONF" || it_die "outpolicyd did not start"
PID0=$IT_DAEMON_PID
IT_MILTER="unix:$IT_SOCK" it_postfix_start

# ------------------------------------------------------------ 1. privileges

echo "# 1. the running daemon's credentials"
want="$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID"
it_check_eq "Uid: real, effective, saved, fs all nobody" "$want" "$(status_field "$PID0" Uid)"
want="$NOBODY_GID $NOBODY_GID $NOBODY_GID $NOBODY_GID"
it_check_eq "Gid: real, effective, saved, fs all nogroup" "$want" "$(status_field "$PID0" Gid)"
it_check_eq "Groups: only nogroup" "$NOBODY_GID" "$(status_field "$PID0" Groups)"
it_check_eq "CapEff: none" 0000000000000000 "$(status_field "$PID0" CapEff)"
it_check_eq "CapPrm: none" 0000000000000000 "$(status_field "$PID0" CapPrm)"
bad=""
for t in /proc/"$PID0"/task/*; do
    [ "$(status_field "${t#/proc/}" Uid)" = "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" ] ||
        bad="$bad ${t##*/}"
done
it_check "every thread runs as nobody" test -z "$bad"
it_check_eq "pidfile owned by the user" "nobody" "$(stat -c %U "$IT_PIDFILE")"

# ------------------------------------------------------------ 2. sockets

echo "# 2. socket modes and groups"
it_check_eq "milter socket: 660 nobody:postfix" "660 nobody:postfix" \
    "$(stat -c '%a %U:%G' "$IT_SOCK")"
it_check_eq "TLS policy socket: 640 nobody:postfix" "640 nobody:postfix" \
    "$(stat -c '%a %U:%G' "$TSOCK")"

# ------------------------------------------------------------ 3. keys

echo "# 3. a root-only key: read before the privilege drop, not at reload"
send_signed "3: root-owned 0600 key at start"
reload
it_check "3: SIGHUP as the user: reload refused, the key file named ($LOGGED)" \
    grep -qE "reload refused: .*key file $KEYDIR/dk.pem: (cannot read: )?Permission denied" <<<"$LOGGED"
send_signed "3: after the refused reload the old key keeps signing"
it_check "3: outpolicyd is the same process" it_daemon_is "$PID0"

# ------------------------------------------------------------ 4. refusals

echo "# 4. refusals at start"
mkdir -p "$IT_DIR/other"
chown nobody:nogroup "$IT_DIR/other"
OTHER_SOCK=$IT_DIR/other/op.sock
OTHER_T=$IT_DIR/other/tls.sock
config "$IT_DIR/noroot.conf" 'daemon.user=""' 'daemon.group=""' \
    "daemon.socket=\"unix:$OTHER_SOCK\"" "daemon.pidfile=\"\"" "tls_policy.socket=\"\""
start_other noroot "$IT_DIR/noroot.conf"
it_check_eq "4a: as root without daemon.user: exit 78 (EX_CONFIG)" 78 "$RC"
it_check "4a: ... says why" grep -q 'refusing to run as root: set daemon.user' "$IT_DIR/noroot.log"
config "$IT_DIR/root.conf" 'daemon.user="root"' 'daemon.group=""' \
    "daemon.socket=\"unix:$OTHER_SOCK\"" "daemon.pidfile=\"\"" "tls_policy.socket=\"\""
start_other root "$IT_DIR/root.conf"
it_check_eq "4b: daemon.user = root: exit 78 (EX_CONFIG)" 78 "$RC"
it_check "4b: ... says why" grep -q 'daemon.user "root" is root' "$IT_DIR/root.log"
config "$IT_DIR/nouser.conf" 'daemon.user="no-such-user-outpolicy"' \
    "daemon.socket=\"unix:$OTHER_SOCK\"" "daemon.pidfile=\"\"" "tls_policy.socket=\"\""
start_other nouser "$IT_DIR/nouser.conf"
it_check_eq "4c: unknown daemon.user: exit 67 (EX_NOUSER)" 67 "$RC"
it_check "4c: no socket left behind by the refusals" test ! -e "$OTHER_SOCK"

# a second instance on the first one's live sockets
config "$IT_DIR/second.conf" "daemon.pidfile=\"$IT_DIR/other/op.pid\"" \
    "tls_policy.socket=\"unix:$OTHER_T\""
start_other second-milter "$IT_DIR/second.conf"
it_check_eq "4d: second instance on the live milter socket: exit 69 (EX_UNAVAILABLE)" 69 "$RC"
it_check "4d: ... says another process is listening" \
    grep -q "another process is listening on $IT_SOCK" "$IT_DIR/second-milter.log"
config "$IT_DIR/second-t.conf" "daemon.socket=\"unix:$OTHER_SOCK\"" \
    "daemon.pidfile=\"$IT_DIR/other/op.pid\""
start_other second-tls "$IT_DIR/second-t.conf"
it_check_eq "4e: second instance on the live TLS policy socket: exit 71 (EX_OSERR)" 71 "$RC"
it_check "4e: ... says another process is listening" \
    grep -q "tls_policy.socket unix:$TSOCK: another process is listening on it" "$IT_DIR/second-tls.log"
it_check "4e: ... and removed its own milter socket" test ! -e "$OTHER_SOCK"
it_check "4: the first instance's sockets are still there" test -S "$IT_SOCK" -a -S "$TSOCK"
it_check "4: the first instance is the same process" it_daemon_is "$PID0"
it_check_eq "4: its TLS policy socket still answers" '30:OK encrypt protocols=>=TLSv1.2,' \
    "$("$IT_PY" "$IT_SRC/tests/hostile/mapclient.py" "unix:$TSOCK" normal |
        "$IT_PY" -c 'import json,sys; print(json.load(sys.stdin)["reply"])')"
send_signed "4: the first instance still signs"

# a stale socket file (nobody listens on it) is taken over, with the
# user's group when daemon.socket_group is empty
"$IT_PY" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)' "$OTHER_SOCK"
it_check "4f: a stale socket file exists" test -S "$OTHER_SOCK"
config "$IT_DIR/stale.conf" "daemon.socket=\"unix:$OTHER_SOCK\"" \
    "daemon.pidfile=\"$IT_DIR/other/op.pid\"" 'daemon.socket_group=""' \
    'daemon.socket_mode="0600"' "tls_policy.socket=\"unix:$OTHER_T\"" \
    'tls_policy.socket_mode="0600"'
cp -p "$IT_DIR/dk.pem.orig" "$IT_DIR/other/dk.pem"
sed -i "s|$KEYDIR/dk.pem|$IT_DIR/other/dk.pem|" "$IT_DIR/stale.conf"
"$BIN" -f -c "$IT_DIR/stale.conf" >"$IT_DIR/stale.log" 2>&1 &
STALE_PID=$!
it_wait_for 10 test -S "$OTHER_T"
it_check "4f: an instance starts on the stale socket" it_wait_for 10 grep -q 'started' "$IT_DIR/stale.log"
it_check_eq "4f: its milter socket: 600 nobody:nogroup (empty socket_group)" "600 nobody:nogroup" \
    "$(stat -c '%a %U:%G' "$OTHER_SOCK" 2>/dev/null)"
it_check_eq "4f: its TLS policy socket: 600 nobody:nogroup" "600 nobody:nogroup" \
    "$(stat -c '%a %U:%G' "$OTHER_T" 2>/dev/null)"
it_stop_pid "$STALE_PID" 20
it_check_eq "4f: it stops cleanly" 0 "$?"
it_check "4f: and removes its sockets" test ! -e "$OTHER_SOCK" -a ! -e "$OTHER_T"

# ------------------------------------------------------------ 5. secrets

echo "# 5. no secret in any log line or event"
# the key, readable by the user now; then broken ways, each refused
cp -p "$IT_DIR/dk.pem.orig" "$KEYDIR/dk.pem"
chown nobody:nogroup "$KEYDIR/dk.pem"
reload
it_check "5: key owned by the user: reload accepted ($LOGGED)" grep -q 'reloaded configuration' <<<"$LOGGED"
send_signed "5: signed after the reload"
head -n 8 "$IT_DIR/dk.pem.orig" >"$KEYDIR/dk.pem"
reload
it_check "5: truncated key: reload refused" grep -q 'reload refused' <<<"$LOGGED"
sed '2s/^..../!!!!/' "$IT_DIR/dk.pem.orig" >"$KEYDIR/dk.pem"
reload
it_check "5: corrupted key: reload refused" grep -q 'reload refused' <<<"$LOGGED"
sed '1d;$d' "$IT_DIR/dk.pem.orig" >"$KEYDIR/dk.pem"     # base64 only, no PEM armour
reload
it_check "5: bare base64 key: reload refused" grep -q 'reload refused' <<<"$LOGGED"
send_signed "5: signed after the refused reloads"
it_daemon_stop
rc=$?
it_check_eq "outpolicyd stops cleanly (exit status)" 0 "$rc"

# every full 64-character line of the key's base64 body
grep -E '^[A-Za-z0-9+/]{64}$' "$IT_DIR/dk.pem.orig" >"$IT_DIR/secret-lines"
it_check "5: the key has base64 lines to look for ($(grep -c . "$IT_DIR/secret-lines"))" \
    test "$(grep -c . "$IT_DIR/secret-lines")" -ge 20
LOGS=("$IT_DIR/outpolicyd.log" "$IT_EVENTS" "$IT_DIR/postfix/maillog" "$IT_DIR"/*.log)
mapfile -t MAILS < <(it_sink_messages)
it_check "5: the logs and events are not empty" test -s "$IT_DIR/outpolicyd.log" -a -s "$IT_EVENTS"
# (the search itself must work: it finds a planted line)
sed -n 5p "$IT_DIR/secret-lines" >"$IT_DIR/planted.txt"
it_check "5: the search finds a planted key line" \
    test -n "$(grep -aFl -f "$IT_DIR/secret-lines" "$IT_DIR/planted.txt")"
rm -f "$IT_DIR/planted.txt"
it_check "5: no line of the private key in any log, event or delivered message" \
    test -z "$(grep -aFl -f "$IT_DIR/secret-lines" "${LOGS[@]}" "${MAILS[@]}" 2>/dev/null)"
it_check "5: no \"PRIVATE KEY\" in any log, event or delivered message" \
    test -z "$(grep -al 'PRIVATE KEY' "${LOGS[@]}" "${MAILS[@]}" 2>/dev/null)"
it_check "no sanitizer report in the daemon's log" it_sanitizer_reports
it_summary
