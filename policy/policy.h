/*
 * policy/policy.h - public API of the outpolicy engine (libpolicy).
 *
 * The engine decides; the MTA glue (milter/) collects what the MTA says and
 * applies the decisions.  Nothing here depends on libmilter.  A loaded
 * configuration is immutable and reference counted, so each message keeps
 * the snapshot it started with while SIGHUP installs a new one.
 *
 * Thread safety: a struct pol_config may be shared by any number of threads;
 * a struct pol_msg belongs to one thread at a time.
 * Licence: BSD-2-Clause.
 */
#ifndef POL_POLICY_H
#define POL_POLICY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define POL_SCHEMA_VERSION 1

/** Did the call work?  (Kept apart from "what is the decision?".) */
enum pol_status {
    POL_OK = 0,
    POL_ETEMP, /* resource or dependency failure: retrying may succeed */
    POL_EPERM, /* malformed input: retrying will not help */
};

/** Actions, ordered by severity: a later check can only raise it. */
enum pol_action {
    POL_ACCEPT = 0,
    POL_WARN,
    POL_QUARANTINE,
    POL_TEMPFAIL,
    POL_REJECT,
};

enum pol_mode { POL_MODE_ENFORCE = 0, POL_MODE_MONITOR };

/** Milter stage at which a check runs. */
enum pol_stage { POL_AT_ENVFROM = 0, POL_AT_EOH, POL_AT_EOM,
    POL_STAGE_COUNT };

/** Decision for one message. */
struct pol_verdict {
    enum pol_action action;
    const char *check; /* deciding check's name; static storage, or NULL */
    char reply[256];   /* "530 5.7.0 text" unless action is accept/warn;
                        * for warn, the reason */
};

/** Error text of a failed call, "FILE:LINE: option: what is wrong". */
struct pol_err {
    char msg[512];
};

/** Log priorities passed to the log hook (values match syslog's). */
enum pol_prio { POL_LOG_ERR = 3, POL_LOG_WARNING = 4, POL_LOG_NOTICE = 5,
                POL_LOG_INFO = 6, POL_LOG_DEBUG = 7 };

/** Hooks the embedding program gives the engine; all optional. */
struct pol_hooks {
    /* Log one line (no newline).  The engine never writes to syslog or
     * stderr itself. */
    void (*log)(void *arg, enum pol_prio prio, const char *line);
    /* Deliver one event line (JSON, no newline) to syslog when
     * events.syslog is on. */
    void (*event_syslog)(void *arg, const char *json);
    /* Wall clock; NULL = time(3).  Tests inject a fixed clock. */
    time_t (*clock)(void *arg);
    void *arg;
};

struct pol_config;

/**
 * Load and validate a configuration file.
 * @return a new config with one reference, or NULL with err filled.
 */
struct pol_config *pol_config_load(const char *file,
    const struct pol_hooks *hooks, struct pol_err *err);

/** As pol_config_load, from a string (name is used in messages). */
struct pol_config *pol_config_load_string(const char *text, const char *name,
    const struct pol_hooks *hooks, struct pol_err *err);

/**
 * Open what the config needs at run time (event sinks).  Call after the
 * daemon dropped its privileges, and for each reloaded config.
 * @return POL_OK, or POL_ETEMP with err filled.
 */
enum pol_status pol_config_activate(struct pol_config *cfg,
    struct pol_err *err);

/** Take / drop a reference.  The last unref frees; unref(NULL) is a no-op. */
struct pol_config *pol_config_ref(struct pol_config *cfg);
void pol_config_unref(struct pol_config *cfg);

/** Call fn for every private key file of the config. */
void pol_config_key_files(const struct pol_config *cfg,
    void (*fn)(void *arg, const char *file), void *arg);

/** Turn the event sinks off (tools that must not write events). */
void pol_config_quiet(struct pol_config *cfg);

/** Write buffered events out (the daemon calls this every second and at
 * exit). */
void pol_config_flush(struct pol_config *cfg);

/** Reopen the event file (logrotate). */
enum pol_status pol_config_reopen(struct pol_config *cfg, struct pol_err *err);

/** Settings the daemon needs (borrowed; valid while the config is). */
struct pol_daemon_settings {
    const char *socket;
    unsigned socket_mode;
    const char *socket_group;
    const char *user;
    const char *group;
    const char *pidfile;
    int log_level;
    int syslog_facility; /* LOG_MAIL etc. */
    int shutdown_timeout;
    int milter_timeout; /* seconds libmilter waits for the MTA */
};
const struct pol_daemon_settings *pol_config_daemon(
    const struct pol_config *cfg);
enum pol_mode pol_config_mode(const struct pol_config *cfg);
const char *pol_config_file(const struct pol_config *cfg);

/** What the MTA told us about the SMTP client and session. */
struct pol_client {
    char addr[64];        /* textual IP; "" when unknown */
    char name[256];       /* reverse name as the MTA saw it */
    char helo[256];
    char tls_version[32]; /* {tls_version}, e.g. "TLSv1.3"; "" = no TLS */
    char tls_cipher[128]; /* {cipher} */
    int tls_bits;         /* {cipher_bits} */
    int hdr_leadspc;      /* header values keep their leading space (the
                           * MTA agreed to SMFIP_HDR_LEADSPC); values we
                           * add must then start with a space too */
};

struct pol_msg;

/** One header edit for the glue to apply at end of message. */
enum pol_edit_kind { POL_EDIT_INSERT, POL_EDIT_ADD, POL_EDIT_DELETE };
struct pol_edit {
    enum pol_edit_kind kind;
    const char *name;
    const char *value; /* NULL for delete */
    int index;         /* insert: position (0 = top); delete: n-th field of
                        * that name, 1-based */
    struct pol_edit *next;
};

/**
 * Start a message (at MAIL FROM).  Takes its own config reference.
 * @param auth_user {auth_authen}, NULL or "" when not authenticated.
 * @param queue_id {i}, NULL when unknown yet.
 * @return new message, or NULL when out of memory.
 */
struct pol_msg *pol_msg_new(struct pol_config *cfg,
    const struct pol_client *client, const char *auth_user,
    const char *queue_id);

/** Free a message and everything allocated for it.  NULL is a no-op. */
void pol_msg_free(struct pol_msg *m);

/**
 * MAIL FROM.  sender is the address without angle brackets ("" for the
 * null sender).  Runs the envelope-stage checks.
 * @param v filled with the decision.  v->action == POL_ACCEPT with
 *          pol_msg_is_outbound() false means: not ours, accept untouched.
 *          In monitor mode v says what would have been done and the glue
 *          must carry on (see pol_msg_enforced()).
 */
enum pol_status pol_msg_envfrom(struct pol_msg *m, const char *sender,
    struct pol_verdict *v);

/** True when this message is outbound and subject to policy. */
int pol_msg_is_outbound(const struct pol_msg *m);

/** True when the verdict must be applied (enforce mode), false in monitor. */
int pol_msg_enforced(const struct pol_msg *m);

/** RCPT TO (address without angle brackets). */
enum pol_status pol_msg_rcpt(struct pol_msg *m, const char *rcpt);

/** One header field as the MTA gives it (value without the colon). */
enum pol_status pol_msg_header(struct pol_msg *m, const char *name,
    const char *value);

/**
 * End of headers: choose signing keys from From: and start the signers.
 * v as for pol_msg_envfrom (a reject/tempfail here may be applied at once).
 */
enum pol_status pol_msg_eoh(struct pol_msg *m, struct pol_verdict *v);

/** A chunk of the body (streamed; never buffered whole). */
enum pol_status pol_msg_body(struct pol_msg *m, const unsigned char *chunk,
    size_t len);

/** Update the queue ID (Postfix gives {i} again at end of message). */
void pol_msg_set_queue_id(struct pol_msg *m, const char *queue_id);

/**
 * End of message: run the end-of-message checks and prepare the header
 * edits.  v is the decision; the glue applies the edits, then calls
 * pol_msg_finish().
 */
enum pol_status pol_msg_eom(struct pol_msg *m, struct pol_verdict *v);

/** Header edits to apply (borrowed, valid until pol_msg_free), or NULL. */
const struct pol_edit *pol_msg_edits(const struct pol_msg *m);

/**
 * Record the message's event with the decision the glue is about to apply
 * (after the edits at end of message, or a refusal at an earlier stage).
 * When the event cannot be written and events.on_error is "tempfail", v is
 * raised to a tempfail.  Writes at most one event per message.
 */
enum pol_status pol_msg_finish(struct pol_msg *m, struct pol_verdict *v);

/** Last error text on this message, an SMTP reply (borrowed). */
const char *pol_msg_error(const struct pol_msg *m);

/**
 * What to do when a stage returned POL_ETEMP: the config's on_error
 * (POL_TEMPFAIL, or POL_ACCEPT to let mail through unfiltered).
 */
enum pol_action pol_msg_error_action(const struct pol_msg *m);

/**
 * For tools (outpolicyctl dkim-sign): treat the message as outbound
 * whatever its client, without the envelope-stage checks.
 */
void pol_msg_set_outbound(struct pol_msg *m, const char *sender);

/**
 * For tools (outpolicyctl arc-verify / arc-seal): where ARC keys come
 * from (fn(arg, "sel._domainkey.dom", out, len) -> 1 found, 0 none, -1
 * temporary; NULL = DNS), the results for our ARC-Authentication-Results
 * (NULL = this hop's own), an h= list for our AMS (NULL = arc.sign_headers)
 * and the suite's "standardized" field format.
 */
void pol_msg_set_arc_tool(struct pol_msg *m,
    int (*fn)(void *, const char *, char *, size_t), void *arg,
    const char *results, const char *headers, int standardize);

/** The ARC chain result after pol_msg_eom: "none"/"pass"/"fail". */
const char *pol_msg_arc_result(const struct pol_msg *m, int *instances,
    const char **reason, int *added);

/** Key algorithms for pol_keygen. */
enum { POL_KEYGEN_RSA = 0, POL_KEYGEN_ED25519 = 1 };

/**
 * Generate a DKIM key pair: the private key is written to file (created,
 * mode 0600, must not exist), the TXT record to publish to txt.
 */
enum pol_status pol_keygen(int alg, int bits, const char *file, char *txt,
    size_t len, struct pol_err *err);

/**
 * The pre-flight result of a message (after pol_msg_eoh) as one JSON
 * object: SPF per egress, DKIM keys, DMARC policy, alignment, predicted
 * result, verdict.  malloc'ed; NULL when out of memory.
 */
char *pol_msg_preflight_json(const struct pol_msg *m,
    const struct pol_verdict *v);

/* ---- the TLS policy map (socketmap for smtp_tls_policy_maps) ---- */

/**
 * Parse one netstring from buf (len bytes): 1 with data/dlen/used set,
 * 0 when more bytes are needed, -1 when malformed or longer than max.
 */
int pol_netstring_parse(const char *buf, size_t len, size_t max,
    const char **data, size_t *dlen, size_t *used);
/** data as a netstring into out; its length, or 0 if out is too small. */
size_t pol_netstring_format(char *out, size_t outlen, const char *data);

/**
 * Answer one socketmap request ("tlspolicy KEY", without netstring
 * framing) as a netstring reply ("OK POLICY" / "PERM reason") into out;
 * logs and writes a tls_policy event.  Returns the reply length.
 */
size_t pol_tlsmap_answer(const struct pol_config *cfg, const char *req,
    size_t len, char *out, size_t outlen);

/** The policy for a next-hop and the rule that matched ("default"). */
const char *pol_tlsmap_decide(const struct pol_config *cfg,
    const char *nexthop, const char **rule);

/** tls_policy.socket ("" = no map) and its mode. */
const char *pol_config_tlsmap_socket(const struct pol_config *cfg,
    unsigned *mode);

/* ---- Postfix log lines (maillog.c), for outpolicyctl trace ---- */
enum pol_logkind {
    POL_LOG_OTHER = 0, POL_LOG_DELIVERY, POL_LOG_TLS, POL_LOG_FROM,
    POL_LOG_MSGID, POL_LOG_EXPIRED, POL_LOG_REMOVED,
};

struct pol_logline {
    enum pol_logkind kind;
    char ts[40];       /* as logged; "" for bare messages */
    char prog[64];     /* "postfix/smtp", "postfix-out/smtp" */
    char service[32];  /* "smtp" */
    long pid;
    char qid[32];
    char to[320], orig_to[320], from[320], msgid[300];
    char relay[300], relay_host[256], relay_ip[64];
    int relay_port;
    double delay, delays[4];
    char dsn[16], status[16], reason[400];
    char tls_trust[16], tls_version[16], tls_cipher[80];
    int nrcpt;
    int conn_use; /* > 1: a cached connection reused */
};

/**
 * Parse one log line (no newline).  0: parsed (kind says what; OTHER for
 * lines of no interest), -1: not a log line we can read.
 */
int pol_logline_parse(const char *line, struct pol_logline *l);

/**
 * outpolicyctl check-domain: check domain's DNS against cfg (activated),
 * print the report (text or JSON) to out.  Returns 0 all OK, 1 warnings,
 * 2 failures, 3 DNS could not be reached.  provider: "exmail" or NULL.
 */
#include <stdbool.h>
#include <stdio.h>
int pol_check_domain(const struct pol_config *cfg, const char *domain,
    const char *provider, bool json, FILE *out);

/* Helpers shared with the glue and tests. */
const char *pol_action_name(enum pol_action a);

/** Raise v to action (never lowers it); reply is printf-formatted. */
void pol_verdict_set(struct pol_verdict *v, enum pol_action action,
    const char *check, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * Split an SMTP reply "550 5.7.1 text" into its parts for smfi_setreply.
 * Returns 0 on success, -1 if reply is not of that form.
 */
int pol_reply_split(const char *reply, char *rcode, char *xcode,
    const char **text);

#endif
