/*
 * policy/config_schema.c - every configuration option: type, default,
 * limits and the field it fills.  Anything not listed here is an error.
 * Keep conf/outpolicy.conf and conf/outpolicy.conf.5 in step with it.
 * Licence: BSD-2-Clause.
 */
#include <syslog.h>

#include "config.h"
#include "keys.h"
#include "tlsmap.h"

static const struct cf_enum mode_names[] = {
    { "enforce", POL_MODE_ENFORCE }, { "monitor", POL_MODE_MONITOR },
    { NULL, 0 },
};

static const struct cf_enum on_error_names[] = {
    { "tempfail", POL_TEMPFAIL }, { "accept", POL_ACCEPT }, { NULL, 0 },
};

static const struct cf_enum tls_action_names[] = {
    { "reject", POL_REJECT }, { "tempfail", POL_TEMPFAIL },
    { "warn", POL_WARN }, { NULL, 0 },
};

static const struct cf_enum tls_version_names[] = {
    { "none", POL_TLS_MIN_NONE }, { "TLSv1", 0x0301 },
    { "TLSv1.1", 0x0302 }, { "TLSv1.2", 0x0303 }, { "TLSv1.3", 0x0304 },
    { NULL, 0 },
};

static const struct cf_enum facility_names[] = {
    { "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
    { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
    { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
    { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
    { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 }, { NULL, 0 },
};

static const struct cf_enum action_names[] = {
    { "accept", POL_ACCEPT }, { "warn", POL_WARN },
    { "quarantine", POL_QUARANTINE }, { "tempfail", POL_TEMPFAIL },
    { "reject", POL_REJECT }, { NULL, 0 },
};

static const struct cf_enum no_key_names[] = {
    { "accept", POL_ACCEPT }, { "warn", POL_WARN }, { "reject", POL_REJECT },
    { NULL, 0 },
};

static const struct cf_enum bad_from_names[] = {
    { "reject", POL_REJECT }, { "tempfail", POL_TEMPFAIL }, { NULL, 0 },
};

static const struct cf_enum multi_from_names[] = {
    { "reject", POL_REJECT }, { "sign", POL_ACCEPT }, { NULL, 0 },
};

static const struct cf_enum canon_names[] = {
    { "relaxed/relaxed", 0 }, { "relaxed/simple", 1 },
    { "simple/relaxed", 2 }, { "simple/simple", 3 }, { NULL, 0 },
};

#define DKIM_SIGN_HEADERS "from,reply-to,subject,date,to,cc,in-reply-to," \
    "references,message-id,mime-version,content-type," \
    "content-transfer-encoding,content-id,content-description,sender," \
    "resent-date,resent-from,resent-sender,resent-to,resent-cc," \
    "list-id,list-help,list-unsubscribe,list-unsubscribe-post," \
    "list-subscribe,list-post,list-owner,list-archive,feedback-id"
#define ARC_SIGN_HEADERS "from,to,cc,subject,date,message-id,reply-to," \
    "in-reply-to,references,mime-version,content-type," \
    "content-transfer-encoding,list-id,dkim-signature"
#define DKIM_OVERSIGN "from,to,cc,subject,date,message-id,reply-to"

/* clang-format off */
const struct cf_param pol_cf_schema[] = {
 /* path                            type           default                              min  max   field */
  { "mode",                         CF_ENUM,       "enforce",                           0, 0,    CF_FIELD(mode), mode_names, NULL },
  { "on_error",                     CF_ENUM,       "tempfail",                          0, 0,    CF_FIELD(on_error), on_error_names, NULL },
  { "daemon.socket",                CF_SOCKET,     "unix:/run/outpolicy/outpolicyd.sock", 0, 0,  CF_FIELD(daemon.socket), NULL, NULL },
  { "daemon.socket_mode",           CF_OCTAL,      "0660",                              0, 0777, CF_FIELD(daemon.socket_mode), NULL, NULL },
  { "daemon.socket_group",          CF_STR,        "postfix",                           0, 0,    CF_FIELD(daemon.socket_group), NULL, NULL },
  { "daemon.user",                  CF_STR,        "",                                  0, 0,    CF_FIELD(daemon.user), NULL, NULL },
  { "daemon.group",                 CF_STR,        "",                                  0, 0,    CF_FIELD(daemon.group), NULL, NULL },
  { "daemon.pidfile",               CF_PATH,       "/run/outpolicy/outpolicyd.pid",     0, 0,    CF_FIELD(daemon.pidfile), NULL, NULL },
  { "daemon.log_level",             CF_INT,        "1",                                 0, 3,    CF_FIELD(daemon.log_level), NULL, NULL },
  { "daemon.syslog_facility",       CF_ENUM,       "mail",                              0, 0,    CF_FIELD(daemon.syslog_facility), facility_names, NULL },
  { "daemon.milter_timeout",        CF_INT,        "600",                               60, 7200, CF_FIELD(daemon.milter_timeout), NULL, NULL },
  { "daemon.shutdown_timeout",      CF_INT,        "30",                                0, 3600, CF_FIELD(daemon.shutdown_timeout), NULL, NULL },
  { "outbound.internal_hosts",      CF_ADDRLIST,   "127.0.0.0/8,::1/128",               0, 0,    CF_FIELD(outbound.internal_hosts), NULL, NULL },
  { "outbound.authenticated",       CF_BOOL,       "true",                              0, 0,    CF_FIELD(outbound.authenticated), NULL, NULL },
  { "submission_tls.min_version",   CF_ENUM,       "TLSv1.2",                           0, 0,    CF_FIELD(submission_tls.min_version), tls_version_names, NULL },
  { "submission_tls.action",        CF_ENUM,       "reject",                            0, 0,    CF_FIELD(submission_tls.action), tls_action_names, NULL },
  { "submission_tls.exempt_hosts",  CF_ADDRLIST,   "",                                  0, 0,    CF_FIELD(submission_tls.exempt_hosts), NULL, NULL },
  { "tls_required.strip",           CF_BOOL,       "true",                              0, 0,    CF_FIELD(tls_required.strip), NULL, NULL },
  { "tls_required.keep_for_senders", CF_SENDERLIST, "",                                 0, 0,    CF_FIELD(tls_required.keep_for_senders), NULL, NULL },
  { "events.file",                  CF_PATH,       "/var/log/outpolicy/events.json",    0, 0,    CF_FIELD(events.file), NULL, NULL },
  { "events.syslog",                CF_BOOL,       "false",                             0, 0,    CF_FIELD(events.syslog), NULL, NULL },
  { "events.buffer",                CF_BOOL,       "true",                              0, 0,    CF_FIELD(events.buffer), NULL, NULL },
  { "events.on_error",              CF_ENUM,       "accept",                            0, 0,    CF_FIELD(events.on_error), on_error_names, NULL },
  { "dns.nameservers",              CF_NSLIST,     "",                                  0, 0,    CF_FIELD(dns.nameservers), NULL, NULL },
  { "dns.timeout",                  CF_INT,        "5",                                 1, 60,   CF_FIELD(dns.timeout), NULL, NULL },
  { "dns.trust_anchor",             CF_PATH,       "",                                  0, 0,    CF_FIELD(dns.trust_anchor), NULL, NULL },
  { "egress.ips",                   CF_IPLIST,     "",                                  0, 0,    CF_FIELD(egress.ips), NULL, NULL },
  { "egress.spf_includes",          CF_DOMAINLIST, "",                                  0, 0,    CF_FIELD(egress.spf_includes), NULL, NULL },
  { "egress.helo_name",             CF_STR,        "",                                  0, 0,    CF_FIELD(egress.helo_name), NULL, NULL },
  { "spf.enabled",                  CF_BOOL,       "true",                              0, 0,    CF_FIELD(spf.enabled), NULL, NULL },
  { "spf.on_pass",                  CF_ENUM,       "accept",                            0, 0,    CF_FIELD(spf.on[2]), action_names, NULL },
  { "spf.on_fail",                  CF_ENUM,       "reject",                            0, 0,    CF_FIELD(spf.on[3]), action_names, NULL },
  { "spf.on_softfail",              CF_ENUM,       "warn",                              0, 0,    CF_FIELD(spf.on[4]), action_names, NULL },
  { "spf.on_neutral",               CF_ENUM,       "warn",                              0, 0,    CF_FIELD(spf.on[1]), action_names, NULL },
  { "spf.on_none",                  CF_ENUM,       "warn",                              0, 0,    CF_FIELD(spf.on[0]), action_names, NULL },
  { "spf.on_temperror",             CF_ENUM,       "tempfail",                          0, 0,    CF_FIELD(spf.on[5]), action_names, NULL },
  { "spf.on_permerror",             CF_ENUM,       "reject",                            0, 0,    CF_FIELD(spf.on[6]), action_names, NULL },
  { "dmarc.enabled",                CF_BOOL,       "true",                              0, 0,    CF_FIELD(dmarc.enabled), NULL, NULL },
  { "dmarc.on_predicted_fail",      CF_ENUM,       "reject",                            0, 0,    CF_FIELD(dmarc.on_predicted_fail), action_names, NULL },
  { "dmarc.on_temperror",           CF_ENUM,       "tempfail",                          0, 0,    CF_FIELD(dmarc.on_temperror), action_names, NULL },
  { "keys",                         CF_CUSTOM,     NULL,                                0, 0,    0, NULL, pol_keys_parse },
  { "dkim.enabled",                 CF_BOOL,       "true",                              0, 0,    CF_FIELD(dkim.enabled), NULL, NULL },
  { "dkim.signing",                 CF_CUSTOM,     NULL,                                0, 0,    0, NULL, pol_dkim_parse_signing },
  { "dkim.on_no_key",               CF_ENUM,       "warn",                              0, 0,    CF_FIELD(dkim.on_no_key), no_key_names, NULL },
  { "dkim.on_bad_from",             CF_ENUM,       "reject",                            0, 0,    CF_FIELD(dkim.on_bad_from), bad_from_names, NULL },
  { "dkim.on_multiple_from",        CF_ENUM,       "reject",                            0, 0,    CF_FIELD(dkim.on_multiple_from), multi_from_names, NULL },
  { "dkim.canonicalization",        CF_ENUM,       "relaxed/relaxed",                   0, 0,    CF_FIELD(dkim.canon), canon_names, NULL },
  { "dkim.sign_headers",            CF_HDRLIST,    DKIM_SIGN_HEADERS,                   0, 0,    CF_FIELD(dkim.sign_headers), NULL, NULL },
  { "dkim.oversign_headers",        CF_HDRLIST,    DKIM_OVERSIGN,                       0, 0,    CF_FIELD(dkim.oversign_headers), NULL, NULL },
  { "dkim.expire",                  CF_INT,        "0",                                 0, 31536000, CF_FIELD(dkim.expire), NULL, NULL },
  { "tls_policy.socket",            CF_MAPSOCKET,  "",                                  0, 0,    CF_FIELD(tls_policy.socket), NULL, NULL },
  { "tls_policy.socket_mode",       CF_OCTAL,      "0660",                              0, 0777, CF_FIELD(tls_policy.socket_mode), NULL, NULL },
  { "tls_policy.default",           CF_STR,        "encrypt protocols=>=TLSv1.2",       0, 0,    CF_FIELD(tls_policy.deflt), NULL, NULL },
  { "tls_policy.nexthop",           CF_STR,        "",                                  0, 0,    CF_FIELD(tls_policy.nexthop), NULL, NULL },
  { "tls_policy.destinations",      CF_CUSTOM,     NULL,                                0, 0,    0, NULL, pol_tlsmap_parse_rules },
  { "tls_policy.events",            CF_BOOL,       "true",                              0, 0,    CF_FIELD(tls_policy.events), NULL, NULL },
  { "arc.enabled",                  CF_BOOL,       "true",                              0, 0,    CF_FIELD(arc.enabled), NULL, NULL },
  { "arc.authserv_id",              CF_STR,        "",                                  0, 0,    CF_FIELD(arc.authserv_id), NULL, NULL },
  { "arc.key",                      CF_STR,        "",                                  0, 0,    CF_FIELD(arc.key_id), NULL, NULL },
  { "arc.sealing",                  CF_CUSTOM,     NULL,                                0, 0,    0, NULL, pol_arc_parse_sealing },
  { "arc.sign_headers",             CF_HDRLIST,    ARC_SIGN_HEADERS,                    0, 0,    CF_FIELD(arc.sign_headers), NULL, NULL },
  { "arc.max_signatures",           CF_INT,        "51",                                2, 101,  CF_FIELD(arc.max_signatures), NULL, NULL },
  { "arc.max_key_lookups",          CF_INT,        "10",                                1, 51,   CF_FIELD(arc.max_key_lookups), NULL, NULL },
  { NULL, 0, NULL, 0, 0, 0, NULL, NULL },
};
/* clang-format on */
