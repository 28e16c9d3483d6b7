/*
 * policy/dmarc.c - DMARC pre-flight: record parsing (RFC 7489 6.3),
 * organizational domains from the Public Suffix List (libpsl), identifier
 * alignment, and the policy look-up with its fallback to the org domain.
 * Pure functions and read-only config: thread-safe.
 * Licence: BSD-2-Clause.
 */
#include <arpa/nameser.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpsl.h>
#include <pthread.h>

#include "dns.h"
#include "spf.h"

const char *
pol_dmarc_policy_name(int p)
{
    return p == POL_DMARC_REJECT ? "reject"
        : p == POL_DMARC_QUARANTINE ? "quarantine" : "none";
}

/* policy_value - "none" / "quarantine" / "reject", or -1 */
static int
policy_value(const char *v, size_t n)
{
    if (n == 4 && strncasecmp(v, "none", 4) == 0)
        return POL_DMARC_NONE;
    if (n == 10 && strncasecmp(v, "quarantine", 10) == 0)
        return POL_DMARC_QUARANTINE;
    if (n == 6 && strncasecmp(v, "reject", 6) == 0)
        return POL_DMARC_REJECT;
    return -1;
}

/* tag - apply one tag=value; -1 when the value is invalid */
static int
tag(struct pol_dmarc_record *r, const char *t, size_t tl, const char *v,
    size_t vl, bool *have_p)
{
    int x;

    if (tl == 1 && *t == 'p') {
        if ((x = policy_value(v, vl)) < 0)
            return -1;
        r->p = x;
        *have_p = true;
    } else if (tl == 2 && strncmp(t, "sp", 2) == 0) {
        if ((x = policy_value(v, vl)) >= 0) { /* invalid sp: ignored */
            r->sp = x;
            r->has_sp = true;
        }
    } else if (tl == 5 && strncmp(t, "adkim", 5) == 0) {
        if (vl == 1 && (*v == 'r' || *v == 's')) /* else relaxed */
            r->adkim_strict = *v == 's';
    } else if (tl == 4 && strncmp(t, "aspf", 4) == 0) {
        if (vl == 1 && (*v == 'r' || *v == 's'))
            r->aspf_strict = *v == 's';
    } else if (tl == 3 && strncmp(t, "pct", 3) == 0) {
        char num[8];
        if (vl == 0 || vl >= sizeof(num))
            return 0;
        memcpy(num, v, vl);
        num[vl] = '\0';
        x = atoi(num);
        if (strspn(num, "0123456789") == vl && x >= 0 && x <= 100)
            r->pct = x;
    } else if (tl == 3 && strncmp(t, "rua", 3) == 0)
        snprintf(r->rua, sizeof(r->rua), "%.*s", (int)vl, v);
    return 0;
}

int
pol_dmarc_parse(const char *txt, struct pol_dmarc_record *r, char *why,
    size_t whylen)
{
    const char *p = txt;
    bool first = true, have_p = false, bad_p = false;

    memset(r, 0, sizeof(*r));
    r->pct = 100;
    while (*p) {
        const char *t, *v, *end = strchr(p, ';');
        size_t tl, vl;
        if (end == NULL)
            end = p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        t = p;
        while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
            p++;
        tl = (size_t)(p - t);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (tl == 0 && p == end) { /* empty term, e.g. trailing ";" */
            p = *end ? end + 1 : end;
            continue;
        }
        if (tl == 0 || *p != '=') {
            snprintf(why, whylen, "malformed tag near \"%.20s\"", t);
            return -1;
        }
        for (v = ++p; v < end && (*v == ' ' || *v == '\t'); v++)
            ;
        vl = (size_t)(end - v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (first && !(tl == 1 && *t == 'v' && vl == 6
                && strncmp(v, "DMARC1", 6) == 0)) {
            snprintf(why, whylen, "does not start with v=DMARC1");
            return -1;
        }
        if (!first && tag(r, t, tl, v, vl, &have_p) < 0) {
            snprintf(why, whylen, "invalid p= value \"%.*s\"", (int)vl, v);
            bad_p = true;
        }
        first = false;
        p = *end ? end + 1 : end;
    }
    if (first) {
        snprintf(why, whylen, "empty record");
        return -1;
    }
    /* RFC 7489 6.6.3: a bad or missing p= with a valid rua= is p=none */
    if ((bad_p || !have_p) && r->rua[0] == '\0') {
        if (!bad_p)
            snprintf(why, whylen, "no p= tag");
        return -1;
    }
    if (bad_p)
        r->p = POL_DMARC_NONE;
    if (!r->has_sp)
        r->sp = r->p;
    return 0;
}

const char *
pol_org_domain(const struct pol_config *cfg, const char *domain)
{
    const char *reg = cfg->dmarc.psl
        ? psl_registrable_domain(cfg->dmarc.psl, domain) : NULL;

    return reg != NULL ? reg : "";
}

bool
pol_aligned(const struct pol_config *cfg, const char *a, const char *b,
    bool strict)
{
    const char *oa, *ob;

    if (a == NULL || b == NULL || *a == '\0' || *b == '\0')
        return false;
    if (strcasecmp(a, b) == 0)
        return true;
    if (strict)
        return false;
    oa = pol_org_domain(cfg, a);
    ob = pol_org_domain(cfg, b);
    return *oa != '\0' && strcasecmp(oa, ob) == 0;
}

/* fetch - the DMARC record at _dmarc.domain: 1 found, 0 none, -1 temp */
static int
fetch(const struct pol_config *cfg, const char *domain,
    struct pol_dmarc_record *r, char *why, size_t whylen, int *ttl)
{
    char name[300];
    struct pol_dns_answer *a;
    int found = 0, n = 0;

    snprintf(name, sizeof(name), "_dmarc.%s", domain);
    if ((a = pol_dns_query(cfg->dns.resolver, name, ns_t_txt)) == NULL
        || a->rc == POL_DNS_TEMP) {
        snprintf(why, whylen, "DNS look-up of %s failed", name);
        pol_dns_answer_free(a);
        return -1;
    }
    if (a->ttl < *ttl)
        *ttl = a->ttl;
    for (int i = 0; a->rc == POL_DNS_OK && i < a->n; i++) {
        char *t = pol_dns_txt(a, i);
        if (t != NULL && strncmp(t, "v=DMARC1", 8) == 0) {
            n++;
            found = pol_dmarc_parse(t, r, why, whylen) == 0;
        }
        free(t);
    }
    pol_dns_answer_free(a);
    if (n > 1) { /* RFC 7489 6.6.3: more than one record: no policy */
        snprintf(why, whylen, "%s has %d DMARC records", name, n);
        return 0;
    }
    return found;
}

/* ---- a per-config cache of DMARC look-ups, for the record's TTL ---- */

#define DMARC_CACHE 1024
#define DMARC_TTL_MAX 3600

struct dmarc_entry {
    char domain[256];
    int found;
    bool subdomain;
    struct pol_dmarc_record rec;
    char why[160];
    time_t expires;
};

struct pol_dmarc_cache {
    pthread_mutex_t lock;
    size_t next;
    struct dmarc_entry e[DMARC_CACHE];
};

struct pol_dmarc_cache *
pol_dmarc_cache_new(void)
{
    struct pol_dmarc_cache *c = calloc(1, sizeof(*c));

    if (c != NULL)
        pthread_mutex_init(&c->lock, NULL);
    return c;
}

void
pol_dmarc_cache_free(struct pol_dmarc_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* cached - a fresh entry for domain into out; false if none */
static bool
cached(struct pol_dmarc_cache *c, const char *domain, time_t now,
    struct dmarc_entry *out)
{
    bool hit = false;

    if (c == NULL)
        return false;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < DMARC_CACHE && !hit; i++)
        if (c->e[i].expires > now
            && strcasecmp(c->e[i].domain, domain) == 0) {
            *out = c->e[i];
            hit = true;
        }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void
remember(struct pol_dmarc_cache *c, const struct dmarc_entry *e)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->e[c->next] = *e;
    c->next = (c->next + 1) % DMARC_CACHE;
    pthread_mutex_unlock(&c->lock);
}

int
pol_dmarc_lookup(const struct pol_config *cfg, const char *from_domain,
    struct pol_dmarc_record *r, const char **at, bool *subdomain, char *why,
    size_t whylen)
{
    struct dmarc_entry e;
    time_t now = pol_now(cfg);
    const char *org;
    int rc, ttl = DMARC_TTL_MAX;

    if (strlen(from_domain) < sizeof(e.domain)
        && cached(cfg->dmarc.cache, from_domain, now, &e)) {
        *r = e.rec;
        *subdomain = e.subdomain;
        *at = e.subdomain ? pol_org_domain(cfg, from_domain) : from_domain;
        snprintf(why, whylen, "%s", e.why);
        return e.found;
    }
    *subdomain = false;
    *at = from_domain;
    why[0] = '\0';
    if ((rc = fetch(cfg, from_domain, r, why, whylen, &ttl)) == 0) {
        org = pol_org_domain(cfg, from_domain);
        if (*org != '\0' && strcasecmp(org, from_domain) != 0) {
            *at = org;
            *subdomain = true;
            rc = fetch(cfg, org, r, why, whylen, &ttl);
        }
    }
    if (rc >= 0 && ttl > 0 && strlen(from_domain) < sizeof(e.domain)) {
        memset(&e, 0, sizeof(e));
        snprintf(e.domain, sizeof(e.domain), "%s", from_domain);
        e.found = rc;
        e.subdomain = *subdomain;
        e.rec = *r;
        snprintf(e.why, sizeof(e.why), "%s", why);
        e.expires = now + ttl;
        remember(cfg->dmarc.cache, &e);
    }
    return rc;
}
