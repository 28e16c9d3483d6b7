# shellcheck shell=bash
# tests/integration/lib.sh - harness for outpolicy integration tests
#
# Sourced (never executed) by tests/integration/test_*.sh.  It runs, on
# loopback only and as root, a private Postfix instance, an smtp-sink that
# captures every delivered message, outpolicyd, and swaks as the client, and
# keeps pass/fail counters.  Nothing here touches the system Postfix.
#
# Usage (a test script):
#
#   . "$(dirname "$0")/lib.sh"
#   it_init submission                 # $IT_DIR, ports, EXIT trap
#   it_tls_cert                        # $IT_DIR/tls/{cert,key}.pem
#   it_sink_start                      # smtp-sink on 127.0.0.1:$IT_SINK_PORT
#   it_daemon_config "$IT_DIR/op.conf" mode='"monitor"'
#   it_daemon_start "$IT_DIR/op.conf"  # outpolicyd -f on $IT_SOCK
#   IT_MILTER="unix:$IT_SOCK" it_postfix_start
#   it_swaks --to bob@remote.test --tls --tls-protocol tlsv1_3
#   it_check "delivered" it_sink_wait 1 20
#   it_summary                         # "N passed, N failed"; status 1 if any failed
#
# Variables set by it_init (exported):
#   IT_NAME IT_DIR          test name, scratch dir (kept on failure or IT_KEEP=1)
#   IT_SRC IT_BUILD         repo root; build dir holding milter/outpolicyd
#                           (env OUTPOLICY_BUILD, default the repo root)
#   IT_SMTP_PORT            Postfix smtpd on 127.0.0.1
#   IT_SINK_PORT            smtp-sink on 127.0.0.1 (Postfix's relayhost)
#   IT_RUN                  $IT_DIR/run, owned by nobody: socket and pidfile
#                           live here so the daemon can remove them after it
#                           dropped privileges (like /run/outpolicy)
#   IT_SOCK IT_PIDFILE      outpolicyd's unix socket path and pidfile
#   IT_EVENTS               outpolicyd's JSON-lines event file
#
# Public functions:
#   it_init NAME, it_cleanup, it_require
#   it_tls_cert
#   it_sink_start, it_sink_stop, it_sink_messages, it_sink_count,
#     it_sink_wait N TIMEOUT, it_sink_grep ERE, it_sink_last,
#     it_sink_by_msgid MSGID, it_sink_wait_msgid MSGID TIMEOUT,
#     it_sink_message_body FILE [crlf], it_sink_header FILE NAME
#   it_postconf KEY=VALUE..., it_postfix_start, it_postfix_stop,
#     it_postfix_log, it_postfix_flush, it_postfix_queue_id_for MESSAGE-ID
#   it_daemon_config FILE [PATH=VALUE...] [OVERLAY_TEXT],
#     it_daemon_start CONFIG, it_daemon_stop, it_daemon_hup, it_daemon_usr1,
#     it_daemon_alive, it_daemon_log (start returns 1 if it exits or never
#     creates $IT_SOCK within 10 s; stop returns the exit status)
#   it_swaks ARGS..., it_swaks_saw TEXT, it_swaks_saw_re ERE,
#     it_swaks_reply_to VERB, it_swaks_tls_version, it_swaks_queue_id
#   it_events_query PYEXPR, it_event_field PYEXPR FIELD.PATH,
#     it_events_grep ERE, it_events_dump
#   it_ok LABEL, it_fail LABEL [DETAIL], it_skip LABEL REASON,
#     it_check LABEL CMD..., it_check_eq LABEL WANT GOT, it_summary
#   it_wait_for TIMEOUT CMD..., it_stop_pid PID [TIMEOUT], it_pid_gone PID,
#     it_pick_port VAR, it_port_free PORT, it_port_listening PORT
#   it_track_pid PID... (a test's own background processes, stopped on exit)
#   it_need_ctl (sets CTL), it_need_verifier (sets CTL and VERIFY)
#   it_postfix_base_cf DIR HOSTNAME RELAY_PORT MILTERS (also used by the
#     benchmarks in tests/bench), it_postfix_master [PORT]
#
# Every wait is bounded (count and seconds).  Only processes started here
# are signalled, by their recorded PIDs.

IT_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IT_BUILD=${OUTPOLICY_BUILD:-$IT_SRC}
SHARED=${OUTPOLICY_SHARED:-$IT_SRC/../shared}   # test data and tools of others
IT_PY=/usr/bin/python3          # Debian's, which sees python3-* modules
IT_PASS=0
IT_FAILED=0
IT_SKIPPED=0
IT_SINK_PID=
IT_DAEMON_PID=
IT_POSTFIX_UP=0
IT_SWAKS_N=0
IT_SWAKS_OUT=
IT_SWAKS_RC=
IT_POSTCONF_EXTRA=()
export IT_SRC IT_BUILD

# ---------------------------------------------------------------- basics

# it_log - print a harness message on stderr
it_log()
{
    printf '[it] %s\n' "$*" >&2
}

# it_die - abort the test (cleanup runs from the EXIT trap)
it_die()
{
    printf '[it] FATAL: %s\n' "$*" >&2
    IT_FAILED=$((IT_FAILED + 1))
    exit 2
}

# it_wait_for TIMEOUT CMD... - poll CMD every 0.1 s until it succeeds or
# TIMEOUT seconds (at most TIMEOUT*10 tries) have passed
it_wait_for()
{
    local timeout=$1 tries
    shift
    tries=$((timeout * 10))
    while [ "$tries" -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        tries=$((tries - 1))
    done
    "$@"
}

# it_port_free PORT - true when nothing uses PORT (TCP or UDP) on loopback
it_port_free()
{
    [ -z "$(ss -tanH "sport = :$1" 2>/dev/null)" ] &&
        [ -z "$(ss -uanH "sport = :$1" 2>/dev/null)" ] &&
        ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# it_pick_port VAR - set VAR to a free high TCP port not handed out before
it_pick_port()
{
    local i p
    for ((i = 0; i < 50; i++)); do
        # below the ephemeral range (32768-60999), so no client socket of
        # another test can be holding it
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        case " ${IT_PORTS_USED:-} " in *" $p "*) continue ;; esac
        if it_port_free "$p"; then
            IT_PORTS_USED="${IT_PORTS_USED:-} $p"
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    return 1
}

# it_require - the tools this harness runs; dies naming what is missing
it_require()
{
    local c missing=""
    [ "$(id -u)" -eq 0 ] || it_die "integration tests run as root (private Postfix)"
    for c in postfix postconf postqueue smtp-sink swaks saslpasswd2 openssl ss "$IT_PY"; do
        command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
    done
    [ -z "$missing" ] || it_die "missing commands:$missing (see contrib/install-deps.sh)"
    # swaks does STARTTLS only with Net::SSLeay (Debian: libnet-ssleay-perl)
    perl -MNet::SSLeay -e 1 2>/dev/null ||
        it_die "swaks cannot do TLS: install libnet-ssleay-perl"
}

# it_need_ctl - CTL: this build's outpolicyctl, or die
it_need_ctl()
{
    CTL=$IT_BUILD/ctl/outpolicyctl
    [ -x "$CTL" ] || it_die "no $CTL (set OUTPOLICY_BUILD)"
}

# it_need_verifier - CTL, and VERIFY: the independent DKIM/ARC verifier in
# ../shared with the Python modules it needs, or die
it_need_verifier()
{
    it_need_ctl
    VERIFY=$SHARED/tools/mailauth-verify
    [ -x "$VERIFY" ] || it_die "no $VERIFY (set OUTPOLICY_SHARED)"
    "$IT_PY" -c 'import dkim, nacl' 2>/dev/null ||
        it_die "mailauth-verify needs python3-dkim and python3-nacl"
}

# it_init NAME - scratch dir, ports, cleanup trap
it_init()
{
    IT_NAME=${1:?it_init NAME}
    it_require
    IT_DIR=$(mktemp -d /tmp/outpolicy-it.XXXXXX) || it_die "mktemp failed"
    chmod 755 "$IT_DIR"
    mkdir -p "$IT_DIR/swaks"
    IT_RUN=$IT_DIR/run
    IT_SOCK=$IT_RUN/outpolicyd.sock
    IT_PIDFILE=$IT_RUN/outpolicyd.pid
    IT_EVENTS=$IT_DIR/events/events.json
    mkdir -p "$IT_RUN" "$IT_DIR/events"
    chown nobody:nogroup "$IT_RUN" "$IT_DIR/events"
    it_pick_port IT_SMTP_PORT || it_die "no free port"
    it_pick_port IT_SINK_PORT || it_die "no free port"
    export IT_NAME IT_DIR IT_RUN IT_SOCK IT_PIDFILE IT_EVENTS
    export IT_SMTP_PORT IT_SINK_PORT
    trap it_cleanup EXIT
    trap 'exit 130' INT TERM
    it_log "$IT_NAME: dir $IT_DIR smtp $IT_SMTP_PORT sink $IT_SINK_PORT"
}

# it_track_pid PID... - background processes a test started itself (a log
# reader, a relay, a second server): it_cleanup stops them first, by PID
IT_TRACKED_PIDS=()
it_track_pid()
{
    IT_TRACKED_PIDS+=("$@")
}

# it_cleanup - stop everything started here; keep $IT_DIR on failure
it_cleanup()
{
    local rc=$? p
    trap - EXIT
    for p in "${IT_TRACKED_PIDS[@]}"; do
        it_stop_pid "$p" 5 >/dev/null 2>&1
    done
    [ -n "$IT_DAEMON_PID" ] && it_daemon_stop >/dev/null 2>&1
    [ "$IT_POSTFIX_UP" = 1 ] && it_postfix_stop >/dev/null 2>&1
    [ -n "$IT_SINK_PID" ] && it_sink_stop >/dev/null 2>&1
    if [ -n "${IT_DIR:-}" ] && [ -d "$IT_DIR" ]; then
        if [ "${IT_KEEP:-0}" = 1 ] || [ "$IT_FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
            it_log "kept $IT_DIR"
        else
            rm -rf "$IT_DIR"
        fi
    fi
    exit "$rc"
}

# it_stop_pid PID [TIMEOUT] - SIGTERM a child we started, wait for its exit
# (TIMEOUT seconds, default 10); prints nothing, returns its exit status (or
# 124 after SIGKILL); an empty PID is nothing to stop
it_stop_pid()
{
    local pid=$1 timeout=${2:-10}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return $?; }
    if ! it_wait_for "$timeout" it_pid_gone "$pid"; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 124
    fi
    wait "$pid" 2>/dev/null
}

# it_pid_gone PID - true when PID has exited (zombies count as gone)
it_pid_gone()
{
    local st
    [ -r "/proc/$1/stat" ] || return 0
    # the state follows the ")" that ends the command name (which may hold spaces)
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}

# ---------------------------------------------------------------- results

# it_diag - last lines of the daemon and Postfix logs, on stderr
it_diag()
{
    {
        if [ -s "$IT_DIR/outpolicyd.log" ]; then
            echo "    --- outpolicyd.log (last 8 lines)"
            tail -n 8 "$IT_DIR/outpolicyd.log" | sed 's/^/    | /'
        fi
        if [ -s "$IT_DIR/postfix/maillog" ]; then
            echo "    --- postfix maillog (last 8 lines)"
            tail -n 8 "$IT_DIR/postfix/maillog" | sed 's/^/    | /'
        fi
        if [ -n "$IT_SWAKS_OUT" ] && [ -s "$IT_SWAKS_OUT" ]; then
            echo "    --- last swaks transcript: $IT_SWAKS_OUT (rc $IT_SWAKS_RC)"
            grep -E '^ *(<-|<\*\*|\*\*\*)' "$IT_SWAKS_OUT" | tail -n 6 | sed 's/^/    | /'
        fi
    } >&2
}

it_ok()
{
    IT_PASS=$((IT_PASS + 1))
    printf 'ok   - %s\n' "$1"
}

# it_fail LABEL [DETAIL] - count a failure; the first IT_DIAG_MAX (5)
# failures also print the tails of the logs
it_fail()
{
    IT_FAILED=$((IT_FAILED + 1))
    printf 'FAIL - %s%s\n' "$1" "${2:+: $2}"
    if [ "$IT_FAILED" -le "${IT_DIAG_MAX:-5}" ]; then
        it_diag
    elif [ "$IT_FAILED" -eq $((${IT_DIAG_MAX:-5} + 1)) ]; then
        printf '    (no more log excerpts; see %s)\n' "$IT_DIR" >&2
    fi
}

# it_skip LABEL REASON - neither a pass nor a failure
it_skip()
{
    IT_SKIPPED=$((IT_SKIPPED + 1))
    printf 'SKIP: %s: %s\n' "$1" "$2"
}

# it_check LABEL CMD... - pass when CMD succeeds
it_check()
{
    local label=$1
    shift
    if "$@"; then
        it_ok "$label"
    else
        it_fail "$label" "command failed: $*"
    fi
}

# it_check_eq LABEL WANT GOT - pass when the two strings are equal
it_check_eq()
{
    if [ "$2" = "$3" ]; then
        it_ok "$1"
    else
        it_fail "$1" "want '$2', got '$3'"
    fi
}

# it_summary - one line "N passed, N failed"; non-zero when any failed
it_summary()
{
    printf '%d passed, %d failed\n' "$IT_PASS" "$IT_FAILED"
    [ "$IT_FAILED" -eq 0 ]
}

# ---------------------------------------------------------------- TLS

# it_tls_cert - self-signed RSA-2048 cert for mx.outpolicy.test
it_tls_cert()
{
    mkdir -p "$IT_DIR/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 \
        -subj "/CN=mx.outpolicy.test" \
        -addext "subjectAltName=DNS:mx.outpolicy.test" \
        -keyout "$IT_DIR/tls/key.pem" -out "$IT_DIR/tls/cert.pem" \
        >"$IT_DIR/tls/openssl.log" 2>&1 || it_die "openssl req failed"
    chmod 600 "$IT_DIR/tls/key.pem"
}

# ---------------------------------------------------------------- sink
#
# smtp-sink -d writes one file per mail transaction: first its own records
# (X-Client-Addr, X-Client-Proto, X-Helo-Args, X-Mail-Args, X-Rcpt-Args...),
# then a three-line "Received: ... (smtp-sink) ..." header, then the message
# as received (dot-unstuffed, LF line ends), then one empty line.

it_sink_start()
{
    mkdir -p "$IT_DIR/sink"
    chown nobody:nogroup "$IT_DIR/sink"
    smtp-sink -u nobody -h sink.outpolicy.test \
        -d "$IT_DIR/sink/%Y%m%d%H%M%S." \
        "127.0.0.1:$IT_SINK_PORT" 64 >"$IT_DIR/sink.log" 2>&1 &
    IT_SINK_PID=$!
    it_wait_for 10 it_port_listening "$IT_SINK_PORT" ||
        it_die "smtp-sink did not listen on $IT_SINK_PORT"
}

it_port_listening()
{
    [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]
}

it_sink_stop()
{
    [ -n "$IT_SINK_PID" ] || return 0
    it_stop_pid "$IT_SINK_PID" 10
    IT_SINK_PID=
}

# it_sink_messages - complete dump files, oldest first (files that smtp-sink
# still holds open are transactions in progress and are left out)
it_sink_messages()
{
    local f open=""
    [ -d "$IT_DIR/sink" ] || return 0
    if [ -n "$IT_SINK_PID" ] && [ -d "/proc/$IT_SINK_PID/fd" ]; then
        open=$(find "/proc/$IT_SINK_PID/fd" -mindepth 1 -printf '%l\n' 2>/dev/null)
    fi
    find "$IT_DIR/sink" -type f -printf '%T@ %p\n' | sort -n | cut -d' ' -f2- |
        while IFS= read -r f; do
            grep -qxF -- "$f" <<<"$open" || printf '%s\n' "$f"
        done
}

it_sink_count()
{
    it_sink_messages | grep -c .
}

# it_sink_wait N TIMEOUT - wait until at least N messages arrived
it_sink_wait()
{
    local n=$1
    it_wait_for "$2" it_sink_has "$n"
}

it_sink_has()
{
    [ "$(it_sink_count)" -ge "$1" ]
}

# it_sink_last - the newest complete dump file
it_sink_last()
{
    it_sink_messages | tail -n 1
}

# it_sink_grep ERE - dump files whose message contains a line matching ERE
it_sink_grep()
{
    local f
    it_sink_messages | while IFS= read -r f; do
        it_sink_message_body "$f" | grep -qE -- "$1" && printf '%s\n' "$f"
    done
}

# it_sink_by_msgid MESSAGE-ID - the dump file of the delivered message whose
# Message-ID header equals MESSAGE-ID (with angle brackets); status 1 if none
it_sink_by_msgid()
{
    local f
    while IFS= read -r f; do
        if [ "$(it_sink_header "$f" message-id | head -n 1)" = "$1" ]; then
            printf '%s\n' "$f"
            return 0
        fi
    done < <(it_sink_messages)
    return 1
}

# it_sink_wait_msgid MESSAGE-ID TIMEOUT - wait until that message arrived
it_sink_wait_msgid()
{
    it_wait_for "$2" it_sink_by_msgid "$1" >/dev/null
}

# it_mk_key DIR ZONE ID DOMAIN SELECTOR [rsa|ed25519] - a DKIM/ARC key made
# by outpolicyctl keygen (its default algorithm when none is given; RSA with
# --bits 2048) in DIR/ID.pem, its TXT record appended to the zone file ZONE
# on one line, the file handed to the daemon user (it re-reads keys on HUP)
it_mk_key()
{
    local dir=$1 zone=$2 id=$3 alg=()
    case ${6:-} in
    rsa) alg=(--algorithm rsa --bits 2048) ;;
    ?*) alg=(--algorithm "$6") ;;
    esac
    "$CTL" keygen --domain "$4" --selector "$5" "${alg[@]}" --out "$dir/$id.pem" \
        >"$dir/$id.txt" 2>>"$IT_DIR/keygen.log" ||
        it_die "outpolicyctl keygen $id failed: $(tail -n 2 "$IT_DIR/keygen.log")"
    tr '\n()' '   ' <"$dir/$id.txt" | tr -s ' ' >>"$zone"
    printf '\n' >>"$zone"
    chown nobody:nogroup "$dir/$id.pem"
}

# it_key_entry DIR ID DOMAIN SELECTOR [ALG] - one entry of the config's keys
# list for DIR/ID.pem (ALG default rsa-sha256)
it_key_entry()
{
    printf '{ id = "%s"; domain = "%s"; selector = "%s"; file = "%s"; algorithm = "%s"; }' \
        "$2" "$3" "$4" "$1/$2.pem" "${5:-rsa-sha256}"
}

# it_sink_save LABEL MESSAGE-ID FILE [TIMEOUT] - wait (TIMEOUT s, default 30)
# for the message at the sink and write it with CRLF line ends to FILE; when
# it does not come, an it_fail "LABEL: delivered to the sink" and status 1
it_sink_save()
{
    local f
    if ! it_sink_wait_msgid "$2" "${4:-30}"; then
        it_fail "$1: delivered to the sink" "no message with Message-Id $2${IT_SWAKS_RC:+ (last swaks rc $IT_SWAKS_RC: $(it_swaks_reply_to .))}"
        return 1
    fi
    f=$(it_sink_by_msgid "$2")
    it_sink_message_body "$f" crlf >"$3"
}

# it_verify_dkim ZONE FILE SELECTOR - mailauth-verify (dkimpy; $VERIFY from
# it_need_verifier) passes a DKIM signature with s=SELECTOR on FILE, with
# the keys of ZONE; its JSON report is left in FILE.json
it_verify_dkim()
{
    "$VERIFY" --zone "$1" --expect-dkim pass "$2" >"$2.json" 2>&1 &&
        grep -q "\"selector\": \"$3\"" "$2.json"
}

# it_sink_message_body FILE [crlf] - the message exactly as Postfix delivered
# it, without smtp-sink's records and trailing empty line; "crlf" converts
# line ends to CRLF (for verifiers that want wire form)
it_sink_message_body()
{
    local f=${1:?file} mode=${2:-lf}
    awk -v crlf="$([ "$mode" = crlf ] && echo 1 || echo 0)" '
        BEGIN { state = 0; pending = 0 }
        state == 0 && /^X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args): / { next }
        state == 0 && /^Received: / { state = 1; rcv = 0; next }
        state == 1 { rcv++; if (rcv == 2) state = 2; next }
        {
            if (pending) printf "%s%s", held, (crlf ? "\r\n" : "\n")
            held = $0; pending = 1
        }
        END { if (state != 2) exit 3 }
    ' "$f"
}

# it_sink_header FILE NAME - values of header field NAME in a delivered
# message (unfolded, one per line)
it_sink_header()
{
    it_sink_message_body "$1" | awk -v want="$2" '
        BEGIN { want = tolower(want) }
        /^$/ { exit }
        /^[ \t]/ { if (cur) val = val $0; next }
        { if (cur) print val; cur = 0
          i = index($0, ":"); name = tolower(substr($0, 1, i - 1))
          if (name == want) { cur = 1; val = substr($0, i + 1); sub(/^[ \t]+/, "", val) } }
        END { if (cur) print val }'
}

# ---------------------------------------------------------------- Postfix

# it_postconf KEY=VALUE... - extra main.cf lines for the next it_postfix_start
# (applied with postconf -e after the base, so they override it)
it_postconf()
{
    IT_POSTCONF_EXTRA+=("$@")
}

# it_postfix_base_cf DIR HOSTNAME RELAY_PORT MILTERS - the main.cf lines every
# private instance shares (tests and benchmarks): queue and log under DIR, no
# DNS, everything relayed to the sink on 127.0.0.1:RELAY_PORT, smtpd_milters =
# MILTERS with tempfail when the milter fails, the macros outpolicyd reads
it_postfix_base_cf()
{
    local pf=$1 host=$2 relay=$3 milters=$4
    cat <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = $host
mydomain = ${host#*.}
myorigin = \$mydomain
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$relay
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtp_tls_security_level = none
biff = no
delay_warning_time = 0
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 10s
maillog_file = $pf/maillog
smtpd_milters = $milters
non_smtpd_milters =
milter_default_action = tempfail
milter_protocol = 6
milter_connect_macros = j {daemon_name} {daemon_addr} {client_addr} {client_name}
milter_helo_macros = {tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}
milter_mail_macros = i {auth_type} {auth_authen} {auth_author} {mail_addr} {tls_version} {cipher} {cipher_bits}
milter_end_of_data_macros = i
EOF
}

# it_postfix_main - write the instance's main.cf: the shared lines, STARTTLS
# (TLS 1.0 and up, so tests can offer old versions) and SASL AUTH
it_postfix_main()
{
    local pf=$IT_DIR/postfix
    echo "# private outpolicy test instance ($IT_NAME)"
    it_postfix_base_cf "$pf" mx.outpolicy.test "$IT_SINK_PORT" "${IT_MILTER:-}"
    cat <<EOF
# no rewriting of address headers from local clients: the milter must see
# what the client sent (e.g. an unparseable From:)
local_header_rewrite_clients =
maillog_file_prefixes = /var, /dev/stdout, $pf
smtpd_banner = \$myhostname ESMTP outpolicy-test
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination
smtpd_tls_cert_file = $IT_DIR/tls/cert.pem
smtpd_tls_key_file = $IT_DIR/tls/key.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_protocols = >=TLSv1
smtpd_tls_mandatory_protocols = >=TLSv1
smtpd_tls_ciphers = medium
tls_medium_cipherlist = DEFAULT:@SECLEVEL=0
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $pf/etc/sasl
smtpd_tls_auth_only = no
smtpd_sasl_authenticated_header = yes
EOF
}

# it_postfix_master [PORT] - write master.cf: no chroot, smtpd on loopback
# only, on PORT (default $IT_SMTP_PORT)
it_postfix_master()
{
    cat <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:${1:-$IT_SMTP_PORT} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# it_sasl_setup - sasldb with alice@outpolicy.test / secret.  Debian's
# Postfix ignores cyrus_sasl_config_path and reads $config_directory/sasl/
# smtpd.conf; upstream reads cyrus_sasl_config_path: main.cf points that to
# the same directory, so both find it.
it_sasl_setup()
{
    local d=$IT_DIR/sasl conf=$IT_DIR/postfix/etc/sasl
    mkdir -p "$d" "$conf"
    cat >"$conf/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $d/sasldb2
mech_list: PLAIN LOGIN
EOF
    echo secret | saslpasswd2 -p -c -f "$d/sasldb2" -u outpolicy.test alice ||
        it_die "saslpasswd2 failed"
    chown root:postfix "$d/sasldb2"
    chmod 640 "$d/sasldb2"
    chmod 755 "$d" "$conf"
}

# it_postfix_start - configure and start the private instance; the milter is
# $IT_MILTER (empty = none), extra main.cf lines come from it_postconf and
# $IT_POSTFIX_EXTRA (newline-separated KEY=VALUE)
it_postfix_start()
{
    local pf=$IT_DIR/postfix kv
    mkdir -p "$pf/etc" "$pf/queue" "$pf/data"
    [ -f "$IT_DIR/tls/cert.pem" ] || it_tls_cert
    [ -f "$IT_DIR/sasl/sasldb2" ] || it_sasl_setup
    it_postfix_main >"$pf/etc/main.cf"
    it_postfix_master >"$pf/etc/master.cf"
    for kv in "${IT_POSTCONF_EXTRA[@]}"; do
        postconf -c "$pf/etc" -e "$kv" || it_die "postconf -e '$kv' failed"
    done
    if [ -n "${IT_POSTFIX_EXTRA:-}" ]; then
        while IFS= read -r kv; do
            [ -n "$kv" ] || continue
            postconf -c "$pf/etc" -e "$kv" || it_die "postconf -e '$kv' failed"
        done <<<"$IT_POSTFIX_EXTRA"
    fi
    touch "$pf/maillog"
    postfix -c "$pf/etc" set-permissions >"$pf/set-permissions.log" 2>&1 ||
        it_die "postfix set-permissions failed: $(tail -n 3 "$pf/set-permissions.log")"
    postfix -c "$pf/etc" check >"$pf/check.log" 2>&1 ||
        it_die "postfix check failed: $(tail -n 3 "$pf/check.log")"
    postfix -c "$pf/etc" start >"$pf/start.log" 2>&1 ||
        it_die "postfix start failed: $(tail -n 3 "$pf/start.log")"
    IT_POSTFIX_UP=1
    it_wait_for 20 it_port_listening "$IT_SMTP_PORT" ||
        it_die "postfix smtpd not listening on $IT_SMTP_PORT"
}

# it_postfix_master_pid - PID of the instance's master, empty if none
it_postfix_master_pid()
{
    local f=$IT_DIR/postfix/queue/pid/master.pid pid
    [ -r "$f" ] || return 1
    pid=$(tr -d ' \n' <"$f")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] && echo "$pid"
}

it_postfix_stop()
{
    local pf=$IT_DIR/postfix pid
    [ "$IT_POSTFIX_UP" = 1 ] || return 0
    pid=$(it_postfix_master_pid)
    postfix -c "$pf/etc" stop >/dev/null 2>&1
    if [ -n "$pid" ] && ! it_wait_for 15 it_pid_gone "$pid"; then
        it_log "postfix master $pid still running after stop"
        return 1
    fi
    IT_POSTFIX_UP=0
}

it_postfix_log()
{
    cat "$IT_DIR/postfix/maillog" 2>/dev/null
}

# it_postfix_flush - ask the queue manager to retry deferred mail now
it_postfix_flush()
{
    postqueue -c "$IT_DIR/postfix/etc" -f
}

# it_postfix_queue_id_for MESSAGE-ID - queue ID that cleanup logged for a
# Message-ID (with or without angle brackets)
it_postfix_queue_id_for()
{
    local mid=${1#<}
    mid=${mid%>}
    it_postfix_log | awk -v want="message-id=<$mid>" '
        $0 ~ /postfix\/cleanup\[/ && index($0, want) {
            for (i = 1; i <= NF; i++) if ($i ~ /^[0-9A-F]+:$/) { sub(/:$/, "", $i); print $i; exit }
        }'
}

# ---------------------------------------------------------------- outpolicyd
#
# it_daemon_config FILE [PATH=VALUE...] [OVERLAY_TEXT]
#
# Writes a complete libconfig file.  The base settings below run in this
# harness; each PATH=VALUE argument (no spaces around "=") replaces a base
# setting or adds one: PATH is "key" (top level) or "section.key", VALUE is
# libconfig text, so strings carry their quotes:
#     mode='"monitor"'  outbound.internal_hosts='[ "127.0.0.2/32" ]'
# A new section.key creates that section; an empty VALUE ("PATH=") leaves
# the setting out (to test a default).  Any other argument is appended
# verbatim after the sections (for whole new sections, comments, or a
# deliberately broken line).  Settings are written one per line, so a
# setting's line number can be found with grep -n.

IT_CFG_BASE=(
    'mode="enforce"'
    'on_error="tempfail"'
    'daemon.socket=@SOCKET@'
    'daemon.socket_mode="0660"'
    'daemon.socket_group="postfix"'
    'daemon.user="nobody"'
    'daemon.group="nogroup"'
    'daemon.pidfile=@PIDFILE@'
    'daemon.log_level=2'
    'daemon.shutdown_timeout=5'
    'outbound.internal_hosts=[ "127.0.0.0/8" ]'
    'outbound.authenticated=true'
    'submission_tls.min_version="TLSv1.2"'
    'submission_tls.action="reject"'
    'submission_tls.exempt_hosts=[ ]'
    'tls_required.strip=true'
    'tls_required.keep_for_senders=[ ]'
    'events.file=@EVENTS@'
    'events.syslog=false'
    'events.on_error="accept"'
    # events are written at once here, so a check right after a message
    # sees them; test_submission covers the (default) buffered sink
    'events.buffer=false'
)

it_daemon_config()
{
    local file=${1:?it_daemon_config FILE}
    shift
    local -a keys=() vals=() overlay=()
    local arg k v i found sec cur
    for arg in "${IT_CFG_BASE[@]}" "$@"; do
        if [[ $arg =~ ^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?= ]]; then
            k=${arg%%=*}
            v=${arg#*=}
            v=${v//@SOCKET@/\"unix:$IT_SOCK\"}
            v=${v//@PIDFILE@/\"$IT_PIDFILE\"}
            v=${v//@EVENTS@/\"$IT_EVENTS\"}
            found=0
            for i in "${!keys[@]}"; do
                if [ "${keys[$i]}" = "$k" ]; then
                    vals[i]=$v
                    found=1
                fi
            done
            if [ "$found" = 0 ]; then
                keys+=("$k")
                vals+=("$v")
            fi
        else
            overlay+=("$arg")
        fi
    done
    {
        echo "# outpolicyd test config ($IT_NAME), written by it_daemon_config"
        for i in "${!keys[@]}"; do
            [[ ${keys[$i]} == *.* ]] || [ -z "${vals[$i]}" ] ||
                echo "${keys[$i]} = ${vals[$i]};"
        done
        cur=
        for sec in "${keys[@]}"; do
            [[ $sec == *.* ]] || continue
            sec=${sec%%.*}
            case " $cur " in *" $sec "*) continue ;; esac
            cur="$cur $sec"
            echo "$sec = {"
            for i in "${!keys[@]}"; do
                [ "${keys[$i]%%.*}" = "$sec" ] && [[ ${keys[$i]} == *.* ]] &&
                    [ -n "${vals[$i]}" ] && echo "    ${keys[$i]#*.} = ${vals[$i]};"
            done
            echo "};"
        done
        for arg in "${overlay[@]}"; do
            printf '%s\n' "$arg"
        done
    } >"$file.tmp" && mv -f "$file.tmp" "$file"
    chmod 644 "$file"
}

# it_daemon_start CONFIG - start outpolicyd in the foreground (background job)
it_daemon_start()
{
    local conf=${1:?it_daemon_start CONFIG} bin=$IT_BUILD/milter/outpolicyd
    [ -x "$bin" ] || it_die "no daemon binary at $bin (set OUTPOLICY_BUILD)"
    [ -z "$IT_DAEMON_PID" ] || it_die "outpolicyd already started ($IT_DAEMON_PID)"
    "$bin" -f -c "$conf" >>"$IT_DIR/outpolicyd.log" 2>&1 &
    IT_DAEMON_PID=$!
    it_wait_for 10 it_daemon_settled
    if ! it_daemon_alive; then
        wait "$IT_DAEMON_PID"
        it_log "outpolicyd exited with status $? at start-up"
        IT_DAEMON_PID=
        it_diag
        return 1
    fi
    if [ ! -S "$IT_SOCK" ]; then
        it_log "outpolicyd did not create $IT_SOCK"
        it_diag
        return 1
    fi
}

# it_daemon_settled - the socket exists, or the daemon has already exited
it_daemon_settled()
{
    [ -S "$IT_SOCK" ] || ! it_daemon_alive
}

it_daemon_alive()
{
    [ -n "$IT_DAEMON_PID" ] && ! it_pid_gone "$IT_DAEMON_PID"
}

# it_daemon_stop - SIGTERM, wait (bounded), return the daemon's exit status
it_daemon_stop()
{
    local rc
    [ -n "$IT_DAEMON_PID" ] || return 0
    it_stop_pid "$IT_DAEMON_PID" 20
    rc=$?
    IT_DAEMON_PID=
    return "$rc"
}

it_daemon_hup()
{
    kill -HUP "${IT_DAEMON_PID:?no daemon}"
}

it_daemon_usr1()
{
    kill -USR1 "${IT_DAEMON_PID:?no daemon}"
}

it_daemon_log()
{
    cat "$IT_DIR/outpolicyd.log" 2>/dev/null
}

# ---------------------------------------------------------------- swaks

# it_swaks ARGS... - one SMTP transaction against the private Postfix.
# Defaults (overridable, swaks keeps the last value given): --server/--port,
# --timeout 30, --helo client.outpolicy.test, --from sender@outpolicy.test,
# --to rcpt@remote.test.  Sets IT_SWAKS_OUT (transcript) and IT_SWAKS_RC;
# returns swaks' status.
it_swaks()
{
    IT_SWAKS_N=$((IT_SWAKS_N + 1))
    IT_SWAKS_OUT=$IT_DIR/swaks/$(printf '%03d' "$IT_SWAKS_N").txt
    swaks --server 127.0.0.1 --port "$IT_SMTP_PORT" --timeout 30 \
        --helo client.outpolicy.test --from sender@outpolicy.test \
        --to rcpt@remote.test "$@" >"$IT_SWAKS_OUT" 2>&1
    IT_SWAKS_RC=$?
    return "$IT_SWAKS_RC"
}

# it_swaks_saw TEXT - the last transcript contains TEXT (fixed string)
it_swaks_saw()
{
    grep -qF -- "$1" "$IT_SWAKS_OUT"
}

# it_swaks_saw_re ERE - the last transcript has a line matching ERE
it_swaks_saw_re()
{
    grep -qE -- "$1" "$IT_SWAKS_OUT"
}

# it_swaks_reply_to VERB - the server's (last) reply line to the last
# client command starting with VERB (e.g. "MAIL FROM", "RCPT TO", ".")
it_swaks_reply_to()
{
    awk -v verb="$1" '
        /^ *(->|~>) / { cmd = $0; sub(/^ *(->|~>) /, "", cmd)
                        want = (substr(cmd, 1, length(verb)) == verb); next }
        want && /^ *(<-|<~|<\*\*|<~\*) / { line = $0; sub(/^ *[<~*-]+ +/, "", line); last = line
                                          if (line !~ /^[0-9][0-9][0-9]-/) want = 0 }
        END { if (last != "") print last; else exit 1 }' "$IT_SWAKS_OUT"
}

# it_swaks_tls_version - protocol swaks negotiated ("TLSv1.3"...), empty if none
it_swaks_tls_version()
{
    sed -n 's/^=== TLS started with cipher \(TLSv[0-9.]*\):.*/\1/p' "$IT_SWAKS_OUT" | tail -n 1
}

# it_swaks_queue_id - queue ID from the last "250 ... queued as ID" reply
it_swaks_queue_id()
{
    sed -n 's/^ *<[-~] *250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$IT_SWAKS_OUT" | tail -n 1
}

# ---------------------------------------------------------------- events

# it_events_query PYEXPR - number of events e (a dict) for which PYEXPR is
# true; g(e, "a.b.c") reads a nested field (None when missing)
it_events_query()
{
    it_events_py count "$1"
}

# it_event_field PYEXPR PATH - PATH of the last event matching PYEXPR;
# strings print raw, other values as JSON; status 1 when no event matches
it_event_field()
{
    it_events_py field "$1" "$2"
}

# it_events_grep ERE - raw event lines matching ERE
it_events_grep()
{
    grep -E -- "$1" "$IT_EVENTS" 2>/dev/null
}

# it_events_dump - the events file, one event per line
it_events_dump()
{
    cat "$IT_EVENTS" 2>/dev/null
}

it_events_py()
{
    "$IT_PY" - "$IT_EVENTS" "$@" <<'EOF'
import json, sys

path, op, expr = sys.argv[1], sys.argv[2], sys.argv[3]


def g(e, dotted):
    for part in dotted.split("."):
        if not isinstance(e, dict) or part not in e:
            return None
        e = e[part]
    return e


events = []
try:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    events.append(json.loads(line))
                except ValueError as err:
                    sys.stderr.write("events line %d is not JSON: %s\n" % (n, err))
                    sys.exit(2)
except FileNotFoundError:
    pass
code = compile(expr, "<expr>", "eval")


def ok(e):
    try:
        return bool(eval(code, {"g": g, "e": e}))
    except (KeyError, TypeError, IndexError, AttributeError):
        return False


hits = [e for e in events if ok(e)]
if op == "count":
    print(len(hits))
else:
    if not hits:
        sys.exit(1)
    v = g(hits[-1], sys.argv[4])
    print(v if isinstance(v, str) else json.dumps(v))
EOF
}

# ---------------------------------------------------------------- DNS
#
# A DNS server on loopback serving the test zones: Debian's unbound with
# local data only.  "." is a static local zone, so a name given no record
# is NXDOMAIN and a name with records of other types only is NODATA (also
# an empty non-terminal such as example.com when only _dmarc.example.com
# has data).  Records are zone-file lines "NAME [TTL] [IN] TYPE RDATA",
# TXT strings in double quotes ("a" "b" are two strings of one record);
# blank lines and lines starting with "#" are ignored.
#
#   it_dns_zone 'example.com. 300 IN TXT "v=spf1 ip4:192.0.2.10 -all"' ...
#   it_dns_zone -f FILE            more records from a file
#   it_dns_start                   unbound on 127.0.0.1:$IT_DNS_PORT (UDP and
#                                  TCP, exported); dns.nameservers entry is
#                                  "127.0.0.1@$IT_DNS_PORT"; returns 1 when it
#                                  does not answer within 10 s
#   it_dns_restart                 serve the records added since (same port)
#   it_dns_query NAME TYPE         "RCODE N" (e.g. "NOERROR 1", "NXDOMAIN 0")
#   it_dns_stop
#   it_dns_dead_port VAR           VAR = a port where nothing listens (UDP and
#                                  TCP): an unreachable DNS server
#   it_dns_slow_start DELAY        a UDP proxy on 127.0.0.1:$IT_DNS_SLOW_PORT
#                                  (exported) that forwards each query to the
#                                  server after DELAY seconds; DELAY "drop"
#                                  never answers.  Logs to $IT_DNS_DIR/slow.log
#   it_dns_slow_stop
#
# Name the test zones under example.com, *.example, co.uk...: outpolicyd's
# resolver (libunbound) answers NXDOMAIN itself, without asking this
# server, for test., invalid., onion., home.arpa., localhost. and the
# AS112 / documentation reverse zones (10.in-addr.arpa, 168.192.in-addr.arpa,
# 2.0.192.in-addr.arpa, 8.b.d.0.1.0.0.2.ip6.arpa ...).
#
# unbound logs every query it answers to $IT_DNS_DIR/unbound.log
# (it_dns_queried NAME [TYPE] tells whether NAME was asked for).  The
# servers started here are stopped on exit (it_dns_start wraps the EXIT
# trap of it_init around them), by their recorded PIDs only.

IT_DNS_PID=
IT_DNS_PORT=
IT_DNS_SLOW_PID=
IT_DNS_SLOW_PORT=
IT_DNS_TRAP=0

# it_dns_dir - $IT_DNS_DIR, created on first use
it_dns_dir()
{
    IT_DNS_DIR=$IT_DIR/dns
    IT_DNS_ZONE=$IT_DNS_DIR/zone.txt
    export IT_DNS_DIR
    [ -d "$IT_DNS_DIR" ] || mkdir -p "$IT_DNS_DIR"
    [ -f "$IT_DNS_ZONE" ] || : >"$IT_DNS_ZONE"
    [ -f "$IT_DNS_DIR/dnstool.py" ] || it_dns_tool
}

# it_dns_zone LINE... | -f FILE - records for the next it_dns_start
it_dns_zone()
{
    it_dns_dir
    if [ "${1:-}" = -f ]; then
        [ -r "${2:-}" ] || it_die "it_dns_zone: cannot read '${2:-}'"
        cat "$2" >>"$IT_DNS_ZONE"
        printf '\n' >>"$IT_DNS_ZONE"
        return 0
    fi
    printf '%s\n' "$@" >>"$IT_DNS_ZONE"
}

# it_dns_udp_free PORT - nothing bound to UDP PORT
it_dns_udp_free()
{
    [ -z "$(ss -lunH "sport = :$1" 2>/dev/null)" ]
}

# it_dns_pick_port VAR - a port free for both TCP and UDP
it_dns_pick_port()
{
    local n it_dns_port_
    for ((n = 0; n < 20; n++)); do
        # (it_pick_port has locals i and p: pass it a name they cannot hide)
        it_pick_port it_dns_port_ || return 1
        if it_dns_udp_free "$it_dns_port_"; then
            printf -v "$1" '%s' "$it_dns_port_"
            return 0
        fi
    done
    return 1
}

# it_dns_dead_port VAR - a port nothing listens on, kept from later picks
it_dns_dead_port()
{
    it_dns_pick_port "$1"
}

# it_dns_server_cf PORT DIR - the "server:" lines of a loopback test unbound
# (also used by test_check_domain.sh's DNSSEC server): 127.0.0.1@PORT, in the
# foreground, no root, chroot, syslog or IPv6, every query logged
it_dns_server_cf()
{
    cat <<EOF
server:
  interface: 127.0.0.1@$1
  port: $1
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$2"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  log-queries: yes
  num-threads: 1
  so-reuseport: no
  module-config: "iterator"
  do-not-query-localhost: no
  minimal-responses: yes
EOF
}

# it_dns_conf - unbound.conf for the records in $IT_DNS_ZONE
it_dns_conf()
{
    echo "# loopback test DNS server ($IT_NAME), written by it_dns_start"
    it_dns_server_cf "$IT_DNS_PORT" "$IT_DNS_DIR"
    cat <<EOF
  rrset-roundrobin: no
  local-zone: "." static
EOF
    it_dns_py local-data "$IT_DNS_ZONE" || return 1
    printf 'remote-control:\n  control-enable: no\n'
}

# it_dns_query NAME TYPE [PORT] - one UDP query (default: the server);
# prints "RCODE ANSWERS" or "TIMEOUT"; status 0 when an answer came
it_dns_query()
{
    it_dns_py query "${3:-$IT_DNS_PORT}" "$1" "$2"
}

# it_dns_answers PORT - the server at PORT answers (any rcode)
it_dns_answers()
{
    it_dns_py query "$1" outpolicy-probe.invalid A >/dev/null 2>&1
}

# it_dns_start - start unbound with the zone; exports IT_DNS_PORT
it_dns_start()
{
    it_dns_dir
    command -v unbound >/dev/null 2>&1 || it_die "no unbound (Debian: unbound)"
    [ -z "$IT_DNS_PID" ] || it_die "it_dns_start: unbound already running ($IT_DNS_PID)"
    [ -n "$IT_DNS_PORT" ] || it_dns_pick_port IT_DNS_PORT || it_die "no free port for DNS"
    export IT_DNS_PORT
    it_dns_conf >"$IT_DNS_DIR/unbound.conf" || return 1
    if command -v unbound-checkconf >/dev/null 2>&1 &&
        ! unbound-checkconf "$IT_DNS_DIR/unbound.conf" >"$IT_DNS_DIR/checkconf.log" 2>&1; then
        it_log "unbound-checkconf: $(head -n 3 "$IT_DNS_DIR/checkconf.log")"
        return 1
    fi
    it_dns_trap
    unbound -d -c "$IT_DNS_DIR/unbound.conf" >>"$IT_DNS_DIR/unbound.log" 2>&1 &
    IT_DNS_PID=$!
    if ! it_wait_for 10 it_dns_answers "$IT_DNS_PORT"; then
        it_log "unbound does not answer on 127.0.0.1:$IT_DNS_PORT: $(tail -n 3 "$IT_DNS_DIR/unbound.log")"
        it_dns_stop
        return 1
    fi
}

# it_dns_restart - reload the zone (stop, start on the same port)
it_dns_restart()
{
    it_dns_stop
    it_wait_for 5 it_dns_udp_free "$IT_DNS_PORT"
    it_dns_start
}

it_dns_stop()
{
    [ -n "$IT_DNS_PID" ] || return 0
    it_stop_pid "$IT_DNS_PID" 10
    IT_DNS_PID=
}

# it_dns_queried NAME [TYPE] - unbound's log shows a query for NAME
it_dns_queried()
{
    grep -qiE -- " info: 127\.0\.0\.1 ${1//./\\.}\.? ${2:-[A-Z0-9]+} IN" \
        "$IT_DNS_DIR/unbound.log" 2>/dev/null
}

# it_dns_slow_start DELAY - the delaying proxy; exports IT_DNS_SLOW_PORT
it_dns_slow_start()
{
    local delay=${1:?it_dns_slow_start DELAY|drop}
    it_dns_dir
    [ -z "$IT_DNS_SLOW_PID" ] || it_die "slow DNS proxy already running ($IT_DNS_SLOW_PID)"
    it_dns_pick_port IT_DNS_SLOW_PORT || it_die "no free port for the slow DNS proxy"
    export IT_DNS_SLOW_PORT
    it_dns_trap
    "$IT_PY" "$IT_DNS_DIR/dnstool.py" slow "$IT_DNS_SLOW_PORT" "${IT_DNS_PORT:-0}" \
        "$delay" >>"$IT_DNS_DIR/slow.log" 2>&1 &
    IT_DNS_SLOW_PID=$!
    if ! it_wait_for 10 it_dns_udp_bound "$IT_DNS_SLOW_PORT"; then
        it_log "slow DNS proxy did not bind: $(tail -n 3 "$IT_DNS_DIR/slow.log")"
        it_dns_slow_stop
        return 1
    fi
}

it_dns_udp_bound()
{
    ! it_dns_udp_free "$1"
}

it_dns_slow_stop()
{
    [ -n "$IT_DNS_SLOW_PID" ] || return 0
    it_stop_pid "$IT_DNS_SLOW_PID" 10
    IT_DNS_SLOW_PID=
}

# it_dns_trap - stop the DNS servers on exit, before it_init's cleanup
it_dns_trap()
{
    [ "$IT_DNS_TRAP" = 1 ] && return 0
    IT_DNS_TRAP=1
    trap it_dns_on_exit EXIT
}

it_dns_on_exit()
{
    local rc=$?
    it_dns_slow_stop >/dev/null 2>&1
    it_dns_stop >/dev/null 2>&1
    (exit "$rc")
    it_cleanup
}

# it_dns_py query PORT NAME TYPE | slow PORT UPSTREAM-PORT DELAY
it_dns_py()
{
    it_dns_dir
    "$IT_PY" "$IT_DNS_DIR/dnstool.py" "$@"
}

# it_dns_tool - write $IT_DNS_DIR/dnstool.py (a file, so that a background
# proxy is python itself and its PID is the one recorded)
it_dns_tool()
{
    cat >"$IT_DNS_DIR/dnstool.py" <<'EOF'
import random, socket, struct, sys, threading, time

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15,
         "TXT": 16, "AAAA": 28, "SPF": 99}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN",
          4: "NOTIMP", 5: "REFUSED"}


def qname(data):
    """The question name of a DNS message (for the log)."""
    labels, i = [], 12
    while i < len(data) and data[i]:
        n = data[i]
        labels.append(data[i + 1:i + 1 + n].decode("latin-1"))
        i += 1 + n
    qt = struct.unpack(">H", data[i + 1:i + 3])[0] if i + 3 <= len(data) else 0
    return ".".join(labels) + ".", qt


def split_strings(rdata):
    """Quoted strings over 255 octets become several strings (as a zone's
    publisher would write them); a single quote becomes \\039."""
    out, i, n = [], 0, len(rdata)
    while i < n:
        c = rdata[i]
        if c != '"':
            out.append(c)
            i += 1
            continue
        j, units = i + 1, []
        while j < n and rdata[j] != '"':
            k = j + (4 if rdata[j] == "\\" and rdata[j + 1:j + 4].isdigit()
                     else 2 if rdata[j] == "\\" else 1)
            units.append(rdata[j:k])
            j = k
        for s in range(0, max(len(units), 1), 255):
            out.append('"' + "".join(units[s:s + 255]) + '"')
            if s + 255 < len(units):
                out.append(" ")
        i = j + 1
    return "".join(out).replace("'", "\\039")


def local_data(path):
    """unbound local-data lines for a zone file of one-line records."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            print("  local-data: '%s'" % split_strings(line))
    return 0


def query(port, name, qtype):
    qid = random.randrange(65536)
    pkt = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        pkt += bytes([len(label)]) + label.encode()
    pkt += b"\0" + struct.pack(">HH", TYPES.get(qtype.upper(), 0) or int(qtype), 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    try:
        s.sendto(pkt, ("127.0.0.1", port))
        while True:
            d = s.recv(65535)
            if len(d) >= 12 and struct.unpack(">H", d[:2])[0] == qid:
                break
    except OSError:
        print("TIMEOUT")
        return 1
    rcode = d[3] & 15
    print(RCODES.get(rcode, str(rcode)), struct.unpack(">H", d[6:8])[0])
    return 0


def slow(port, upstream, delay):
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", port))
    print("slow proxy on %d -> %d, delay %s" % (port, upstream, delay), flush=True)

    def handle(data, peer):
        name, qt = qname(data)
        t0 = time.time()
        print("%.3f query %s type %d from %s" % (t0, name, qt, peer[1]), flush=True)
        if delay == "drop" or upstream == 0:
            return
        time.sleep(float(delay))
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(3)
        try:
            up.sendto(data, ("127.0.0.1", upstream))
            answer = up.recv(65535)
        except OSError as err:
            print("upstream: %s" % err, flush=True)
            return
        srv.sendto(answer, peer)
        print("%.3f answered %s after %.1f s" % (time.time(), name, time.time() - t0),
              flush=True)

    while True:
        data, peer = srv.recvfrom(65535)
        threading.Thread(target=handle, args=(data, peer), daemon=True).start()


op = sys.argv[1]
if op == "local-data":
    sys.exit(local_data(sys.argv[2]))
if op == "query":
    sys.exit(query(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
slow(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
EOF
}

# ---------------------------------------------------------------- second instance
#
# A second Postfix instance with its own outpolicyd, for tests that need two
# gateways in series (ARC multi-hop).  Its files live under
# $IT2_DIR = $IT_DIR/second (postfix/, run/, events/, swaks/, tls/, sasl/,
# outpolicyd.log); its smtpd listens on 127.0.0.1:$IT2_SMTP_PORT, it calls
# itself mx2.outpolicy.test (Postfix will not relay to a server that greets
# with its own name) and relays to the same smtp-sink.
#
# Every harness function can run against the second instance: it_second
# swaps the per-instance variables (IT_DIR IT_SMTP_PORT IT_RUN IT_SOCK
# IT_PIDFILE IT_EVENTS IT_DAEMON_PID IT_POSTFIX_UP IT_POSTCONF_EXTRA) with
# their IT2_* twins, runs the command, and swaps back.
#
#   it_second_init                        $IT2_DIR, $IT2_SMTP_PORT, $IT2_SOCK,
#                                         $IT2_PIDFILE, $IT2_EVENTS (exported)
#   it_second it_daemon_config FILE PATH=VALUE...
#   it_second it_daemon_start FILE        (and it_daemon_stop, _alive, _hup)
#   it_second it_postconf KEY=VALUE...    before it_second_postfix_start
#   it_second_postfix_start               its milter is the second outpolicyd
#   it_second it_events_query PYEXPR      (it_event_field, it_swaks, ...)
#   it_second_stop                        both of its processes
#
# Route mail from the first instance to it, e.g. for one domain:
#   it_postconf "transport_maps = inline:{ hop2.test=smtp:[127.0.0.1]:$IT2_SMTP_PORT }"
#
# Its processes are stopped on exit.  The exit handler installed here runs
# the EXIT trap that was in place when it was installed (it_init's, or the
# DNS section's): start DNS servers before the second instance.

IT2_DIR=
IT2_SMTP_PORT=
IT2_RUN=
IT2_SOCK=
IT2_PIDFILE=
IT2_EVENTS=
# shellcheck disable=SC2034  # read through ${!name} in it_second_swap
IT2_DAEMON_PID='' IT2_POSTFIX_UP=0
IT2_POSTCONF_EXTRA=()
IT2_ACTIVE=0
IT2_PREV_TRAP=
IT2_VARS="DIR SMTP_PORT RUN SOCK PIDFILE EVENTS DAEMON_PID POSTFIX_UP"

# it_second_init - directories and port of the second instance
it_second_init()
{
    [ -n "${IT_DIR:-}" ] || it_die "it_second_init before it_init"
    IT2_DIR=$IT_DIR/second
    IT2_RUN=$IT2_DIR/run
    IT2_SOCK=$IT2_RUN/outpolicyd.sock
    IT2_PIDFILE=$IT2_RUN/outpolicyd.pid
    IT2_EVENTS=$IT2_DIR/events/events.json
    mkdir -p "$IT2_RUN" "$IT2_DIR/events" "$IT2_DIR/swaks"
    chmod 755 "$IT2_DIR"
    chown nobody:nogroup "$IT2_RUN" "$IT2_DIR/events"
    it_pick_port IT2_SMTP_PORT || it_die "no free port for the second instance"
    IT2_POSTCONF_EXTRA=("myhostname=mx2.outpolicy.test")
    export IT2_DIR IT2_SMTP_PORT IT2_RUN IT2_SOCK IT2_PIDFILE IT2_EVENTS
    it_second_trap
    it_log "$IT_NAME: second instance dir $IT2_DIR smtp $IT2_SMTP_PORT"
}

# it_second_swap - exchange the per-instance variables with their twins
it_second_swap()
{
    local v t
    local -a a
    for v in $IT2_VARS; do
        t=IT_$v
        a=("${!t}")
        t=IT2_$v
        printf -v "IT_$v" '%s' "${!t}"
        printf -v "IT2_$v" '%s' "${a[0]}"
    done
    a=("${IT_POSTCONF_EXTRA[@]}")
    IT_POSTCONF_EXTRA=("${IT2_POSTCONF_EXTRA[@]}")
    IT2_POSTCONF_EXTRA=("${a[@]}")
    IT2_ACTIVE=$((1 - IT2_ACTIVE))
}

# it_second CMD... - run a harness command against the second instance
it_second()
{
    local rc
    [ -n "$IT2_DIR" ] || [ "$IT2_ACTIVE" = 1 ] || it_die "it_second before it_second_init"
    it_second_swap
    "$@"
    rc=$?
    it_second_swap
    return "$rc"
}

# it_second_postfix_start - start the second Postfix, milter = its outpolicyd
it_second_postfix_start()
{
    local IT_MILTER="unix:$IT2_SOCK"
    it_second_trap
    it_second it_postfix_start
}

# it_second_stop - stop the second outpolicyd and Postfix (if started)
it_second_stop()
{
    [ -n "$IT2_DIR" ] || return 0
    it_second it_daemon_stop >/dev/null 2>&1
    it_second it_postfix_stop >/dev/null 2>&1
}

# it_second_trap - put it_second_on_exit in front of the current EXIT trap
it_second_trap()
{
    local cur
    cur=$(trap -p EXIT)
    case $cur in *it_second_on_exit*) return 0 ;; esac
    cur=${cur#trap -- \'}
    cur=${cur%\' EXIT}
    [[ $cur =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || cur=it_cleanup
    IT2_PREV_TRAP=$cur
    trap it_second_on_exit EXIT
}

it_second_on_exit()
{
    local rc=$?
    [ "$IT2_ACTIVE" = 1 ] && it_second_swap    # it_die inside it_second
    it_second_stop
    (exit "$rc")
    "${IT2_PREV_TRAP:-it_cleanup}"
}

# ---------------------------------------------------------------- receivers
# (section added with tests/integration/test_tlspolicy.sh)
#
# Real SMTP servers on loopback, one process each, from Debian's
# python3-aiosmtpd: the far end of a delivery leg, with the TLS it offers
# chosen per receiver.
#
#   it_rcv_start NAME MODE        start receiver NAME on a free port of
#                                 127.0.0.1 (it_rcv_port NAME); MODE is
#                                 tls13  STARTTLS, TLS 1.2 and 1.3
#                                 tls11  STARTTLS, TLS 1.0 and 1.1 only
#                                        (OpenSSL @SECLEVEL=0 for this
#                                        receiver only)
#                                 plain  no STARTTLS at all
#                                 uses $IT_DIR/tls/{cert,key}.pem
#                                 (it_tls_cert); returns 1 if it does not
#                                 listen within 10 s
#   it_rcv_port NAME              its port
#   it_rcv_count NAME             messages it accepted
#   it_rcv_wait NAME N TIMEOUT    wait until it accepted at least N
#   it_rcv_files NAME             per message a "NNN.meta" file, oldest first:
#                                 lines "tls: TLSv1.3|none", "cipher: ...",
#                                 "mail_from: ...", "rcpt_to: a b",
#                                 "message_id: <...>"; the message itself is
#                                 beside it as NNN.eml
#   it_rcv_meta FILE KEY          one value of a .meta file
#   it_rcv_by_msgid NAME MSGID    the .meta file of that Message-ID
#   it_rcv_stop NAME, it_rcv_stop_all
#
# Route mail from the private Postfix to one, e.g.:
#   it_postconf "transport_maps = inline:{ a.test=smtp:[127.0.0.1]:$(it_rcv_port A) }"
#
# Each receiver logs to $IT_DIR/rcv/NAME/log (connections, STARTTLS
# handshake failures).  Receivers are stopped by their recorded PIDs on
# exit: the exit handler installed here runs the EXIT trap that was in
# place when it was installed (it_init's, the DNS section's or the second
# instance's).  Each also exits by itself when the test shell is gone or
# after IT_RCV_LIFETIME (default 600) s.  (it_dns_start replaces the EXIT
# trap: start DNS servers before the receivers.)

declare -gA IT_RCV_PORT=() IT_RCV_PID=()
IT_RCV_PREV_TRAP=

it_rcv_start()
{
    local name=${1:?it_rcv_start NAME MODE} mode=${2:?it_rcv_start NAME MODE}
    local d=$IT_DIR/rcv/$1 port
    "$IT_PY" -c 'import aiosmtpd' 2>/dev/null ||
        it_die "no aiosmtpd (Debian: python3-aiosmtpd)"
    [ -z "${IT_RCV_PID[$name]:-}" ] || it_die "receiver $name already running"
    [ -f "$IT_DIR/tls/cert.pem" ] || it_tls_cert
    mkdir -p "$d"
    [ -f "$IT_DIR/rcv/rcv.py" ] || it_rcv_tool
    it_pick_port port || it_die "no free port for receiver $name"
    it_rcv_trap
    "$IT_PY" "$IT_DIR/rcv/rcv.py" "$name" "$mode" "$port" "$d" \
        "$IT_DIR/tls/cert.pem" "$IT_DIR/tls/key.pem" "$$" \
        "${IT_RCV_LIFETIME:-600}" >>"$d/log" 2>&1 &
    IT_RCV_PID[$name]=$!
    IT_RCV_PORT[$name]=$port
    if ! it_wait_for 10 it_port_listening "$port"; then
        it_log "receiver $name did not listen on $port: $(tail -n 3 "$d/log")"
        it_rcv_stop "$name"
        return 1
    fi
}

it_rcv_port()
{
    printf '%s\n' "${IT_RCV_PORT[${1:?NAME}]:?no receiver $1}"
}

it_rcv_files()
{
    find "$IT_DIR/rcv/${1:?NAME}" -maxdepth 1 -name '*.meta' 2>/dev/null | sort
}

it_rcv_count()
{
    it_rcv_files "$1" | grep -c .
}

it_rcv_has()
{
    [ "$(it_rcv_count "$1")" -ge "$2" ]
}

it_rcv_wait()
{
    it_wait_for "$3" it_rcv_has "$1" "$2"
}

it_rcv_meta()
{
    sed -n "s/^$2: //p" "$1" | head -n 1
}

it_rcv_by_msgid()
{
    local f
    while IFS= read -r f; do
        if [ "$(it_rcv_meta "$f" message_id)" = "$2" ]; then
            printf '%s\n' "$f"
            return 0
        fi
    done < <(it_rcv_files "$1")
    return 1
}

it_rcv_stop()
{
    local pid=${IT_RCV_PID[${1:?NAME}]:-}
    [ -n "$pid" ] || return 0
    it_stop_pid "$pid" 10
    IT_RCV_PID[$1]=
}

it_rcv_stop_all()
{
    local n
    for n in "${!IT_RCV_PID[@]}"; do
        it_rcv_stop "$n"
    done
}

# it_rcv_trap - put it_rcv_on_exit in front of the current EXIT trap
it_rcv_trap()
{
    local cur
    cur=$(trap -p EXIT)
    case $cur in *it_rcv_on_exit*) return 0 ;; esac
    cur=${cur#trap -- \'}
    cur=${cur%\' EXIT}
    [[ $cur =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || cur=it_cleanup
    IT_RCV_PREV_TRAP=$cur
    trap it_rcv_on_exit EXIT
}

it_rcv_on_exit()
{
    local rc=$?
    it_rcv_stop_all >/dev/null 2>&1
    (exit "$rc")
    "${IT_RCV_PREV_TRAP:-it_cleanup}"
}

# it_rcv_tool - write $IT_DIR/rcv/rcv.py
it_rcv_tool()
{
    mkdir -p "$IT_DIR/rcv"
    cat >"$IT_DIR/rcv/rcv.py" <<'PYEOF'
import logging, os, signal, ssl, sys, time
from aiosmtpd.controller import Controller

name, mode, port, outdir, cert, key, watch, lifetime = sys.argv[1:9]
port, watch, lifetime = int(port), int(watch), float(lifetime)
logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                    format="%(asctime)s " + name + " %(name)s: %(message)s")
log = logging.getLogger("rcv")

ctx = None
if mode in ("tls13", "tls11"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if mode == "tls11":
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
elif mode != "plain":
    sys.exit("unknown mode %s" % mode)


class Handler:
    n = 0

    async def handle_DATA(self, server, session, envelope):
        Handler.n += 1
        base = os.path.join(outdir, "%03d" % Handler.n)
        tls, cipher = "none", ""
        obj = (session.ssl or {}).get("ssl_object")
        if obj is not None:
            tls, cipher = obj.version(), obj.cipher()[0]
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        mid = ""
        for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                mid = line.split(b":", 1)[1].strip().decode("latin-1")
        with open(base + ".eml", "wb") as f:
            f.write(data)
        with open(base + ".tmp", "w") as f:
            f.write("tls: %s\ncipher: %s\nmail_from: %s\nrcpt_to: %s\n"
                    "message_id: %s\npeer: %s\n" % (
                        tls, cipher, envelope.mail_from,
                        " ".join(envelope.rcpt_tos), mid, session.peer))
        os.rename(base + ".tmp", base + ".meta")
        log.info("accepted %s from %s over %s %s", mid, envelope.mail_from,
                 tls, cipher)
        return "250 2.0.0 Ok: queued as %s-%d" % (name, Handler.n)


c = Controller(Handler(), hostname="127.0.0.1", port=port,
               server_hostname="%s.rcv.outpolicy.test" % name,
               tls_context=ctx, require_starttls=False, ready_timeout=10)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
c.start()
log.info("listening on 127.0.0.1:%d mode %s", port, mode)
t0 = time.monotonic()
while not stop and time.monotonic() - t0 < lifetime:
    try:
        os.kill(watch, 0)
    except ProcessLookupError:
        break
    time.sleep(0.2)
c.stop()
log.info("stopped")
PYEOF
}

# ---------------------------------------------------------------- process checks
# (section added with tests/integration/test_hostile.sh, test_faults.sh and
# test_security.sh)
#
#   it_proc_rss PID          VmRSS of PID in kB (empty when it is gone)
#   it_proc_threads PID      its number of threads
#   it_proc_fds PID          its number of open file descriptors
#   it_daemon_is PID         outpolicyd runs and is still process PID (it
#                            did not crash and was not started again)
#   it_sanitized             the daemon binary ($IT_BUILD) has ASan/UBSan
#   it_sanitizer_env         for a sanitized daemon: ASAN_OPTIONS,
#                            UBSAN_OPTIONS and LSAN_OPTIONS (leak check at
#                            exit with full stacks, tests/fuzz/lsan.supp for
#                            third-party leaks), each unless already set
#   it_sanitizer_reports [FILE...]  print the sanitizer report lines (ASan,
#                            LSan, UBSan "runtime error:") of FILEs (default
#                            the daemon log); status 0 when there are none

IT_SANITIZER_RE='ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: AddressSanitizer|runtime error:|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)'

it_proc_rss()
{
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

it_proc_threads()
{
    awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

it_proc_fds()
{
    find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | grep -c .
}

it_daemon_is()
{
    [ -n "$IT_DAEMON_PID" ] && [ "$IT_DAEMON_PID" = "$1" ] && it_daemon_alive
}

it_sanitized()
{
    ldd "$IT_BUILD/milter/outpolicyd" 2>/dev/null | grep -qE 'lib(asan|ubsan)'
}

it_sanitizer_env()
{
    it_sanitized || return 0
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$IT_SRC/tests/fuzz/lsan.supp:print_suppressions=0}
}

it_sanitizer_reports()
{
    [ "$#" -gt 0 ] || set -- "$IT_DIR/outpolicyd.log"
    ! grep -aE -- "$IT_SANITIZER_RE" "$@" 2>/dev/null
}
