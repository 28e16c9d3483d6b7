/*
 * policy/internal.h - types shared inside libpolicy; not for milter/.
 *
 * Owns the definition of struct pol_config (immutable once loaded) and the
 * small utility modules: arena, address lists, TLS versions, JSON writer.
 * Licence: BSD-2-Clause.
 */
#ifndef POL_INTERNAL_H
#define POL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "policy.h"

#define POL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- arena.c: per-message allocations, freed all at once ---- */
struct pol_arena;
struct pol_arena *pol_arena_new(void);
void pol_arena_free(struct pol_arena *a);
/** Zeroed memory from the arena, or NULL when out of memory. */
void *pol_arena_alloc(struct pol_arena *a, size_t n);
char *pol_arena_strdup(struct pol_arena *a, const char *s);
char *pol_arena_strndup(struct pol_arena *a, const char *s, size_t n);

/* ---- addrlist.c: IPv4/IPv6 CIDR lists ---- */
struct pol_addrlist;
/** Parse "192.0.2.1", "192.0.2.0/24", "2001:db8::/32".  0 or -1. */
int pol_addrlist_add(struct pol_addrlist **l, const char *spec,
    char *why, size_t whylen);
/** True when the textual address addr is in the list. */
bool pol_addrlist_match(const struct pol_addrlist *l, const char *addr);
void pol_addrlist_free(struct pol_addrlist *l);

/* ---- strlist: a NULL-terminated array of strings (config lists) ---- */
struct pol_strlist {
    char **v;
    size_t n;
};
void pol_strlist_clear(struct pol_strlist *l);
/** "user@dom" exact (case-insensitive) or "@dom" for a domain. */
bool pol_senderlist_match(const struct pol_strlist *l, const char *addr);

/* ---- tlsver.c ---- */
/** "TLSv1.2" -> 0x0303, "TLSv1" -> 0x0301, "SSLv3" -> 0x0300;
 *  "" -> 0 (no TLS); -1 when unrecognised. */
int pol_tls_version_parse(const char *s);
/** Short form for events: 0x0304 -> "1.3"; buf of at least 8 bytes. */
const char *pol_tls_version_short(int v, char *buf, size_t len);

/* ---- json.c: a tiny streaming JSON writer into a growable buffer ---- */
struct pol_json {
    char *buf;
    size_t len, cap;
    int depth;
    bool need_comma[16];
    bool oom;
};
void pol_json_init(struct pol_json *j);
void pol_json_free(struct pol_json *j);
void pol_json_obj_begin(struct pol_json *j, const char *key);
void pol_json_obj_end(struct pol_json *j);
void pol_json_arr_begin(struct pol_json *j, const char *key);
void pol_json_arr_end(struct pol_json *j);
void pol_json_str(struct pol_json *j, const char *key, const char *val);
void pol_json_int(struct pol_json *j, const char *key, long long val);
void pol_json_bool(struct pol_json *j, const char *key, bool val);

/* ---- addr.c: RFC 5322 address-list parsing (From:) ---- */
/**
 * Extract the addr-specs of an address list, e.g. a From: value.
 * Writes at most max pointers (allocated from a) to out.
 * @return number found (0 if none), or -1 when the value does not parse.
 */
int pol_addr_parse_list(struct pol_arena *a, const char *value,
    const char **out, int max);
/** Domain part of an address ("" when there is none); borrowed pointer. */
const char *pol_addr_domain(const char *addr);

/* ---- events.c: event sinks ---- */
struct pol_events;
struct pol_events *pol_events_new(const char *file, bool to_syslog,
    enum pol_action on_error, bool buffer);
void pol_events_free(struct pol_events *ev);
/** RFC 3339 UTC time stamp with milliseconds (the clock hook if set). */
void pol_event_timestamp(const struct pol_config *cfg, char *buf,
    size_t len);
/** Start an event: the root object, @timestamp and event.* (kind,
 * category email, action, outcome unless NULL); the caller closes the
 * root object. */
void pol_event_open(struct pol_json *j, const char *ts, const char *action,
    const char *outcome);
/** Write buffered events (force, or when now is another second). */
void pol_events_flush(struct pol_events *ev, time_t now, bool force);
enum pol_status pol_events_open(struct pol_events *ev, struct pol_err *err);
/**
 * Write one event line.  Returns POL_ETEMP when the file sink failed;
 * the failure is logged through hooks at most once a minute.
 */
struct pol_config;
enum pol_status pol_events_write(const struct pol_config *cfg,
    const char *line, size_t len);

/* ---- the configuration (immutable once loaded) ---- */
enum pol_tls_min { POL_TLS_MIN_NONE = 0 };

struct pol_key;
struct pol_dkim_rule;
struct pol_dns;
struct pol_spf;
struct pol_tls_rule;
struct pol_dmarc_cache;
struct pol_keytable {
    struct pol_key *v;
    size_t n;
};

struct pol_config {
    atomic_int refcnt;
    char *file;
    struct pol_hooks hooks;

    int mode;     /* enum pol_mode */
    int on_error; /* enum pol_action: POL_TEMPFAIL or POL_ACCEPT */

    struct {
        char *socket;
        int socket_mode;
        char *socket_group;
        char *user;
        char *group;
        char *pidfile;
        int log_level;
        int syslog_facility;
        int shutdown_timeout;
        int milter_timeout;
    } daemon;
    struct {
        struct pol_addrlist *internal_hosts;
        bool authenticated;
    } outbound;
    struct {
        int min_version; /* 0 = check off; else 0x0301.. */
        int action;      /* enum pol_action */
        struct pol_addrlist *exempt_hosts;
    } submission_tls;
    struct {
        bool strip;
        struct pol_strlist keep_for_senders;
    } tls_required;
    struct {
        char *file;
        bool syslog;
        int on_error;
        bool buffer;
    } events;
    struct {
        struct pol_strlist nameservers;
        int timeout;            /* seconds per query */
        char *trust_anchor;
        struct pol_dns *resolver; /* runtime, built at load */
    } dns;
    struct {
        struct pol_strlist ips;          /* as receivers see us */
        struct pol_strlist spf_includes; /* e.g. spf.mail.qq.com */
        char *helo_name;                 /* our HELO, for the null sender */
    } egress;
    struct {
        bool enabled;
        int on[7];              /* action per enum pol_spf_result */
        struct pol_spf *state;  /* runtime: libspf2 server + cache */
    } spf;
    struct {
        bool enabled;
        int on_predicted_fail;  /* for p=quarantine / p=reject */
        int on_temperror;
        void *psl;              /* psl_ctx_t * */
        struct pol_dmarc_cache *cache; /* runtime: look-ups for their TTL */
    } dmarc;
    struct {
        bool enabled;
        char *authserv_id;
        char *key_id;              /* ADMD sealing key ("" = none) */
        const struct pol_key *key; /* resolved key_id */
        struct pol_dkim_rule *rules; /* per From domain */
        size_t nrules;
        struct pol_strlist sign_headers;
        int max_signatures, max_key_lookups;
    } arc;
    struct {
        char *socket;  /* "" = no TLS policy map */
        int socket_mode;
        char *deflt;   /* default Postfix TLS policy */
        char *nexthop; /* Postfix's relayhost, for destination events */
        struct pol_tls_rule *rules;
        size_t nrules;
        bool events;
    } tls_policy;
    struct pol_keytable keys;
    struct {
        bool enabled;
        struct pol_dkim_rule *rules;
        size_t nrules;
        int on_no_key;        /* accept / warn / reject */
        int on_bad_from;      /* reject / tempfail */
        int on_multiple_from; /* reject / accept (= sign the first) */
        int canon;            /* header = canon / 2, body = canon % 2;
                               * 0 = relaxed, 1 = simple */
        struct pol_strlist sign_headers;
        struct pol_strlist oversign_headers;
        int expire;           /* x= seconds after t=; 0 = none */
        void *lib;            /* DKIM_LIB *, built by pol_dkim_setup */
    } dkim;

    struct pol_events *sink; /* runtime: opened by pol_config_activate */
    struct pol_daemon_settings daemon_view;
};

/* ---- logging inside the engine ---- */
void pol_log(const struct pol_config *cfg, enum pol_prio prio,
    const char *fmt, ...) POL_PRINTF(3, 4);
time_t pol_now(const struct pol_config *cfg);

/* ---- verdicts ---- */
void pol_verdict_init(struct pol_verdict *v);

#endif
