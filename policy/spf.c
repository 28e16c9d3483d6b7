/*
 * policy/spf.c - SPF egress authorisation with libspf2 over our resolver.
 *
 * libspf2 evaluates the records; it is given a DNS layer (an
 * SPF_dns_server_t) whose look-ups go through dns.c, so every query uses
 * the configured servers and timeout.  What libspf2 cannot say - whether
 * a domain's policy reaches a provider's include, and with how many
 * DNS-querying terms - is found by walking include:/redirect= terms.
 * Results are cached per (domain, egress) for the domain's TXT TTL
 * (temperrors are not cached).  libspf2 types stay in this file.
 * Thread-safe: the server is read-only, the cache has a mutex.
 * Licence: BSD-2-Clause.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "dns.h"
#include "spf.h"

#define CACHE_MAX 4096
#define CACHE_TTL_MAX 3600

struct cache_entry {
    char key[300];
    enum pol_spf_result result;
    int lookups;
    time_t expires;
};

struct pol_spf {
    SPF_server_t *server;
    SPF_dns_server_t *layer; /* ours: SPF_server_new_dns does not own it */
    struct pol_dns *dns;
    pthread_mutex_t lock;
    struct cache_entry *cache; /* CACHE_MAX slots, replaced round-robin */
    size_t next;
};

static const char *const result_names[] = {
    [POL_SPF_NONE] = "none", [POL_SPF_NEUTRAL] = "neutral",
    [POL_SPF_PASS] = "pass", [POL_SPF_FAIL] = "fail",
    [POL_SPF_SOFTFAIL] = "softfail", [POL_SPF_TEMPERROR] = "temperror",
    [POL_SPF_PERMERROR] = "permerror",
};

const char *
pol_spf_result_name(enum pol_spf_result r)
{
    return (unsigned)r < POL_SPF_RESULT_COUNT ? result_names[r] : "none";
}

/* ---- the libspf2 DNS layer ---- */

/* put_rr - one record of the answer into libspf2's structure */
static int
put_rr(SPF_dns_rr_t *rr, int j, int type, const struct pol_dns_answer *a,
    int i)
{
    char name[256], *txt;
    size_t n;

    switch (type) {
    case ns_t_a:
    case ns_t_aaaa:
        n = type == ns_t_a ? 4 : 16;
        if (a->rr[i].len != n || SPF_dns_rr_buf_realloc(rr, j, n) != 0)
            return -1;
        memcpy(rr->rr[j], a->rr[i].data, n);
        return 0;
    case ns_t_mx:
    case ns_t_ptr:
        if (type == ns_t_mx && a->rr[i].len < 3)
            return -1;
        if (pol_dns_name(a->rr[i].data + (type == ns_t_mx ? 2 : 0),
                a->rr[i].len - (type == ns_t_mx ? 2 : 0), name,
                sizeof(name)) < 0
            || SPF_dns_rr_buf_realloc(rr, j, strlen(name) + 1) != 0)
            return -1;
        strcpy(rr->rr[j]->mx, name);
        return 0;
    default: /* TXT, SPF */
        if ((txt = pol_dns_txt(a, i)) == NULL)
            return -1;
        if (SPF_dns_rr_buf_realloc(rr, j, strlen(txt) + 1) != 0) {
            free(txt);
            return -1;
        }
        strcpy(rr->rr[j]->txt, txt);
        free(txt);
        return 0;
    }
}

/* layer_lookup - libspf2 asks; dns.c answers */
static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type,
    int should_cache)
{
    struct pol_dns_answer *a = pol_dns_query(srv->hook, domain, (int)type);
    static const int herr[] = { [POL_DNS_OK] = NETDB_SUCCESS,
        [POL_DNS_NODATA] = NO_DATA, [POL_DNS_NXDOMAIN] = HOST_NOT_FOUND,
        [POL_DNS_TEMP] = TRY_AGAIN };
    SPF_dns_rr_t *rr;
    int j = 0;

    (void)should_cache;
    rr = SPF_dns_rr_new_init(srv, domain, type, a ? a->ttl : 0,
        a ? herr[a->rc] : TRY_AGAIN);
    if (rr == NULL || a == NULL || a->rc != POL_DNS_OK) {
        pol_dns_answer_free(a);
        return rr;
    }
    for (int i = 0; i < a->n; i++)
        if (put_rr(rr, j, (int)type, a, i) == 0)
            j++;
    rr->num_rr = j;
    pol_dns_answer_free(a);
    return rr;
}

struct pol_spf *
pol_spf_new(struct pol_dns *dns, struct pol_err *err)
{
    struct pol_spf *s = calloc(1, sizeof(*s));
    SPF_dns_server_t *layer = calloc(1, sizeof(*layer));

    if (s == NULL || layer == NULL
        || (s->cache = calloc(CACHE_MAX, sizeof(*s->cache))) == NULL) {
        snprintf(err->msg, sizeof(err->msg), "spf: out of memory");
        goto fail;
    }
    layer->destroy = NULL; /* shared layer: libspf2 leaves it to us */
    layer->lookup = layer_lookup;
    layer->name = "outpolicy";
    layer->hook = dns;
    if ((s->server = SPF_server_new_dns(layer, 0)) == NULL) {
        snprintf(err->msg, sizeof(err->msg), "spf: SPF_server_new failed");
        goto fail;
    }
    s->dns = dns;
    s->layer = layer;
    pthread_mutex_init(&s->lock, NULL);
    return s;
fail:
    free(layer);
    if (s != NULL)
        free(s->cache);
    free(s);
    return NULL;
}

void
pol_spf_free(struct pol_spf *s)
{
    if (s == NULL)
        return;
    SPF_server_free(s->server);
    free(s->layer);
    pthread_mutex_destroy(&s->lock);
    free(s->cache);
    free(s);
}

/* ---- evaluation ---- */

enum pol_spf_result
pol_spf_eval(struct pol_spf *s, const char *ip, const char *sender,
    const char *helo, char *why, size_t whylen)
{
    SPF_request_t *req = SPF_request_new(s->server);
    SPF_response_t *resp = NULL;
    enum pol_spf_result r = POL_SPF_TEMPERROR;
    SPF_errcode_t e;

    why[0] = '\0';
    if (req == NULL)
        return r;
    e = strchr(ip, ':') ? SPF_request_set_ipv6_str(req, ip)
                        : SPF_request_set_ipv4_str(req, ip);
    if (e == SPF_E_SUCCESS && helo != NULL && *helo)
        e = SPF_request_set_helo_dom(req, helo);
    if (e == SPF_E_SUCCESS && sender != NULL && *sender
        && SPF_request_set_env_from(req, sender) != 0)
        e = SPF_E_INVALID_CHAR;
    if (e != SPF_E_SUCCESS) {
        snprintf(why, whylen, "cannot evaluate: %s", SPF_strerror(e));
        SPF_request_free(req);
        return POL_SPF_PERMERROR;
    }
    e = SPF_request_query_mailfrom(req, &resp);
    if (resp != NULL) {
        switch (SPF_response_result(resp)) {
        case SPF_RESULT_PASS: r = POL_SPF_PASS; break;
        case SPF_RESULT_FAIL: r = POL_SPF_FAIL; break;
        case SPF_RESULT_SOFTFAIL: r = POL_SPF_SOFTFAIL; break;
        case SPF_RESULT_NEUTRAL: r = POL_SPF_NEUTRAL; break;
        case SPF_RESULT_NONE: r = POL_SPF_NONE; break;
        case SPF_RESULT_PERMERROR: r = POL_SPF_PERMERROR; break;
        case SPF_RESULT_TEMPERROR: r = POL_SPF_TEMPERROR; break;
        default:
            /* no result: a record that does not compile is permanent,
             * only a DNS failure is temporary */
            r = e == SPF_E_DNS_ERROR ? POL_SPF_TEMPERROR
                                     : POL_SPF_PERMERROR;
            break;
        }
        if (SPF_response_get_smtp_comment(resp) != NULL)
            snprintf(why, whylen, "%s", SPF_response_get_smtp_comment(resp));
        SPF_response_free(resp);
    }
    SPF_request_free(req);
    return r;
}

/* ---- does the domain's policy reach a provider's include? ---- */

struct walk {
    struct pol_dns *dns;
    const char *target;
    int lookups;
    int voids; /* included/redirected names without a record */
    int ttl; /* TTL of the first TXT answer */
    bool reached, temp, perm;
    char why[160];
};

/* spf_record - the single "v=spf1" TXT record of an answer, malloc'ed */
static char *
spf_record(const struct pol_dns_answer *a, int *count)
{
    char *found = NULL;

    *count = 0;
    for (int i = 0; a->rc == POL_DNS_OK && i < a->n; i++) {
        char *t = pol_dns_txt(a, i);
        if (t != NULL && strncasecmp(t, "v=spf1", 6) == 0
            && (t[6] == ' ' || t[6] == '\0')) {
            (*count)++;
            free(found);
            found = t;
        } else
            free(t);
    }
    return found;
}

/* term_counts - does this term cost a DNS look-up (RFC 7208 4.6.4)? */
static bool
term_counts(const char *t)
{
    static const char *const names[] = { "a", "mx", "ptr", "exists",
        "include", "redirect", NULL };

    for (const char *const *n = names; *n; n++) {
        size_t l = strlen(*n);
        if (strncasecmp(t, *n, l) == 0
            && (t[l] == '\0' || t[l] == ':' || t[l] == '/' || t[l] == '='))
            return true;
    }
    return false;
}

static void walk_domain(struct walk *w, const char *domain, int depth);

/* walk_term - one term of a record */
static void
walk_term(struct walk *w, char *t, int depth)
{
    const char *target = NULL;

    if (strchr("+-~?", *t) != NULL && *t)
        t++;
    if (!term_counts(t))
        return;
    if ((++w->lookups > POL_SPF_MAX_LOOKUPS && *w->target != '\0')
        || w->lookups > 5 * POL_SPF_MAX_LOOKUPS) { /* loops, when counting */
        w->perm = true;
        snprintf(w->why, sizeof(w->why), "more than %d DNS-querying terms",
            POL_SPF_MAX_LOOKUPS);
        return;
    }
    if (strncasecmp(t, "include:", 8) == 0)
        target = t + 8;
    else if (strncasecmp(t, "redirect=", 9) == 0)
        target = t + 9;
    if (target == NULL)
        return;
    if (*w->target != '\0' && strcasecmp(target, w->target) == 0) {
        w->reached = true;
        return;
    }
    if (strchr(target, '%') == NULL) /* macros cannot be walked statically */
        walk_domain(w, target, depth + 1);
}

static void
walk_domain(struct walk *w, const char *domain, int depth)
{
    struct pol_dns_answer *a = pol_dns_query(w->dns, domain, ns_t_txt);
    char *rec, *save = NULL;
    int count;

    if (a == NULL || a->rc == POL_DNS_TEMP) {
        w->temp = true;
        snprintf(w->why, sizeof(w->why), "DNS look-up of %s failed", domain);
        pol_dns_answer_free(a);
        return;
    }
    if (depth == 0)
        w->ttl = a->ttl;
    rec = spf_record(a, &count);
    pol_dns_answer_free(a);
    if (depth > 0 && rec == NULL)
        w->voids++;
    if (count > 1) {
        w->perm = true;
        snprintf(w->why, sizeof(w->why), "%s has %d SPF records", domain,
            count);
    }
    for (char *t = rec ? strtok_r(rec + 6, " ", &save) : NULL;
         t != NULL && !w->reached && !w->temp && !w->perm && depth < 12;
         t = strtok_r(NULL, " ", &save))
        walk_term(w, t, depth);
    free(rec);
}

/* ---- the per-message check ---- */

/* cache_get - a cached result for key, or -1 */
static int
cache_get(struct pol_spf *s, const char *key, time_t now, int *lookups)
{
    int r = -1;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < CACHE_MAX && s->cache[i].key[0]; i++)
        if (s->cache[i].expires > now && strcmp(s->cache[i].key, key) == 0) {
            r = (int)s->cache[i].result;
            *lookups = s->cache[i].lookups;
            break;
        }
    pthread_mutex_unlock(&s->lock);
    return r;
}

static void
cache_put(struct pol_spf *s, const char *key, enum pol_spf_result r,
    int lookups, time_t expires)
{
    pthread_mutex_lock(&s->lock);
    snprintf(s->cache[s->next].key, sizeof(s->cache[0].key), "%s", key);
    s->cache[s->next].result = r;
    s->cache[s->next].lookups = lookups;
    s->cache[s->next].expires = expires;
    s->next = (s->next + 1) % CACHE_MAX;
    pthread_mutex_unlock(&s->lock);
}

/* check_include - one required include */
static enum pol_spf_result
check_include(const struct pol_config *cfg, const char *domain,
    const char *inc, int *lookups, int *ttl, char *why, size_t whylen)
{
    struct walk w = { .dns = cfg->dns.resolver, .target = inc };

    walk_domain(&w, domain, 0);
    *lookups = w.lookups;
    *ttl = w.ttl;
    if (w.temp)
        snprintf(why, whylen, "%s", w.why);
    else if (w.perm)
        snprintf(why, whylen, "%s", w.why);
    else if (!w.reached)
        snprintf(why, whylen, "the SPF policy of %s does not reach "
            "include:%s; add it to the %s TXT record", domain, inc, domain);
    return w.temp ? POL_SPF_TEMPERROR : w.perm ? POL_SPF_PERMERROR
        : w.reached ? POL_SPF_PASS : POL_SPF_FAIL;
}

/* txt_ttl - TTL to cache results of domain for */
static int
txt_ttl(const struct pol_config *cfg, const char *domain)
{
    struct pol_dns_answer *a = pol_dns_query(cfg->dns.resolver, domain,
        ns_t_txt);
    int ttl = a != NULL && a->rc != POL_DNS_TEMP ? a->ttl : 0;

    pol_dns_answer_free(a);
    return ttl > CACHE_TTL_MAX ? CACHE_TTL_MAX : ttl;
}

/* fmt - snprintf that may truncate on purpose (reasons are bounded) */
static void POL_PRINTF(3, 4)
fmt(char *out, size_t len, const char *f, ...)
{
    va_list ap;

    va_start(ap, f);
    vsnprintf(out, len, f, ap);
    va_end(ap);
}

/* advice - what to publish, for an egress IP that does not pass */
static void
advice(const struct pol_config *cfg, const char *domain, const char *ip,
    enum pol_spf_result r, const char *libwhy, char *out, size_t len)
{
    const char *mech = strchr(ip, ':') ? "ip6" : "ip4";
    char fix[160];

    if (cfg->egress.spf_includes.n > 0)
        snprintf(fix, sizeof(fix), "include:%s",
            cfg->egress.spf_includes.v[0]);
    else
        snprintf(fix, sizeof(fix), "%s:%s", mech, ip);
    switch (r) {
    case POL_SPF_NONE:
        fmt(out, len, "%.80s publishes no SPF record; publish "
            "\"v=spf1 %.80s -all\"", domain, fix);
        break;
    case POL_SPF_TEMPERROR:
        fmt(out, len, "DNS look-up for %s failed; retry later",
            domain);
        break;
    case POL_SPF_PERMERROR:
        fmt(out, len, "the SPF record of %s is broken%s%s", domain,
            *libwhy ? ": " : "", libwhy);
        break;
    default:
        fmt(out, len, "%.80s SPF does not authorise egress %.46s; "
            "add %.80s", domain, ip, fix);
        break;
    }
}

/* one_item - evaluate (or fetch from cache) one egress IP or include */
static void
one_item(const struct pol_config *cfg, struct pol_spf_outcome *out, int k,
    const char *sender, const char *helo, char *why, size_t whylen)
{
    struct pol_spf *s = cfg->spf.state;
    const char *what = out->item[k].egress;
    char key[300];
    int ttl = 0, r, lookups = 0;
    time_t now = pol_now(cfg);

    snprintf(key, sizeof(key), "%s|%s|%s", out->domain, sender, what);
    if ((r = cache_get(s, key, now, &lookups)) >= 0) {
        out->item[k].result = (enum pol_spf_result)r;
        out->item[k].lookups = lookups;
        if (r != POL_SPF_PASS && !out->item[k].is_include)
            advice(cfg, out->domain, what, (enum pol_spf_result)r, "", why,
                whylen);
        return;
    }
    if (out->item[k].is_include)
        r = (int)check_include(cfg, out->domain, what, &lookups, &ttl, why,
            whylen);
    else {
        char libwhy[200];
        r = (int)pol_spf_eval(s, what, sender, helo, libwhy,
            sizeof(libwhy));
        if (r != POL_SPF_PASS)
            advice(cfg, out->domain, what, (enum pol_spf_result)r, libwhy,
                why, whylen);
        if (r != POL_SPF_TEMPERROR) /* temperrors are not cached */
            ttl = txt_ttl(cfg, out->domain);
    }
    out->item[k].result = (enum pol_spf_result)r;
    out->item[k].lookups = lookups;
    if (r != POL_SPF_TEMPERROR && ttl > 0)
        cache_put(s, key, (enum pol_spf_result)r, lookups, now + ttl);
}

void
pol_spf_check(const struct pol_config *cfg, struct pol_arena *a,
    const char *sender, struct pol_spf_outcome *out)
{
    const char *helo = cfg->egress.helo_name;
    char why[200];
    int worst = -1;

    memset(out, 0, sizeof(*out));
    out->domain = *sender ? pol_addr_domain(sender) : helo;
    out->overall = POL_SPF_NONE;
    for (size_t i = 0; i < cfg->egress.ips.n && out->n < POL_SPF_MAX_EGRESS;
         i++)
        out->item[out->n++].egress = cfg->egress.ips.v[i];
    for (size_t i = 0; i < cfg->egress.spf_includes.n
         && out->n < POL_SPF_MAX_EGRESS; i++) {
        out->item[out->n].is_include = true;
        out->item[out->n++].egress = cfg->egress.spf_includes.v[i];
    }
    for (int k = 0; k < out->n; k++) {
        int act;
        why[0] = '\0';
        if (k > 0 && out->item[k - 1].result == POL_SPF_TEMPERROR) {
            /* the same domain on the same servers: do not wait again */
            out->item[k].result = POL_SPF_TEMPERROR;
            snprintf(why, sizeof(why), "DNS look-up for %s failed; retry "
                "later", out->domain);
        } else
            one_item(cfg, out, k, sender, helo, why, sizeof(why));
        act = cfg->spf.on[out->item[k].result];
        if (act > worst || worst < 0) {
            worst = act;
            out->overall = out->item[k].result;
            out->reason[0] = '\0';
            if (out->item[k].result != POL_SPF_PASS)
                fmt(out->reason, sizeof(out->reason), "%s", why[0] ? why
                    : pol_spf_result_name(out->item[k].result));
        }
    }
    (void)a;
}

void
pol_spf_check_include(const struct pol_config *cfg, const char *domain,
    const char *inc, struct pol_spf_outcome *out)
{
    char why[200];
    int ttl;

    memset(out, 0, sizeof(*out));
    out->domain = domain;
    out->n = 1;
    out->item[0].egress = inc;
    out->item[0].is_include = true;
    out->item[0].result = check_include(cfg, domain, inc,
        &out->item[0].lookups, &ttl, why, sizeof(why));
    out->overall = out->item[0].result;
    snprintf(out->reason, sizeof(out->reason), "%s", why);
}

int
pol_spf_syntax(struct pol_spf *s, const char *record, char *why,
    size_t whylen)
{
    SPF_response_t *resp = SPF_response_new(NULL);
    SPF_record_t *rec = NULL;
    SPF_errcode_t e;

    if (resp == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    e = SPF_record_compile(s->server, resp, &rec, record);
    if (e != SPF_E_SUCCESS)
        snprintf(why, whylen, "%s", SPF_response_messages(resp) > 0
                ? SPF_error_message(SPF_response_message(resp, 0))
                : SPF_strerror(e));
    SPF_record_free(rec);
    SPF_response_free(resp);
    return e == SPF_E_SUCCESS ? 0 : -1;
}

void
pol_spf_count(const struct pol_config *cfg, const char *domain,
    int *lookups, int *voids, bool *temp)
{
    struct walk w = { .dns = cfg->dns.resolver, .target = "" };

    walk_domain(&w, domain, 0);
    *lookups = w.lookups;
    *voids = w.voids;
    *temp = w.temp;
}
