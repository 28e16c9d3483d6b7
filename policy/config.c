/*
 * policy/config.c - load a libconfig file, validate it against the schema
 * (config_schema.c) and build an immutable, reference-counted
 * struct pol_config.
 *
 * libconfig is used for syntax only; every meaning lives in the schema.
 * Each error names FILE:LINE and the option.  Loading is thread-safe (no
 * globals); a loaded config is read-only and shared between threads.
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <libgen.h>
#include <unistd.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <libpsl.h>

#include "config.h"
#include "dns.h"
#include "keys.h"
#include "tlsmap.h"
#include "spf.h"

#define FIELD(cfg, p, type) ((type *)((char *)(cfg) + (p)->off))

/* name of the file (or string) being loaded by this thread, for errors on
 * settings that libconfig cannot place in a file (read from a string) */
static __thread const char *cf_name;

void
pol_cf_error(struct pol_err *err, const config_setting_t *s, const char *path,
    const char *fmt, ...)
{
    char what[384];
    const char *file = s ? config_setting_source_file(s) : NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(err->msg, sizeof(err->msg), "%s:%u: option '%s': %s",
        file ? file : cf_name ? cf_name : "(config)",
        s ? config_setting_source_line(s) : 0,
        path, what);
}

/* find_param - schema entry for a dotted path, or NULL */
static const struct cf_param *
find_param(const char *path)
{
    for (const struct cf_param *p = pol_cf_schema; p->path; p++)
        if (strcmp(p->path, path) == 0)
            return p;
    return NULL;
}

/* is_section - some option lives under "path." */
static bool
is_section(const char *path)
{
    size_t n = strlen(path);

    for (const struct cf_param *p = pol_cf_schema; p->path; p++)
        if (strncmp(p->path, path, n) == 0 && p->path[n] == '.')
            return true;
    return false;
}

/* check_tree - every setting in the file must be in the schema */
static int
check_tree(const config_setting_t *group, const char *prefix,
    struct pol_err *err)
{
    int n = config_setting_length(group);

    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, i);
        const char *name = config_setting_name(s);
        char path[256];

        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "",
            name ? name : "?");
        if (config_setting_is_group(s)) {
            if (!is_section(path)) {
                pol_cf_error(err, s, path, "unknown section");
                return -1;
            }
            if (check_tree(s, path, err) < 0)
                return -1;
        } else if (find_param(path) == NULL) {
            pol_cf_error(err, s, path, is_section(path)
                    ? "is a section: write it as %s = { ... };"
                    : "unknown option%s", is_section(path) ? path : "");
            return -1;
        }
    }
    return 0;
}

/* lookup_enum - value of name in names, or -1 */
static int
lookup_enum(const struct cf_enum *names, const char *name, int *value)
{
    for (; names->name; names++)
        if (strcmp(names->name, name) == 0) {
            *value = names->value;
            return 0;
        }
    return -1;
}

/* enum_choices - "a", "b" or "c" */
static void
enum_choices(const struct cf_enum *names, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (; names->name && used < len; names++)
        used += (size_t)snprintf(buf + used, len - used, "%s\"%s\"",
            used ? (names[1].name ? ", " : " or ") : "", names->name);
}

/* check_socket - unix:/abs/path, local:/abs/path, inet[6]:PORT[@HOST] */
static const char *
check_socket(const char *v)
{
    const char *rest;
    char *end;
    long port;

    if (strncmp(v, "unix:", 5) == 0 || strncmp(v, "local:", 6) == 0) {
        rest = strchr(v, ':') + 1;
        if (rest[0] != '/')
            return "a unix socket needs an absolute path, e.g. "
                   "\"unix:/run/outpolicy/outpolicyd.sock\"";
        return NULL;
    }
    if (strncmp(v, "inet:", 5) == 0 || strncmp(v, "inet6:", 6) == 0) {
        rest = strchr(v, ':') + 1;
        errno = 0;
        port = strtol(rest, &end, 10);
        if (end == rest || port < 1 || port > 65535 || errno != 0
            || (*end != '\0' && *end != '@') || (*end == '@' && !end[1]))
            return "an inet socket is \"inet:PORT@HOST\" with PORT 1..65535";
        if (*end == '\0')
            return "name the address to listen on, e.g. "
                   "\"inet:8891@127.0.0.1\": without @HOST the milter "
                   "would listen on every address";
        return NULL;
    }
    return "must be \"unix:/path\" or \"inet:PORT@HOST\"";
}

/* check_sender - "user@domain" or "@domain" */
static bool
check_sender(const char *v)
{
    const char *at = strrchr(v, '@');

    if (at == NULL || at[1] == '\0' || strchr(at + 1, '.') == NULL)
        return false;
    for (const char *c = v; *c; c++)
        if (isspace((unsigned char)*c) || *c == '<' || *c == '>')
            return false;
    return true;
}

/* check_hdrname - printable ASCII without ':' or space (RFC 5322 2.2) */
static bool
check_hdrname(const char *v)
{
    if (*v == '\0' || strlen(v) > 76)
        return false;
    for (; *v; v++)
        if (*v <= 32 || *v >= 127 || *v == ':')
            return false;
    return true;
}

/* check_nameserver - "IP" or "IP@PORT" */
static bool
check_nameserver(const char *v)
{
    char ip[64];
    const char *at = strchr(v, '@');
    size_t n = at ? (size_t)(at - v) : strlen(v);
    unsigned char buf[16];
    long port;
    char *end;

    if (n == 0 || n >= sizeof(ip))
        return false;
    memcpy(ip, v, n);
    ip[n] = '\0';
    if (inet_pton(AF_INET, ip, buf) != 1 && inet_pton(AF_INET6, ip, buf) != 1)
        return false;
    if (at == NULL)
        return true;
    port = strtol(at + 1, &end, 10);
    return at[1] != '\0' && *end == '\0' && port >= 1 && port <= 65535;
}

/* check_list_value - the per-type rule for one list element, or NULL */
static const char *
check_list_value(enum cf_type t, const char *v)
{
    unsigned char buf[16];

    switch (t) {
    case CF_SENDERLIST:
        return check_sender(v) ? NULL : "is not \"user@domain\" or \"@domain\"";
    case CF_HDRLIST:
        return check_hdrname(v) ? NULL : "is not a header field name";
    case CF_NSLIST:
        return check_nameserver(v) ? NULL
            : "is not an IP address or IP@PORT, e.g. \"127.0.0.1@5353\"";
    case CF_IPLIST:
        return inet_pton(AF_INET, v, buf) == 1
                || inet_pton(AF_INET6, v, buf) == 1
            ? NULL : "is not an IP address";
    case CF_DOMAINLIST:
        return pol_domain_valid(v) && strchr(v, '.') ? NULL
            : "is not a domain name";
    default:
        return NULL;
    }
}

/* add_list_item - one element of an address or sender list */
static int
add_list_item(const struct cf_param *p, struct pol_config *cfg,
    const char *v, const config_setting_t *s, struct pol_err *err)
{
    char why[160];

    if (p->type == CF_ADDRLIST) {
        if (pol_addrlist_add(FIELD(cfg, p, struct pol_addrlist *), v, why,
                sizeof(why)) < 0) {
            pol_cf_error(err, s, p->path, "%s", why);
            return -1;
        }
        return 0;
    }
    struct pol_strlist *l = FIELD(cfg, p, struct pol_strlist);
    char **nv;
    const char *bad = check_list_value(p->type, v);
    if (bad != NULL) {
        pol_cf_error(err, s, p->path, "\"%s\" %s", v, bad);
        return -1;
    }
    if ((nv = realloc(l->v, (l->n + 2) * sizeof(*nv))) == NULL
        || (nv[l->n] = strdup(v)) == NULL) {
        if (nv != NULL)
            l->v = nv;
        pol_cf_error(err, s, p->path, "out of memory");
        return -1;
    }
    l->v = nv;
    l->v[++l->n] = NULL;
    return 0;
}

/* set_list - a list option from the file, or from its default */
static int
set_list(const struct cf_param *p, struct pol_config *cfg,
    const config_setting_t *s, struct pol_err *err)
{
    if (s == NULL) { /* default: comma-separated */
        char buf[1024], *tok, *save = NULL;
        snprintf(buf, sizeof(buf), "%s", p->def);
        for (tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save))
            if (add_list_item(p, cfg, tok, NULL, err) < 0)
                return -1;
        return 0;
    }
    if (!config_setting_is_aggregate(s) || config_setting_is_group(s)) {
        pol_cf_error(err, s, p->path, "must be a list of strings, e.g. "
            "[ \"192.0.2.0/24\" ]");
        return -1;
    }
    for (int i = 0; i < config_setting_length(s); i++) {
        const config_setting_t *e = config_setting_get_elem(s, i);
        const char *v = config_setting_get_string(e);
        if (v == NULL) {
            pol_cf_error(err, e, p->path, "element %d is not a string", i + 1);
            return -1;
        }
        if (add_list_item(p, cfg, v, e, err) < 0)
            return -1;
    }
    return 0;
}

/* set_string_like - STR, PATH, ENUM, OCTAL, SOCKET from text */
static int
set_string_like(const struct cf_param *p, struct pol_config *cfg,
    const char *v, const config_setting_t *s, struct pol_err *err)
{
    const char *why;
    char choices[256], *end;
    long mode;

    switch (p->type) {
    case CF_ENUM:
        if (lookup_enum(p->names, v, FIELD(cfg, p, int)) == 0)
            return 0;
        enum_choices(p->names, choices, sizeof(choices));
        pol_cf_error(err, s, p->path, "\"%s\" is not one of %s", v, choices);
        return -1;
    case CF_OCTAL:
        mode = strtol(v, &end, 8);
        if (*v == '\0' || *end != '\0' || mode < 0 || mode > p->max) {
            pol_cf_error(err, s, p->path,
                "\"%s\" is not an octal mode like \"0660\"", v);
            return -1;
        }
        *FIELD(cfg, p, int) = (int)mode;
        return 0;
    case CF_MAPSOCKET:
        if (*v == '\0')
            break;
        /* fall through */
    case CF_SOCKET:
        if ((why = check_socket(v)) != NULL) {
            pol_cf_error(err, s, p->path, "\"%s\": %s", v, why);
            return -1;
        }
        break;
    case CF_PATH:
        if (*v != '\0' && *v != '/') {
            pol_cf_error(err, s, p->path, "\"%s\" is not an absolute path", v);
            return -1;
        }
        break;
    default:
        break;
    }
    if ((*FIELD(cfg, p, char *) = strdup(v)) == NULL) {
        pol_cf_error(err, s, p->path, "out of memory");
        return -1;
    }
    return 0;
}

/* set_param - one option, from setting s or (s == NULL) its default */
static int
set_param(const struct cf_param *p, struct pol_config *cfg,
    const config_setting_t *s, struct pol_err *err)
{
    const char *v;
    long long n;

    switch (p->type) {
    case CF_CUSTOM:
        return p->parse(s, cfg, err);
    case CF_ADDRLIST:
    case CF_SENDERLIST:
    case CF_HDRLIST:
    case CF_NSLIST:
    case CF_IPLIST:
    case CF_DOMAINLIST:
        return set_list(p, cfg, s, err);
    case CF_INT:
        if (s == NULL)
            n = strtoll(p->def, NULL, 10);
        else if (config_setting_type(s) == CONFIG_TYPE_INT
            || config_setting_type(s) == CONFIG_TYPE_INT64)
            n = config_setting_get_int64(s);
        else {
            pol_cf_error(err, s, p->path, "must be an integer");
            return -1;
        }
        if (n < p->min || n > p->max) {
            pol_cf_error(err, s, p->path, "%lld is out of range %ld..%ld", n,
                p->min, p->max);
            return -1;
        }
        *FIELD(cfg, p, int) = (int)n;
        return 0;
    case CF_BOOL:
        if (s == NULL)
            *FIELD(cfg, p, bool) = strcmp(p->def, "true") == 0;
        else if (config_setting_type(s) == CONFIG_TYPE_BOOL)
            *FIELD(cfg, p, bool) = config_setting_get_bool(s) != 0;
        else {
            pol_cf_error(err, s, p->path, "must be true or false");
            return -1;
        }
        return 0;
    default:
        if (s == NULL)
            v = p->def;
        else if ((v = config_setting_get_string(s)) == NULL) {
            pol_cf_error(err, s, p->path, "must be a string (in quotes)");
            return -1;
        }
        return set_string_like(p, cfg, v, s, err);
    }
}

/* free_fields - release what set_param allocated */
static void
free_fields(struct pol_config *cfg)
{
    for (const struct cf_param *p = pol_cf_schema; p->path; p++) {
        switch (p->type) {
        case CF_STR:
        case CF_PATH:
        case CF_SOCKET:
        case CF_MAPSOCKET:
            free(*FIELD(cfg, p, char *));
            break;
        case CF_ADDRLIST:
            pol_addrlist_free(*FIELD(cfg, p, struct pol_addrlist *));
            break;
        case CF_SENDERLIST:
        case CF_HDRLIST:
        case CF_NSLIST:
        case CF_IPLIST:
        case CF_DOMAINLIST:
            pol_strlist_clear(FIELD(cfg, p, struct pol_strlist));
            break;
        default:
            break;
        }
    }
    pol_dkim_unconfigure(cfg);
    pol_tlsmap_unconfigure(cfg);
    pol_keys_free(&cfg->keys);
    pol_spf_free(cfg->spf.state);
    pol_dmarc_cache_free(cfg->dmarc.cache);
    pol_dns_free(cfg->dns.resolver);
    if (cfg->dmarc.psl != NULL && cfg->dmarc.psl != psl_builtin())
        psl_free(cfg->dmarc.psl);
}

/* check_semantics - rules that involve more than one option */
static int
check_semantics(struct pol_config *cfg, config_t *lc, struct pol_err *err)
{
    bool from = false;
    const char *bad;

    for (size_t i = 0; i < cfg->dkim.sign_headers.n; i++)
        from = from || strcasecmp(cfg->dkim.sign_headers.v[i], "from") == 0;
    if (!from) {
        pol_cf_error(err, config_lookup(lc, "dkim.sign_headers"),
            "dkim.sign_headers", "must include \"From\" (RFC 6376 5.4)");
        return -1;
    }
    if (*cfg->dns.trust_anchor != '\0'
        && access(cfg->dns.trust_anchor, R_OK) != 0) {
        pol_cf_error(err, config_lookup(lc, "dns.trust_anchor"),
            "dns.trust_anchor", "cannot read %s: %s",
            cfg->dns.trust_anchor, strerror(errno));
        return -1;
    }
    if (cfg->egress.ips.n + cfg->egress.spf_includes.n > POL_SPF_MAX_EGRESS) {
        pol_cf_error(err, config_lookup(lc, "egress.ips"), "egress.ips",
            "egress.ips and egress.spf_includes: at most %d entries "
            "together", POL_SPF_MAX_EGRESS);
        return -1;
    }
    if ((bad = pol_tlsmap_check_default(cfg->tls_policy.deflt)) != NULL) {
        pol_cf_error(err, config_lookup(lc, "tls_policy.default"),
            "tls_policy.default", "\"%s\" %s", cfg->tls_policy.deflt, bad);
        return -1;
    }
    for (size_t i = 0; i < cfg->arc.sign_headers.n; i++)
        if (strncasecmp(cfg->arc.sign_headers.v[i], "arc-", 4) == 0) {
            pol_cf_error(err, config_lookup(lc, "arc.sign_headers"),
                "arc.sign_headers", "must not list ARC header fields "
                "(RFC 8617 4.1.2): \"%s\"", cfg->arc.sign_headers.v[i]);
            return -1;
        }
    if (*cfg->arc.key_id != '\0'
        && (cfg->arc.key = pol_keys_find(&cfg->keys, cfg->arc.key_id))
            == NULL) {
        pol_cf_error(err, config_lookup(lc, "arc.key"), "arc.key",
            "no key with id \"%s\" in keys", cfg->arc.key_id);
        return -1;
    }
    if ((cfg->arc.key != NULL || cfg->arc.nrules > 0)
        && *cfg->arc.authserv_id == '\0') {
        pol_cf_error(err, config_lookup(lc, "arc.key") ? config_lookup(lc,
            "arc.key") : config_lookup(lc, "arc.sealing"),
            "arc.authserv_id", "sealing needs arc.authserv_id (this "
            "gateway's name in Authentication-Results, e.g. "
            "\"mx.example.com\")");
        return -1;
    }
    return 0;
}

/* build - apply the schema to a parsed file */
static struct pol_config *
build(config_t *lc, const char *name, const struct pol_hooks *hooks,
    struct pol_err *err)
{
    struct pol_config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
        return NULL;
    }
    atomic_init(&cfg->refcnt, 1);
    cf_name = name;
    if (hooks != NULL)
        cfg->hooks = *hooks;
    if ((cfg->file = strdup(name)) == NULL
        || check_tree(config_root_setting(lc), "", err) < 0)
        goto fail;
    for (const struct cf_param *p = pol_cf_schema; p->path; p++)
        if (set_param(p, cfg, config_lookup(lc, p->path), err) < 0)
            goto fail;
    if (check_semantics(cfg, lc, err) < 0 || pol_dkim_setup(cfg, err) < 0)
        goto fail;
    cfg->daemon_view = (struct pol_daemon_settings){
        cfg->daemon.socket, (unsigned)cfg->daemon.socket_mode,
        cfg->daemon.socket_group, cfg->daemon.user, cfg->daemon.group,
        cfg->daemon.pidfile, cfg->daemon.log_level,
        cfg->daemon.syslog_facility, cfg->daemon.shutdown_timeout,
        cfg->daemon.milter_timeout,
    };
    cfg->sink = pol_events_new(cfg->events.file, cfg->events.syslog,
        (enum pol_action)cfg->events.on_error, cfg->events.buffer);
    if (cfg->sink == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
        goto fail;
    }
    return cfg;
fail:
    if (err->msg[0] == '\0')
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
    free_fields(cfg);
    free(cfg->file);
    free(cfg);
    return NULL;
}

/* syntax_error - libconfig's parse error as FILE:LINE: text */
static void
syntax_error(const config_t *lc, const char *name, struct pol_err *err)
{
    const char *file = config_error_file(lc);

    if (config_error_type(lc) == CONFIG_ERR_FILE_IO)
        snprintf(err->msg, sizeof(err->msg), "%s: cannot read: %s",
            file ? file : name, strerror(errno));
    else
        snprintf(err->msg, sizeof(err->msg), "%s:%d: syntax error: %s",
            file ? file : name, config_error_line(lc),
            config_error_text(lc));
}

struct pol_config *
pol_config_load(const char *file, const struct pol_hooks *hooks,
    struct pol_err *err)
{
    struct pol_config *cfg = NULL;
    config_t lc;

    err->msg[0] = '\0';
    config_init(&lc);
    /* no include_dir: libconfig 1.5 would prefix it to absolute @include
     * paths too; outpolicyd makes -c absolute, use absolute @include */
    if (config_read_file(&lc, file) != CONFIG_TRUE)
        syntax_error(&lc, file, err);
    else
        cfg = build(&lc, file, hooks, err);
    config_destroy(&lc);
    return cfg;
}

struct pol_config *
pol_config_load_string(const char *text, const char *name,
    const struct pol_hooks *hooks, struct pol_err *err)
{
    struct pol_config *cfg = NULL;
    config_t lc;

    err->msg[0] = '\0';
    config_init(&lc);
    /* relative @include in a string resolves nowhere */
    config_set_include_dir(&lc, "/nonexistent");
    if (config_read_string(&lc, text) != CONFIG_TRUE)
        syntax_error(&lc, name, err);
    else
        cfg = build(&lc, name, hooks, err);
    config_destroy(&lc);
    return cfg;
}

/* start_runtime - resolver, libspf2 server, Public Suffix List */
static enum pol_status
start_runtime(struct pol_config *cfg, struct pol_err *err)
{
    if (cfg->dns.resolver != NULL)
        return POL_OK;
    cfg->dns.resolver = pol_dns_new(&cfg->dns.nameservers,
        cfg->dns.timeout * 1000, cfg->dns.trust_anchor, err);
    if (cfg->dns.resolver == NULL)
        return POL_ETEMP;
    if ((cfg->spf.state = pol_spf_new(cfg->dns.resolver, err)) == NULL)
        return POL_ETEMP;
    if ((cfg->dmarc.cache = pol_dmarc_cache_new()) == NULL) {
        snprintf(err->msg, sizeof(err->msg), "dmarc: out of memory");
        return POL_ETEMP;
    }
    /* the system's list (package publicsuffix), else libpsl's built-in */
    if ((cfg->dmarc.psl = psl_latest(NULL)) == NULL
        && (cfg->dmarc.psl = (void *)psl_builtin()) == NULL) {
        snprintf(err->msg, sizeof(err->msg), "dmarc: cannot load the "
            "Public Suffix List (install the package publicsuffix)");
        return POL_ETEMP;
    }
    return POL_OK;
}

enum pol_status
pol_config_activate(struct pol_config *cfg, struct pol_err *err)
{
    enum pol_status st = start_runtime(cfg, err);

    return st != POL_OK ? st : pol_events_open(cfg->sink, err);
}

void
pol_config_key_files(const struct pol_config *cfg,
    void (*fn)(void *arg, const char *file), void *arg)
{
    for (size_t i = 0; i < cfg->keys.n; i++)
        fn(arg, cfg->keys.v[i].file);
}

void
pol_config_flush(struct pol_config *cfg)
{
    if (cfg != NULL)
        pol_events_flush(cfg->sink, time(NULL), true);
}

void
pol_config_quiet(struct pol_config *cfg)
{
    pol_events_free(cfg->sink);
    cfg->sink = pol_events_new(NULL, false, POL_ACCEPT, false);
}

enum pol_status
pol_config_reopen(struct pol_config *cfg, struct pol_err *err)
{
    return pol_events_open(cfg->sink, err);
}

struct pol_config *
pol_config_ref(struct pol_config *cfg)
{
    atomic_fetch_add(&cfg->refcnt, 1);
    return cfg;
}

void
pol_config_unref(struct pol_config *cfg)
{
    if (cfg == NULL || atomic_fetch_sub(&cfg->refcnt, 1) != 1)
        return;
    pol_events_free(cfg->sink);
    free_fields(cfg);
    free(cfg->file);
    free(cfg);
}

const struct pol_daemon_settings *
pol_config_daemon(const struct pol_config *cfg)
{
    return &cfg->daemon_view;
}

enum pol_mode
pol_config_mode(const struct pol_config *cfg)
{
    return (enum pol_mode)cfg->mode;
}

const char *
pol_config_tlsmap_socket(const struct pol_config *cfg, unsigned *mode)
{
    *mode = (unsigned)cfg->tls_policy.socket_mode;
    return cfg->tls_policy.socket;
}

const char *
pol_config_file(const struct pol_config *cfg)
{
    return cfg->file;
}
