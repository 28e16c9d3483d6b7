#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# tests/integration/test_submission.sh - submission-leg policy through a real
# Postfix: TLS minimum at MAIL FROM, exempt and external hosts, SMTP AUTH,
# monitor mode, TLS-Required: No, SIGHUP reload, SIGTERM, and the events file.
#
# Needs root, postfix, swaks (+ libnet-ssleay-perl), sasl2-bin, smtp-sink,
# /usr/bin/python3 and a built milter/outpolicyd ($OUTPOLICY_BUILD or the repo
# root).  Prints one line per check and "N passed, N failed"; exits non-zero
# when a check failed.  IT_KEEP=1 keeps the scratch directory.
#
# Clients pick their source address on 127/8: 127.0.0.2 is an internal host,
# 127.0.0.5 an internal host exempt from the TLS check, 127.0.0.9 external.
# Each case sends from case-<x>@outpolicy.test with Message-Id
# <case-<x>.<run>@outpolicy.test>, so events and delivered messages can be
# told apart.

set -u
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

it_init submission
it_tls_cert
it_sink_start

RUN=$$
CONF=$IT_DIR/outpolicyd.conf
INTERNAL=127.0.0.2
EXEMPT=127.0.0.5
EXTERNAL=127.0.0.9
SETTINGS=(
    'outbound.internal_hosts=[ "127.0.0.1/32", "127.0.0.2/32", "127.0.0.5/32" ]'
    'submission_tls.exempt_hosts=[ "127.0.0.5" ]'
    'tls_required.keep_for_senders=[ "case-h-keep@outpolicy.test" ]'
)
TLS13=(--tls --tls-protocol tlsv1_3)
REFUSED=()          # Message-Ids that must never reach the sink
declare -A QID      # case -> queue ID from swaks' "250 ... queued as"

# mid CASE - the Message-Id used for CASE
mid()
{
    printf '<%s.%s@outpolicy.test>' "$1" "$RUN"
}

# send CASE SWAKS-ARGS... - one message for CASE
send()
{
    local c=$1
    shift
    it_swaks --from "$c@outpolicy.test" --header "Message-Id: $(mid "$c")" \
        --header "Subject: $c" "$@"
    QID[$c]=$(it_swaks_queue_id)
}

# sel CASE - Python test selecting CASE's submission events
sel()
{
    printf "g(e,'event.action') == 'submission' and g(e,'outpolicy.envelope.from') == '%s@outpolicy.test'" "$1"
}

# ev CASE PATH - field PATH of CASE's (last) submission event
ev()
{
    it_event_field "$(sel "$1")" "$2"
}

# wait_event CASE - wait (bounded) for CASE's first submission event
wait_event()
{
    it_wait_for 5 has_event "$1"
}

has_event()
{
    [ "$(it_events_query "$(sel "$1")")" -ge 1 ]
}

# check_ev CASE PATH WANT - assert one event field
check_ev()
{
    it_check_eq "$1: event $2 = $3" "$3" "$(ev "$1" "$2")"
}

# check_one_event CASE - exactly one submission event for CASE
check_one_event()
{
    wait_event "$1"
    it_check_eq "$1: exactly one submission event" 1 \
        "$(it_events_query "$(sel "$1")")"
}

# check_refused_530 CASE - MAIL FROM got 530 5.7.0 and nothing was queued
check_refused_530()
{
    local reply
    reply=$(it_swaks_reply_to "MAIL FROM")
    case $reply in
        "530 5.7.0"*) it_ok "$1: MAIL FROM refused: $reply" ;;
        *) it_fail "$1: MAIL FROM refused with 530 5.7.0" "reply '$reply'" ;;
    esac
    it_check_eq "$1: swaks exit status (23 = error after MAIL FROM)" 23 "$IT_SWAKS_RC"
    it_check_eq "$1: no queue ID" "" "$(it_swaks_queue_id)"
    REFUSED+=("$(mid "$1")")
}

# check_delivered CASE - swaks succeeded and the message reached the sink
check_delivered()
{
    it_check_eq "$1: swaks exit status" 0 "$IT_SWAKS_RC"
    it_check "$1: delivered to the sink" it_sink_wait_msgid "$(mid "$1")" 20
}

# check_tls CASE VERSION - swaks really negotiated VERSION
check_tls()
{
    it_check_eq "$1: client negotiated $2" "$2" "$(it_swaks_tls_version)"
}

# delivered_header CASE NAME - header NAME of CASE's delivered message
delivered_header()
{
    local f
    f=$(it_sink_by_msgid "$(mid "$1")") || return 1
    it_sink_header "$f" "$2"
}

# reload CONFIG-ARGS... - rewrite the config, SIGHUP, wait (bounded) until
# the daemon has logged something about it
reload()
{
    local size
    it_daemon_config "$CONF" "$@"
    size=$(stat -c %s "$IT_DIR/outpolicyd.log")
    it_daemon_hup
    it_wait_for 5 log_grew "$size"
    sleep 0.5
}

log_grew()
{
    [ "$(stat -c %s "$IT_DIR/outpolicyd.log")" -gt "$1" ]
}

# ------------------------------------------------------------ enforce mode

it_daemon_config "$CONF" "${SETTINGS[@]}"
it_daemon_start "$CONF" || it_die "outpolicyd did not start"
IT_MILTER="unix:$IT_SOCK" it_postfix_start
it_check_eq "daemon: pidfile holds the PID" "$IT_DAEMON_PID" \
    "$(tr -d ' \n' <"$IT_PIDFILE" 2>/dev/null)"

echo "# a. plaintext from an internal host is refused at MAIL FROM"
send case-a --local-interface "$INTERNAL"
check_refused_530 case-a
check_one_event case-a
check_ev case-a source.ip "$INTERNAL"
check_ev case-a outpolicy.verdict.action reject
check_ev case-a outpolicy.verdict.check submission_tls
check_ev case-a outpolicy.verdict.applied true
check_ev case-a outpolicy.mode enforce
check_ev case-a event.outcome failure
check_ev case-a email.message_id null

echo "# b. STARTTLS TLSv1.3 and TLSv1.2 are delivered"
send case-b13 --local-interface "$INTERNAL" "${TLS13[@]}"
check_tls case-b13 TLSv1.3
check_delivered case-b13
check_one_event case-b13
send case-b12 --local-interface "$INTERNAL" --tls --tls-protocol tlsv1_2
check_tls case-b12 TLSv1.2
check_delivered case-b12
check_one_event case-b12
check_ev case-b12 tls.version 1.2
check_ev case-b12 outpolicy.verdict.action accept
check_ev case-b12 outpolicy.tls_required absent

echo "# c. STARTTLS TLSv1.1 is refused"
send case-c --local-interface "$INTERNAL" --tls --tls-protocol tlsv1_1 \
    --tls-cipher 'DEFAULT:@SECLEVEL=0'
OUTBOUND=7          # outbound transactions in this phase without case c
if [ "$(it_swaks_tls_version)" = TLSv1.1 ]; then
    OUTBOUND=8
    check_refused_530 case-c
    check_one_event case-c
    check_ev case-c tls.version 1.1
    check_ev case-c outpolicy.verdict.action reject
else
    it_skip "c. TLSv1.1" "TLSv1.1 cannot be negotiated here: $(grep -m1 '^\*\*\*' "$IT_SWAKS_OUT")"
fi

echo "# d. plaintext from an exempt host is delivered"
send case-d --local-interface "$EXEMPT"
check_delivered case-d
check_one_event case-d
check_ev case-d source.ip "$EXEMPT"
check_ev case-d outpolicy.verdict.action accept

echo "# e. unauthenticated external plaintext passes untouched"
send case-e --local-interface "$EXTERNAL" --header 'TLS-Required: No'
check_delivered case-e
it_check_eq "case-e: TLS-Required header left alone" No \
    "$(delivered_header case-e tls-required)"
it_check_eq "case-e: no submission event" 0 "$(it_events_query "$(sel case-e)")"
it_check_eq "case-e: no event at all from $EXTERNAL" 0 \
    "$(it_events_query "g(e,'source.ip') == '$EXTERNAL'")"

echo "# f. authenticated external client is outbound"
send case-f --local-interface "$EXTERNAL" "${TLS13[@]}" --auth PLAIN \
    --auth-user alice@outpolicy.test --auth-password secret
it_check "case-f: AUTH accepted" it_swaks_saw_re '^<~ +235 '
check_delivered case-f
check_one_event case-f
check_ev case-f user.name alice@outpolicy.test
check_ev case-f source.ip "$EXTERNAL"
check_ev case-f outpolicy.verdict.action accept

echo "# h. TLS-Required: No is removed, or kept for a listed sender"
send case-h-strip --local-interface "$INTERNAL" "${TLS13[@]}" --header 'TLS-Required: No'
check_delivered case-h-strip
it_check_eq "case-h-strip: TLS-Required removed" "" \
    "$(delivered_header case-h-strip tls-required)"
check_one_event case-h-strip
check_ev case-h-strip outpolicy.tls_required removed
send case-h-keep --local-interface "$INTERNAL" "${TLS13[@]}" --header 'TLS-Required: No'
check_delivered case-h-keep
it_check_eq "case-h-keep: TLS-Required kept" No \
    "$(delivered_header case-h-keep tls-required)"
check_one_event case-h-keep
check_ev case-h-keep outpolicy.tls_required kept

echo "# k. one submission event per outbound message, with its fields"
for c in case-b13 case-f case-h-strip; do
    qid=$(it_postfix_queue_id_for "$(mid "$c")")
    it_check "$c: Postfix logged a queue ID" test -n "$qid"
    it_check_eq "$c: swaks was given the same queue ID" "$qid" "${QID[$c]}"
    check_ev "$c" email.local_id "$qid"
    check_ev "$c" email.message_id "$(mid "$c")"
    check_ev "$c" email.direction outbound
    check_ev "$c" email.from.address '["'"$c"'@outpolicy.test"]'
    check_ev "$c" email.to.address '["rcpt@remote.test"]'
    check_ev "$c" outpolicy.envelope.from "$c@outpolicy.test"
    check_ev "$c" outpolicy.schema 1
    check_ev "$c" outpolicy.mode enforce
    check_ev "$c" tls.version 1.3
    check_ev "$c" tls.established true
    check_ev "$c" event.outcome success
done
check_ev case-b13 source.ip "$INTERNAL"
check_ev case-b13 outpolicy.verdict.action accept
check_ev case-b13 outpolicy.verdict.applied true
it_check_eq "events: submission events = outbound transactions so far" "$OUTBOUND" \
    "$(it_events_query "g(e,'event.action') == 'submission'")"

echo "# j. SIGTERM: exit 0 and the pidfile is removed"
it_daemon_stop
it_check_eq "daemon: exit status after SIGTERM" 0 "$?"
it_check "daemon: pidfile removed" test ! -e "$IT_PIDFILE"

# ------------------------------------------------------------ monitor mode

echo "# g. monitor mode delivers plaintext and logs the would-be verdict"
it_daemon_config "$CONF" "${SETTINGS[@]}" 'mode="monitor"'
it_daemon_start "$CONF" || it_die "outpolicyd did not restart"
send case-g --local-interface "$INTERNAL"
check_delivered case-g
check_one_event case-g
check_ev case-g outpolicy.mode monitor
check_ev case-g outpolicy.verdict.action reject
check_ev case-g outpolicy.verdict.applied false
check_ev case-g email.message_id "$(mid case-g)"

echo "# i. SIGHUP: a broken config keeps the old one, a good one takes effect"
# The broken file would also switch back to enforce: plaintext still being
# delivered afterwards shows the old (monitor) configuration stayed in force.
reload "${SETTINGS[@]}" 'outbound.bogus_key=1'
bad_line=$(grep -n 'bogus_key' "$CONF" | cut -d: -f1)
it_check "case-i: daemon alive after HUP with a broken config" it_daemon_alive
it_check "case-i: log names $CONF:$bad_line" \
    it_wait_for 5 grep -qF "$CONF:$bad_line" "$IT_DIR/outpolicyd.log"
send case-i-old --local-interface "$INTERNAL"
check_delivered case-i-old
check_ev case-i-old outpolicy.mode monitor
reload "${SETTINGS[@]}"
it_check "case-i: daemon alive after HUP with a good config" it_daemon_alive
send case-i-new --local-interface "$INTERNAL"
check_refused_530 case-i-new
check_ev case-i-new outpolicy.mode enforce
send case-i-tls --local-interface "$INTERNAL" "${TLS13[@]}"
check_delivered case-i-tls

echo "# l. the default buffered event sink: events appear within about a"
echo "#    second without a write per message, and SIGTERM flushes the rest"
it_daemon_stop
it_daemon_config "$CONF" "${SETTINGS[@]}" 'events.buffer=true'
it_daemon_start "$CONF" || it_die "outpolicyd did not restart"
send case-l1 --local-interface "$INTERNAL" "${TLS13[@]}"
send case-l2 --local-interface "$INTERNAL" "${TLS13[@]}"
check_delivered case-l1
check_delivered case-l2
it_check "case-l: both events written within 3 s (flushed every second)" \
    it_wait_for 3 has_event case-l2
check_one_event case-l1
send case-l3 --local-interface "$INTERNAL" "${TLS13[@]}"
check_delivered case-l3
it_daemon_stop
it_check "case-l: the last event is on disk after SIGTERM" has_event case-l3

echo "# a, c, i: refused messages never reached the queue or the sink"
for m in "${REFUSED[@]}"; do
    it_check_eq "not delivered: $m" "" "$(it_sink_by_msgid "$m")"
    it_check_eq "not queued: $m" "" "$(it_postfix_queue_id_for "$m")"
done

it_summary
