# shellcheck shell=bash
# shellcheck disable=SC2034  # variables used by the scripts that source this
# tests/bench/benchlib.sh - shared pieces of the benchmark scripts
#
# Sourced by tests/bench/pipeline.sh, miltload.sh and memory.sh.  Everything
# runs on loopback, as root, in a scratch directory $B_DIR; every process
# started here is recorded by PID and stopped by that PID on exit (never by
# name).  Nothing touches the system Postfix, opendkim or rspamd.
#
# Milters (start one at a time):
#   b_opendkim_start unix|inet      Debian's opendkim, RSA-2048, relaxed/relaxed
#   b_rspamd_start unix|inet        Debian's rspamd proxy in milter self-scan
#                                   mode, only dkim_signing + arc (one worker)
#   b_outpolicyd_start PROFILE unix|inet   PROFILE: dkim, dkim+arc, full
#   b_milter_stop
# They set B_MILTER_POSTFIX (the smtpd_milters value), B_MILTER_SOCK (the
# milter's own spec, for miltload) and B_MILTER_PIDS (for CPU and RSS).
#
# Environment: OUTPOLICY_BUILD (build dir with milter/outpolicyd; default
# the repo root), B_KEEP=1 keeps $B_DIR.

B_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B_BUILD=${OUTPOLICY_BUILD:-$B_SRC}
B_PIDS=()            # every background process we started
B_MILTER_PIDS=()
B_MILTER_KIND=
B_POSTFIX_UP=0
B_CLK_TCK=$(getconf CLK_TCK)
B_DOMAIN=bench.example
B_FROM=sender@bench.example
B_RCPT=rcpt@remote.example

# the process, port and Postfix-config helpers of the integration harness
# shellcheck source=../integration/lib.sh
. "$B_SRC/tests/integration/lib.sh"

b_log() { printf '[bench] %s\n' "$*" >&2; }
b_die() { printf '[bench] FATAL: %s\n' "$*" >&2; exit 2; }

b_init()
{
    [ "$(id -u)" -eq 0 ] || b_die "run as root (private Postfix instance)"
    local c missing=""
    for c in postfix postconf smtp-source smtp-sink openssl ss; do
        command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
    done
    [ -z "$missing" ] || b_die "missing:$missing (apt-get install postfix openssl iproute2)"
    B_DIR=$(mktemp -d /tmp/outpolicy-bench.XXXXXX) || b_die "mktemp"
    chmod 755 "$B_DIR"
    mkdir -p "$B_DIR/run" "$B_DIR/keys" "$B_DIR/msg"
    chown nobody:nogroup "$B_DIR/run"
    trap b_cleanup EXIT
    trap 'exit 130' INT TERM
    b_log "scratch dir $B_DIR"
}

b_cleanup()
{
    local rc=$? pid
    trap - EXIT
    b_milter_stop >/dev/null 2>&1
    b_postfix_stop >/dev/null 2>&1
    for pid in "${B_PIDS[@]}"; do it_stop_pid "$pid" 5; done
    if [ -n "${B_DIR:-}" ] && [ -d "$B_DIR" ]; then
        if [ "${B_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
            b_log "kept $B_DIR"
        else
            rm -rf "$B_DIR"
        fi
    fi
    exit "$rc"
}

# ------------------------------------------------------------ messages

# b_mkmsg BODY_BYTES FILE - a plain text message From: $B_FROM, LF line ends,
# body of 76-character lines (plus a last short one) of BODY_BYTES bytes
b_mkmsg()
{
    local size=$1 out=$2
    {
        printf 'From: Bench Sender <%s>\n' "$B_FROM"
        printf 'To: <%s>\n' "$B_RCPT"
        printf 'Subject: outpolicy benchmark message of %s bytes\n' "$size"
        printf 'Date: Mon, 01 Jun 2026 12:00:00 +0000\n'
        printf 'Message-ID: <bench-%s@bench.example>\n' "$size"
        printf 'MIME-Version: 1.0\n'
        printf 'Content-Type: text/plain; charset=us-ascii\n'
        printf '\n'
        awk -v n="$size" 'BEGIN {
            line = "The quick brown fox jumps over the lazy dog; 0123456789 abcdefghijklmnopq"
            srand(1)
            while (n > 0) {
                l = substr(line, 1 + int(rand() * 10)) "."
                if (length(l) + 1 > n) l = substr(l, 1, n > 1 ? n - 1 : 0)
                print l
                n -= length(l) + 1
            }
        }'
    } >"$out"
}

# ------------------------------------------------------------ keys, DNS

b_keys()
{
    [ -f "$B_DIR/keys/rsa.pem" ] && return 0
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$B_DIR/keys/rsa.pem" 2>/dev/null || b_die "openssl genpkey"
    openssl pkey -in "$B_DIR/keys/rsa.pem" -pubout -outform DER 2>/dev/null |
        base64 -w0 >"$B_DIR/keys/rsa.pub.b64"
    chmod 600 "$B_DIR/keys/rsa.pem"
}

# b_dns_start - unbound on 127.0.0.1:$B_DNS_PORT with the bench zone:
# SPF for bench.example authorising 192.0.2.10, DMARC p=reject, DKIM key
B_DNS_PID=
b_dns_start()
{
    [ -n "$B_DNS_PID" ] && return 0
    command -v unbound >/dev/null || b_die "no unbound (apt-get install unbound)"
    b_keys
    it_pick_port B_DNS_PORT || b_die "no port for DNS"
    mkdir -p "$B_DIR/dns"
    local pub
    pub=$(cat "$B_DIR/keys/rsa.pub.b64")
    {
        cat <<EOF
server:
  interface: 127.0.0.1@$B_DNS_PORT
  port: $B_DNS_PORT
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$B_DIR/dns"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  num-threads: 1
  module-config: "iterator"
  do-not-query-localhost: no
  local-zone: "." static
  local-data: 'bench.example. 600 IN TXT "v=spf1 ip4:192.0.2.10 -all"'
  local-data: '_dmarc.bench.example. 600 IN TXT "v=DMARC1; p=reject"'
  local-data: 'bench.example. 600 IN A 192.0.2.10'
  local-data: 'remote.example. 600 IN A 192.0.2.20'
EOF
        # a 2048-bit key's TXT is over 255 octets: two strings
        printf "  local-data: 'bench._domainkey.bench.example. 600 IN TXT \"v=DKIM1; k=rsa; p=%s\" \"%s\"'\n" \
            "${pub:0:200}" "${pub:200}"
        printf 'remote-control:\n  control-enable: no\n'
    } >"$B_DIR/dns/unbound.conf"
    unbound -d -c "$B_DIR/dns/unbound.conf" >"$B_DIR/dns/unbound.log" 2>&1 &
    B_DNS_PID=$!
    B_PIDS+=("$B_DNS_PID")
    it_wait_for 10 b_udp_bound "$B_DNS_PORT" || b_die "unbound did not start: $(tail -3 "$B_DIR/dns/unbound.log")"
}
b_udp_bound() { [ -n "$(ss -lunH "sport = :$1" 2>/dev/null)" ]; }

# ------------------------------------------------------------ sink

B_SINK_PID=
b_sink_start()
{
    it_pick_port B_SINK_PORT || b_die "no port for the sink"
    smtp-sink -u nobody -c -h sink.bench.example "127.0.0.1:$B_SINK_PORT" 256 \
        >"$B_DIR/sink.out" 2>"$B_DIR/sink.err" &
    B_SINK_PID=$!
    B_PIDS+=("$B_SINK_PID")
    it_wait_for 10 it_port_listening "$B_SINK_PORT" || b_die "smtp-sink did not listen"
}

# b_sink_count - messages the sink has received so far
b_sink_count()
{
    local n
    n=$(tail -c 200 "$B_DIR/sink.out" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -n 1)
    echo "${n#mesg=}" | sed 's/^$/0/'
}

# ------------------------------------------------------------ Postfix

b_postfix_start()
{
    local milter=$1 pf=$B_DIR/postfix
    it_pick_port B_SMTP_PORT || b_die "no port for smtpd"
    mkdir -p "$pf/etc" "$pf/queue" "$pf/data"
    {
        echo "# private outpolicy benchmark instance"
        it_postfix_base_cf "$pf" mx.$B_DOMAIN "$B_SINK_PORT" "$milter"
        echo "maillog_file_prefixes = $pf"
        echo "smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination"
        echo "smtpd_tls_security_level = none"
    } >"$pf/etc/main.cf"
    it_postfix_master "$B_SMTP_PORT" >"$pf/etc/master.cf"
    touch "$pf/maillog"
    postfix -c "$pf/etc" set-permissions >"$pf/setperm.log" 2>&1 || b_die "postfix set-permissions"
    postfix -c "$pf/etc" check >"$pf/check.log" 2>&1 || b_die "postfix check: $(tail -3 "$pf/check.log")"
    postfix -c "$pf/etc" start >"$pf/start.log" 2>&1 || b_die "postfix start: $(tail -3 "$pf/start.log")"
    B_POSTFIX_UP=1
    it_wait_for 20 it_port_listening "$B_SMTP_PORT" || b_die "smtpd not listening"
}

b_postfix_stop()
{
    local pf=$B_DIR/postfix pid
    [ "$B_POSTFIX_UP" = 1 ] || return 0
    pid=$(tr -d ' \n' <"$pf/queue/pid/master.pid" 2>/dev/null)
    postfix -c "$pf/etc" stop >/dev/null 2>&1
    [ -n "$pid" ] && it_wait_for 15 it_pid_gone "$pid"
    B_POSTFIX_UP=0
}

# b_sent_count - status=sent lines in the instance's log
b_sent_count() { grep -c ' status=sent ' "$B_DIR/postfix/maillog" 2>/dev/null; }

# ------------------------------------------------------------ CPU and RSS

# b_cpu_ticks PID... - utime+stime (clock ticks) of the processes, threads
# included (/proc/PID/stat)
b_cpu_ticks()
{
    local pid t=0 s
    for pid in "$@"; do
        s=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }')
        t=$((t + ${s:-0}))
    done
    echo "$t"
}

# b_status_kb FIELD PID... - a /proc/PID/status figure in kB, summed:
# VmRSS (current RSS) or VmHWM (peak RSS)
b_status_kb()
{
    local field=$1 pid t=0 s
    shift
    for pid in "$@"; do
        s=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null)
        t=$((t + ${s:-0}))
    done
    echo "$t"
}
b_rss_kb() { b_status_kb VmRSS "$@"; }
b_hwm_kb() { b_status_kb VmHWM "$@"; }

# b_milter_refresh_pids - rspamd forks workers: main PID + its children
b_milter_refresh_pids()
{
    if [ "$B_MILTER_KIND" = rspamd ] && [ -n "${B_RSPAMD_MAIN:-}" ]; then
        mapfile -t B_MILTER_PIDS < <(echo "$B_RSPAMD_MAIN"; ps -o pid= --ppid "$B_RSPAMD_MAIN" 2>/dev/null | tr -d " ")
    fi
}

# ------------------------------------------------------------ milters

# b_socket_pair unix|inet NAME - sets B_MILTER_SOCK (milter's own syntax,
# inet:PORT@127.0.0.1 or unix:PATH) and B_MILTER_POSTFIX (Postfix syntax)
b_socket_pair()
{
    if [ "$1" = inet ]; then
        it_pick_port B_MILTER_PORT || b_die "no port for the milter"
        B_MILTER_SOCK="inet:$B_MILTER_PORT@127.0.0.1"
        B_MILTER_POSTFIX="inet:127.0.0.1:$B_MILTER_PORT"
    else
        B_MILTER_PATH=${3:-$B_DIR/run}/$2.sock
        B_MILTER_SOCK="unix:$B_MILTER_PATH"
        B_MILTER_POSTFIX="unix:$B_MILTER_PATH"
    fi
}

b_milter_ready()
{
    case $B_MILTER_SOCK in
    inet:*) it_port_listening "$B_MILTER_PORT" ;;
    *) [ -S "$B_MILTER_PATH" ] ;;
    esac
}

b_opendkim_start()
{
    command -v opendkim >/dev/null || b_die "no opendkim (apt-get install opendkim)"
    b_keys
    local d=$B_DIR/opendkim sock
    mkdir -p "$d"
    b_socket_pair "$1" opendkim "$d"
    sock=$B_MILTER_SOCK
    cp "$B_DIR/keys/rsa.pem" "$d/key.pem"
    chown opendkim:opendkim "$d/key.pem" "$d"
    chmod 600 "$d/key.pem"
    [ "${sock%%:*}" = unix ] && sock="local:${sock#unix:}"
    cat >"$d/opendkim.conf" <<EOF
Syslog                  no
LogWhy                  no
Mode                    s
Domain                  $B_DOMAIN
Selector                bench
KeyFile                 $d/key.pem
Canonicalization        relaxed/relaxed
SignatureAlgorithm      rsa-sha256
OversignHeaders         From
RequireSafeKeys         false
InternalHosts           127.0.0.0/8
Socket                  $sock
UserID                  opendkim
UMask                   000
PidFile                 $d/opendkim.pid
EOF
    opendkim -f -x "$d/opendkim.conf" >"$d/opendkim.log" 2>&1 &
    B_MILTER_PIDS=($!)
    B_PIDS+=($!)
    B_MILTER_KIND=opendkim
    it_wait_for 10 b_milter_ready || b_die "opendkim did not start: $(tail -3 "$d/opendkim.log")"
}

b_rspamd_start()
{
    command -v rspamd >/dev/null || b_die "no rspamd (apt-get install rspamd)"
    b_keys
    b_dns_start
    local d=$B_DIR/rspamd bind signing
    mkdir -p "$d/db" "$d/run"
    b_socket_pair "$1" rspamd "$d/run"
    cp "$B_DIR/keys/rsa.pem" "$d/key.pem"
    chown -R _rspamd:_rspamd "$d"
    chmod 600 "$d/key.pem"
    case $B_MILTER_SOCK in
    inet:*) bind="127.0.0.1:$B_MILTER_PORT" ;;
    *) bind="$B_MILTER_PATH mode=0666" ;;
    esac
    # Minimal configuration: no common.conf, no rules, no other module.  The
    # C module dkim is loaded because dkim_signing and arc sign through it.
    # the same signing settings for the DKIM and the ARC module
    signing=$(cat <<EOF
    allow_hdrfrom_mismatch = false;
    allow_username_mismatch = true;
    sign_local = true;
    sign_authenticated = true;
    use_domain = "header";
    use_esld = false;
    selector = "bench";
    path = "$d/key.pem";
    check_pubkey = false;
EOF
)
    signing+=$'\n'
    cat >"$d/rspamd.conf" <<EOF
options {
    pidfile = "$d/run/rspamd.pid";
    filters = "dkim";
    explicit_modules = [];
    local_addrs = [127.0.0.0/8];
    dns { nameserver = ["127.0.0.1:$B_DNS_PORT"]; timeout = 1s; retransmits = 2; }
    hs_cache_dir = "$d/db/";
    cache_file = "$d/db/symbols.cache";
    tempdir = "$d/run";
    task_timeout = 8s;
}
logging { type = "file"; filename = "$d/rspamd.log"; level = "${B_RSPAMD_LOGLEVEL:-error}"; }
modules { path = "\${PLUGINSDIR}"; }
worker "rspamd_proxy" {
    bind_socket = "$bind";
    milter = yes;
    timeout = 120s;
    count = 1;
    upstream "local" { default = yes; self_scan = yes; }
}
dkim { }
dkim_signing {
$signing}
arc {
$signing}
EOF
    chown _rspamd:_rspamd "$d/rspamd.conf"
    rspamd -f -u _rspamd -g _rspamd -c "$d/rspamd.conf" >"$d/stdout.log" 2>&1 &
    B_RSPAMD_MAIN=$!
    B_PIDS+=($!)
    B_MILTER_KIND=rspamd
    it_wait_for 30 b_milter_ready || b_die "rspamd did not start: $(tail -5 "$d/rspamd.log" "$d/stdout.log")"
    sleep 1
    b_milter_refresh_pids
}

# b_outpolicyd_start PROFILE unix|inet - PROFILE dkim | dkim+arc | full
b_outpolicyd_start()
{
    local profile=$1 d=$B_DIR/outpolicyd bin=$B_BUILD/milter/outpolicyd
    [ -x "$bin" ] || b_die "no $bin (build first; OUTPOLICY_BUILD=builddir)"
    b_keys
    b_socket_pair "$2" outpolicyd
    mkdir -p "$d/events"
    cp "$B_DIR/keys/rsa.pem" "$d/rsa.pem"
    chown nobody:nogroup "$d/rsa.pem" "$d/events"
    chmod 600 "$d/rsa.pem"
    local arc_key='""' spf=false dmarc=false events='""' dns='[ ]' ips='[ ]'
    case $profile in
    dkim) ;;
    dkim+arc) arc_key='"bench-rsa"' ;;
    full)
        b_dns_start
        arc_key='"bench-rsa"' spf=true dmarc=true
        events="\"$d/events/events.json\""
        dns="[ \"127.0.0.1@$B_DNS_PORT\" ]"
        ips='[ "192.0.2.10" ]'
        ;;
    *) b_die "unknown outpolicyd profile $profile" ;;
    esac
    cat >"$d/outpolicy.conf" <<EOF
# outpolicyd benchmark config, profile $profile
mode = "enforce";
on_error = "tempfail";
daemon = {
    socket = "$B_MILTER_SOCK";
    socket_mode = "0660";
    socket_group = "postfix";
    user = "nobody";
    group = "nogroup";
    pidfile = "$B_DIR/run/outpolicyd.pid";
    log_level = 0;
    shutdown_timeout = 5;
};
outbound = { internal_hosts = [ "127.0.0.0/8" ]; authenticated = true; };
submission_tls = { min_version = "none"; };
events = { file = $events; syslog = false; on_error = "accept"; };
dns = { nameservers = $dns; timeout = 5; };
egress = { ips = $ips; };
spf = { enabled = $spf; on_pass = "accept"; };
dmarc = { enabled = $dmarc; };
keys = (
    { id = "bench-rsa"; domain = "$B_DOMAIN"; selector = "bench";
      file = "$d/rsa.pem"; }
);
dkim = {
    enabled = true;
    signing = ( { from = "$B_DOMAIN"; keys = [ "bench-rsa" ]; } );
    canonicalization = "relaxed/relaxed";
};
arc = { enabled = true; authserv_id = "mx.bench.example"; key = $arc_key; };
EOF
    "$bin" -n -c "$d/outpolicy.conf" >"$d/check.log" 2>&1 ||
        b_die "outpolicyd -n: $(cat "$d/check.log")"
    "$bin" -f -c "$d/outpolicy.conf" >"$d/outpolicyd.log" 2>&1 &
    B_MILTER_PIDS=($!)
    B_PIDS+=($!)
    B_MILTER_KIND=outpolicyd
    it_wait_for 10 b_milter_ready || b_die "outpolicyd did not start: $(tail -3 "$d/outpolicyd.log")"
}

# b_milter_alive - the milter processes we started are still running
b_milter_alive()
{
    local p
    [ -z "$B_MILTER_KIND" ] && return 0
    b_milter_refresh_pids
    for p in "${B_MILTER_PIDS[@]}"; do it_pid_gone "$p" && return 1; done
    return 0
}

b_milter_stop()
{
    case $B_MILTER_KIND in
    rspamd) it_stop_pid "$B_RSPAMD_MAIN" 15 ;;
    opendkim | outpolicyd) it_stop_pid "${B_MILTER_PIDS[0]}" 15 ;;
    esac
    B_MILTER_KIND=
    B_MILTER_PIDS=()
}

# b_milter_start MODE - MODE as pipeline.sh names them; "none" starts nothing
b_milter_start()
{
    B_MILTER_POSTFIX='' B_MILTER_SOCK=''
    case $1 in
    none) ;;
    opendkim) b_opendkim_start unix ;;
    opendkim-inet) b_opendkim_start inet ;;
    rspamd) b_rspamd_start unix ;;
    rspamd-inet) b_rspamd_start inet ;;
    dkim | dkim+arc | full) b_outpolicyd_start "$1" unix ;;
    dkim-inet | dkim+arc-inet | full-inet) b_outpolicyd_start "${1%-inet}" inet ;;
    *) b_die "unknown mode $1" ;;
    esac
}

B_ALL_MODES="none opendkim opendkim-inet rspamd rspamd-inet dkim dkim-inet dkim+arc dkim+arc-inet full full-inet"
