/*
 * policy/checkdomain.c - outpolicyctl check-domain: the DNS a sending
 * domain needs (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, DNSSEC, TTLs),
 * checked against what the config will do, each finding with the record
 * to publish.  Uses the config's resolver.  Not on the mail path.
 * Licence: BSD-2-Clause.
 */
#include <arpa/nameser.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arc.h"
#include "dns.h"
#include "keys.h"
#include "spf.h"

#define MAX_ITEMS 64
#define TTL_ADVICE 3600

enum { ST_OK = 0, ST_WARN, ST_FAIL, ST_DNS };
static const char *const st_names[] = { "OK", "WARN", "FAIL", "DNS" };

struct item {
    const char *group;
    int status;
    char msg[400];
    char fix[900];
    int ttl;
};

struct report {
    const struct pol_config *cfg;
    const char *domain;
    int n;
    struct item it[MAX_ITEMS];
    bool dns_down;
};

static struct item * POL_PRINTF(4, 5)
add(struct report *r, const char *group, int status, const char *fmt, ...)
{
    struct item *it;
    va_list ap;

    if (r->n >= MAX_ITEMS)
        return NULL;
    it = &r->it[r->n++];
    memset(it, 0, sizeof(*it));
    it->group = group;
    it->status = status;
    it->ttl = -1;
    va_start(ap, fmt);
    vsnprintf(it->msg, sizeof(it->msg), fmt, ap);
    va_end(ap);
    if (status == ST_DNS)
        r->dns_down = true;
    return it;
}

static void POL_PRINTF(2, 3)
fix(struct item *it, const char *fmt, ...)
{
    va_list ap;

    if (it == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(it->fix, sizeof(it->fix), fmt, ap);
    va_end(ap);
}

/* query - a look-up; a DNS failure becomes a DNS item */
static struct pol_dns_answer *
query(struct report *r, const char *group, const char *name, int type)
{
    struct pol_dns_answer *a = pol_dns_query(r->cfg->dns.resolver, name,
        type);

    if (a == NULL || a->rc == POL_DNS_TEMP) {
        add(r, group, ST_DNS, "DNS look-up of %s failed (server unreachable "
            "or SERVFAIL)", name);
        pol_dns_answer_free(a);
        return NULL;
    }
    return a;
}

/* ttl_check - advice when a record has a long TTL */
static void
ttl_check(struct report *r, const char *group, const char *what, int ttl)
{
    struct item *it;

    if (ttl <= TTL_ADVICE)
        return;
    it = add(r, group, ST_WARN, "%s has a TTL of %d s: a change takes up "
        "to %d h to be seen", what, ttl, (ttl + 3599) / 3600);
    fix(it, "lower the TTL to 300-3600 s a day before changing the record");
}

/* ---- MX ---- */

static const char *const exmail_mx[] = { "mxbiz1.qq.com", "mxbiz2.qq.com",
    NULL };

static void
check_mx(struct report *r, const char *provider)
{
    struct pol_dns_answer *a = query(r, "MX", r->domain, ns_t_mx);
    bool want_exmail = provider && strcmp(provider, "exmail") == 0;
    int found_exmail = 0;
    char name[256];
    struct item *it;

    if (a == NULL)
        return;
    if (a->rc == POL_DNS_NXDOMAIN) {
        it = add(r, "MX", ST_FAIL, "%s does not exist (NXDOMAIN)", r->domain);
        fix(it, "create the zone %s with at least an MX record, e.g. %s. "
            "3600 IN MX 10 mx.%s.", r->domain, r->domain, r->domain);
    } else if (a->rc == POL_DNS_NODATA || a->n == 0) {
        it = add(r, "MX", ST_WARN, "no MX record: mail to %s "
            "goes to its A/AAAA record", r->domain);
        fix(it, want_exmail ? "%s. 3600 IN MX 5 mxbiz1.qq.com.\n%s. 3600 IN "
            "MX 10 mxbiz2.qq.com." : "%s. 3600 IN MX 10 mx.%s.", r->domain,
            r->domain);
    }
    for (int i = 0; a->rc == POL_DNS_OK && i < a->n; i++) {
        int pref;
        struct pol_dns_answer *h;
        if (a->rr[i].len < 3 || pol_dns_name(a->rr[i].data + 2,
                a->rr[i].len - 2, name, sizeof(name)) < 0)
            continue;
        pref = (a->rr[i].data[0] << 8) | a->rr[i].data[1];
        if (name[0] == '\0' || strcmp(name, ".") == 0) {
            it = add(r, "MX", a->n == 1 && pref == 0 ? ST_OK : ST_FAIL, "%s",
                a->n == 1 && pref == 0 ? "null MX (RFC 7505): the domain "
                "accepts no mail" : "a null MX must be the only MX, with "
                "preference 0");
            if (a->n != 1 || pref != 0)
                fix(it, "keep either \"%s. IN MX 0 .\" alone (no mail) or "
                    "only real MX records", r->domain);
            continue;
        }
        for (const char *const *x = exmail_mx; *x; x++)
            found_exmail += strcasecmp(name, *x) == 0;
        h = pol_dns_query(r->cfg->dns.resolver, name, ns_t_a);
        if (h == NULL || h->rc != POL_DNS_OK) {
            pol_dns_answer_free(h);
            h = pol_dns_query(r->cfg->dns.resolver, name, ns_t_aaaa);
        }
        it = add(r, "MX", h && h->rc == POL_DNS_OK ? ST_OK : ST_FAIL,
            "MX %d %s %s", pref, name, h && h->rc == POL_DNS_OK
                ? "resolves" : "does not resolve (no A/AAAA)");
        if (h == NULL || h->rc != POL_DNS_OK)
            fix(it, "%s. 3600 IN A <address of the mail server>, or point "
                "the MX at a host that exists", name);
        pol_dns_answer_free(h);
    }
    if (want_exmail && a->rc == POL_DNS_OK && found_exmail < 2) {
        it = add(r, "MX", ST_FAIL, "MX does not point at "
            "Tencent Exmail (mxbiz1.qq.com, mxbiz2.qq.com)");
        fix(it, "%s. 3600 IN MX 5 mxbiz1.qq.com.\n%s. 3600 IN MX 10 "
            "mxbiz2.qq.com.", r->domain, r->domain);
    }
    if (a->rc == POL_DNS_OK)
        ttl_check(r, "MX", "MX", a->ttl);
    pol_dns_answer_free(a);
}

/* ---- SPF ---- */

/* spf_fix - the record outpolicy's config needs */
static void
spf_fix(struct report *r, struct item *it)
{
    char rec[600] = "v=spf1";
    size_t o = strlen(rec);

    for (size_t i = 0; i < r->cfg->egress.ips.n && o < sizeof(rec); i++)
        o += (size_t)snprintf(rec + o, sizeof(rec) - o, " %s:%s",
            strchr(r->cfg->egress.ips.v[i], ':') ? "ip6" : "ip4",
            r->cfg->egress.ips.v[i]);
    for (size_t i = 0; i < r->cfg->egress.spf_includes.n && o < sizeof(rec);
         i++)
        o += (size_t)snprintf(rec + o, sizeof(rec) - o, " include:%s",
            r->cfg->egress.spf_includes.v[i]);
    if (o < sizeof(rec))
        snprintf(rec + o, sizeof(rec) - o, " -all");
    fix(it, "%s. 3600 IN TXT \"%s\"", r->domain, rec);
}

/* spf_term - find a mechanism by name (any qualifier, then end, ':' or
 * '/'); copies the whole term (with its qualifier) into out */
static bool
spf_term(const char *rec, const char *name, char *out, size_t len)
{
    char buf[1024], *save = NULL;
    bool found = false;

    snprintf(buf, sizeof(buf), "%s", rec);
    for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ",
             &save)) {
        const char *m = strchr("+-~?", *t) && *t ? t + 1 : t;
        size_t n = strlen(name);
        if (strncasecmp(m, name, n) == 0
            && (m[n] == '\0' || m[n] == ':' || m[n] == '/')) {
            snprintf(out, len, "%s", t); /* the last one wins */
            found = true;
        }
    }
    return found;
}

static void
check_spf_policy(struct report *r, const char *rec)
{
    char allbuf[16], ptr[256];
    const char *all = spf_term(rec, "all", allbuf, sizeof(allbuf)) ? allbuf
                                                                 : NULL;
    struct item *it;

    if (spf_term(rec, "ptr", ptr, sizeof(ptr))) {
        it = add(r, "SPF", ST_WARN, "uses the deprecated ptr mechanism "
            "(RFC 7208 5.5): slow, and ignored by some receivers");
        spf_fix(r, it);
    }
    if (all == NULL && strstr(rec, "redirect=") == NULL) {
        it = add(r, "SPF", ST_WARN, "no \"all\" term: everything else is "
            "neutral");
        spf_fix(r, it);
    } else if (all != NULL && strcmp(all, "-all") == 0)
        add(r, "SPF", ST_OK, "ends in -all: receivers fail mail from "
            "anywhere else");
    else if (all != NULL && strcmp(all, "~all") == 0) {
        it = add(r, "SPF", ST_WARN, "ends in ~all (softfail): mail from "
            "elsewhere is accepted, usually marked; -all is stronger once "
            "every sender is listed");
        spf_fix(r, it);
    }
    else if (all != NULL) {
        it = add(r, "SPF", ST_FAIL, "ends in %s: anyone may send as %s",
            all, r->domain);
        spf_fix(r, it);
    }
}

static void
check_spf_egress(struct report *r)
{
    char why[300];
    struct item *it;

    for (size_t i = 0; i < r->cfg->egress.ips.n; i++) {
        char sender[300];
        enum pol_spf_result res;
        snprintf(sender, sizeof(sender), "postmaster@%s", r->domain);
        res = pol_spf_eval(r->cfg->spf.state, r->cfg->egress.ips.v[i],
            sender, NULL, why, sizeof(why));
        it = add(r, "SPF", res == POL_SPF_PASS ? ST_OK : res
                == POL_SPF_TEMPERROR ? ST_DNS : ST_FAIL, "egress %s: %s",
            r->cfg->egress.ips.v[i], pol_spf_result_name(res));
        if (res != POL_SPF_PASS)
            spf_fix(r, it);
    }
    for (size_t i = 0; i < r->cfg->egress.spf_includes.n; i++) {
        struct pol_spf_outcome o;
        pol_spf_check_include(r->cfg, r->domain,
            r->cfg->egress.spf_includes.v[i], &o);
        it = add(r, "SPF", o.overall == POL_SPF_PASS ? ST_OK
                : o.overall == POL_SPF_TEMPERROR ? ST_DNS : ST_FAIL,
            "include:%s %s (%d look-ups)", r->cfg->egress.spf_includes.v[i],
            o.overall == POL_SPF_PASS ? "reached" : "not reached",
            o.item[0].lookups);
        if (o.overall != POL_SPF_PASS)
            spf_fix(r, it);
    }
}

static void
check_spf(struct report *r)
{
    struct pol_dns_answer *a = query(r, "SPF", r->domain, ns_t_txt);
    char *rec = NULL, why[300];
    int n = 0, lookups, voids;
    bool temp;
    struct item *it;

    if (a == NULL)
        return;
    for (int i = 0; a->rc == POL_DNS_OK && i < a->n; i++) {
        char *t = pol_dns_txt(a, i);
        if (t != NULL && strncasecmp(t, "v=spf1", 6) == 0
            && (t[6] == ' ' || t[6] == '\0')) {
            n++;
            free(rec);
            rec = t;
        } else
            free(t);
    }
    if (n != 1) {
        it = add(r, "SPF", ST_FAIL, n == 0 ? "no SPF record (v=spf1)"
            : "%d SPF records: receivers return permerror", n);
        spf_fix(r, it);
        if (n > 1)
            snprintf(it->fix + strlen(it->fix), sizeof(it->fix)
                - strlen(it->fix), "\n(publish exactly one; remove the "
                "others)");
        goto out;
    }
    it = add(r, "SPF", ST_OK, "one record: \"%s\"", rec);
    it->ttl = a->ttl;
    if (pol_spf_syntax(r->cfg->spf.state, rec, why, sizeof(why)) < 0) {
        it = add(r, "SPF", ST_FAIL, "syntax error: %s", why);
        spf_fix(r, it);
    }
    pol_spf_count(r->cfg, r->domain, &lookups, &voids, &temp);
    it = add(r, "SPF", temp ? ST_DNS : lookups > POL_SPF_MAX_LOOKUPS
            ? ST_FAIL : ST_OK, "%d DNS-querying terms (limit %d)", lookups,
        POL_SPF_MAX_LOOKUPS);
    if (lookups > POL_SPF_MAX_LOOKUPS)
        fix(it, "flatten includes or replace a/mx terms with ip4:/ip6: "
            "until at most 10 look-ups remain (RFC 7208 4.6.4)");
    it = add(r, "SPF", voids > 2 ? ST_FAIL : ST_OK, "%d void look-ups "
        "(limit 2)", voids);
    if (voids > 2)
        fix(it, "remove include:/redirect= targets that publish no SPF "
            "record");
    check_spf_policy(r, rec);
    check_spf_egress(r);
    ttl_check(r, "SPF", "the SPF record", a->ttl);
out:
    free(rec);
    pol_dns_answer_free(a);
}

/* ---- DKIM ---- */

/* nows - a copy without white space (p= may be folded, RFC 6376 3.6.1) */
static const char *
nows(struct pol_arena *a, const char *s)
{
    char *o, *q;

    if (s == NULL || (o = pol_arena_strdup(a, s)) == NULL)
        return s;
    for (q = o; *s; s++)
        if (!strchr(" \t\r\n", *s))
            *q++ = *s;
    *q = '\0';
    return o;
}

/* txt_fix - zone-file TXT with strings of at most 255 characters */
static void
txt_fix(struct item *it, const char *name, const char *txt)
{
    size_t n = strlen(txt), o;

    if (it == NULL)
        return;
    o = (size_t)snprintf(it->fix, sizeof(it->fix), "%s. 3600 IN TXT (", name);
    for (size_t i = 0; i < n && o < sizeof(it->fix); i += 255)
        o += (size_t)snprintf(it->fix + o, sizeof(it->fix) - o, " \"%.*s\"",
            (int)(n - i < 255 ? n - i : 255), txt + i);
    if (o < sizeof(it->fix))
        snprintf(it->fix + o, sizeof(it->fix) - o, " )");
}

static void
check_key(struct report *r, const struct pol_key *k)
{
    char name[400], want[4096], why[200];
    struct pol_dns_answer *a;
    struct pol_arena *ar = pol_arena_new();
    struct pol_tags t, tw;
    char *txt = NULL;
    const char *p, *pw, *flags, *kt, *v, *h;
    struct item *it;

    snprintf(name, sizeof(name), "%s._domainkey.%s", k->selector, k->domain);
    if (ar == NULL || pol_key_txt(k, want, sizeof(want)) < 0
        || (a = query(r, "DKIM", name, ns_t_txt)) == NULL) {
        pol_arena_free(ar);
        return;
    }
    if (a->rc != POL_DNS_OK || a->n == 0) {
        it = add(r, "DKIM", ST_FAIL, "key \"%s\": no record at %s", k->id,
            name);
        txt_fix(it, name, want);
        goto out;
    }
    txt = pol_dns_txt(a, 0);
    pol_tags_parse(ar, want, &tw, why, sizeof(why));
    pw = pol_tags_get(&tw, "p");
    if (txt == NULL || pol_tags_parse(ar, txt, &t, why, sizeof(why)) < 0) {
        it = add(r, "DKIM", ST_FAIL, "key \"%s\": %s does not parse: %s",
            k->id, name, why);
        txt_fix(it, name, want);
        goto out;
    }
    p = nows(ar, pol_tags_get(&t, "p"));
    pw = nows(ar, pw);
    flags = pol_tags_get(&t, "t");
    if ((kt = pol_tags_get(&t, "k")) == NULL)
        kt = "rsa";
    if ((v = pol_tags_get(&t, "v")) != NULL && strcmp(v, "DKIM1") != 0) {
        it = add(r, "DKIM", ST_FAIL, "key \"%s\": %s has v=%s (must be "
            "DKIM1, or absent)", k->id, name, v);
        txt_fix(it, name, want);
    } else if (strcasecmp(kt, k->alg == POL_ALG_ED25519_SHA256 ? "ed25519"
                   : "rsa") != 0) {
        it = add(r, "DKIM", ST_FAIL, "key \"%s\": %s says k=%s but the "
            "private key is %s", k->id, name, kt, pol_alg_name(k->alg));
        txt_fix(it, name, want);
    } else if ((h = pol_tags_get(&t, "h")) != NULL
        && strcasestr(h, "sha256") == NULL) {
        it = add(r, "DKIM", ST_FAIL, "key \"%s\": %s allows only h=%s; "
            "our signatures use sha256", k->id, name, h);
        txt_fix(it, name, want);
    } else
    if (p != NULL && *p == '\0') {
        it = add(r, "DKIM", ST_FAIL, "key \"%s\": %s is revoked (empty p=)",
            k->id, name);
        txt_fix(it, name, want);
    } else if (p == NULL || pw == NULL || strcmp(p, pw) != 0) {
        it = add(r, "DKIM", ST_FAIL, "key \"%s\": the key published at %s "
            "does not match %s", k->id, name, k->file);
        txt_fix(it, name, want);
    } else {
        it = add(r, "DKIM", ST_OK, "key \"%s\" (%s%s%d bits) published at %s "
            "and matches %s", k->id, pol_alg_name(k->alg),
            k->alg == POL_ALG_RSA_SHA256 ? ", " : ", ", k->bits, name,
            k->file);
        it->ttl = a->ttl;
        if (k->alg == POL_ALG_RSA_SHA256 && k->bits < 2048)
            fix(add(r, "DKIM", ST_WARN, "key \"%s\" is RSA-%d; use 2048 "
                "bits", k->id, k->bits), "outpolicyctl keygen --domain %s "
                "--selector NEW --bits 2048, publish it, then switch the "
                "key table to it", k->domain);
    }
    if (flags != NULL && strchr(flags, 'y') != NULL)
        fix(add(r, "DKIM", ST_WARN, "key \"%s\" is in testing mode (t=y): "
            "receivers may ignore failures", k->id), "remove t=y from %s",
            name);
    ttl_check(r, "DKIM", name, a->ttl);
out:
    free(txt);
    pol_dns_answer_free(a);
    pol_arena_free(ar);
}

static void
check_dkim(struct report *r)
{
    int n = 0;

    for (size_t i = 0; i < r->cfg->keys.n; i++)
        if (strcasecmp(r->cfg->keys.v[i].domain, r->domain) == 0) {
            check_key(r, &r->cfg->keys.v[i]);
            n++;
        }
    if (n == 0)
        fix(add(r, "DKIM", ST_WARN, "no key for %s in the config's key "
            "table: mail from it leaves unsigned", r->domain),
            "outpolicyctl keygen --domain %s --selector s1 --out "
            "/etc/outpolicy/keys/%s.s1.pem, then add it to keys and "
            "dkim.signing", r->domain, r->domain);
}

/* ---- DMARC, MTA-STS, TLS-RPT ---- */

/* check_rua - external report destinations authorise us (RFC 7489 7.1) */
static void
check_rua(struct report *r, const char *rua)
{
    char list[256], *save = NULL;

    snprintf(list, sizeof(list), "%s", rua);
    for (char *u = strtok_r(list, ",", &save); u;
         u = strtok_r(NULL, ",", &save)) {
        char name[400], *at, *end;
        struct pol_dns_answer *a;
        u += strspn(u, " ");
        if (strncasecmp(u, "mailto:", 7) != 0 || (at = strrchr(u, '@'))
            == NULL)
            continue;
        at++;
        if ((end = strchr(at, '!')) != NULL)
            *end = '\0';
        if (strcasecmp(pol_org_domain(r->cfg, at),
                pol_org_domain(r->cfg, r->domain)) == 0)
            continue; /* same organization: no authorisation needed */
        snprintf(name, sizeof(name), "%s._report._dmarc.%s", r->domain, at);
        if ((a = query(r, "DMARC", name, ns_t_txt)) == NULL)
            continue;
        bool ok = false;
        for (int i = 0; a->rc == POL_DNS_OK && i < a->n && !ok; i++) {
            char *t = pol_dns_txt(a, i);
            ok = t != NULL && strncmp(t, "v=DMARC1", 8) == 0;
            free(t);
        }
        if (ok)
            add(r, "DMARC", ST_OK, "report destination %s authorises %s",
                at, r->domain);
        else
            fix(add(r, "DMARC", ST_WARN, "report destination %s has not "
                "authorised reports for %s (receivers will not send them)",
                at, r->domain), "at %s's DNS: %s. IN TXT \"v=DMARC1\"", at,
                name);
        pol_dns_answer_free(a);
    }
}

static void
check_dmarc(struct report *r)
{
    struct pol_dmarc_record rec;
    const char *at;
    bool sub;
    char why[200] = "";
    int found = pol_dmarc_lookup(r->cfg, r->domain, &rec, &at, &sub, why,
        sizeof(why));
    static const char *const meaning[] = {
        "receivers only report (p=none): nothing is blocked yet",
        "receivers quarantine mail that fails DMARC (p=quarantine)",
        "receivers reject mail that fails DMARC (p=reject)",
    };
    struct item *it;
    int p;

    if (found < 0) {
        add(r, "DMARC", ST_DNS, "DMARC look-up failed: %s", why);
        return;
    }
    if (found == 0) {
        it = add(r, "DMARC", ST_FAIL, "no DMARC record at _dmarc.%s%s%s",
            r->domain, why[0] ? ": " : "", why);
        fix(it, "_dmarc.%s. 3600 IN TXT \"v=DMARC1; p=none; "
            "rua=mailto:dmarc-reports@%s\"", r->domain, r->domain);
        return;
    }
    p = sub ? rec.sp : rec.p;
    it = add(r, "DMARC", p == POL_DMARC_NONE ? ST_WARN : ST_OK, "%s at _dmarc.%s"
        "%s: %s; alignment adkim=%s aspf=%s; pct=%d", sub ? "inherited"
            : "published", at, sub ? " (sp= applies)" : "", meaning[p],
        rec.adkim_strict ? "strict" : "relaxed",
        rec.aspf_strict ? "strict" : "relaxed", rec.pct);
    if (p == POL_DMARC_NONE)
        fix(it, "once reports show your mail passing: _dmarc.%s. 3600 IN "
            "TXT \"v=DMARC1; p=quarantine%s%s\"", at, rec.rua[0]
                ? "; rua=" : "", rec.rua);
    if (rec.rua[0] == '\0')
        fix(add(r, "DMARC", ST_WARN, "no rua=: no aggregate reports"),
            "add rua=mailto:dmarc-reports@%s to _dmarc.%s", r->domain, at);
    else
        check_rua(r, rec.rua);
}

static void
check_present(struct report *r, const char *group, const char *prefix,
    const char *tag, const char *what, const char *example)
{
    char name[300];
    struct pol_dns_answer *a;
    bool ok = false;

    snprintf(name, sizeof(name), "%s.%s", prefix, r->domain);
    if ((a = query(r, group, name, ns_t_txt)) == NULL)
        return;
    for (int i = 0; a->rc == POL_DNS_OK && i < a->n && !ok; i++) {
        char *t = pol_dns_txt(a, i);
        ok = t != NULL && strncmp(t, tag, strlen(tag)) == 0;
        free(t);
    }
    if (ok)
        add(r, group, ST_OK, "published at %s", name);
    else
        fix(add(r, group, ST_WARN, "not published: %s", what),
            "%s. 3600 IN TXT \"%s%s\"", name, example,
            strstr(example, "mailto:") ? r->domain : "");
    pol_dns_answer_free(a);
}

static void
check_dnssec(struct report *r)
{
    struct pol_dns_answer *a;

    /* informational: DNSSEC is a DANE prerequisite, not a fault */
    if (*r->cfg->dns.trust_anchor == '\0') {
        add(r, "DNSSEC", ST_OK, "not checked (no dns.trust_anchor; e.g. "
            "/usr/share/dns/root.key from the package dns-root-data)");
        return;
    }
    if ((a = query(r, "DNSSEC", r->domain, ns_t_soa)) == NULL)
        return;
    add(r, "DNSSEC", ST_OK, a->secure
            ? "the zone is signed and validates: DANE (TLSA) is possible"
            : "the zone is not DNSSEC-signed: DANE is not possible "
              "(informational)");
    pol_dns_answer_free(a);
}

/* ---- output ---- */

static void
put_text(FILE *f, const struct report *r)
{
    const char *group = "";

    fprintf(f, "check-domain %s\n", r->domain);
    for (int i = 0; i < r->n; i++) {
        const struct item *it = &r->it[i];
        if (strcmp(group, it->group) != 0)
            fprintf(f, "\n%s\n", group = it->group);
        fprintf(f, "  %-5s %s", st_names[it->status], it->msg);
        if (it->ttl >= 0)
            fprintf(f, " (TTL %d s)", it->ttl);
        fputc('\n', f);
        if (it->fix[0]) {
            fprintf(f, "        fix: ");
            for (const char *c = it->fix; *c; c++)
                fputs(*c == '\n' ? "\n             " : (char[2]){ *c, 0 }, f);
            fputc('\n', f);
        }
    }
}

static void
put_json(FILE *f, const struct report *r, int code)
{
    struct pol_json j;
    int counts[4] = { 0 };

    pol_json_init(&j);
    pol_json_obj_begin(&j, NULL);
    pol_json_str(&j, "domain", r->domain);
    pol_json_arr_begin(&j, "checks");
    for (int i = 0; i < r->n; i++) {
        counts[r->it[i].status]++;
        pol_json_obj_begin(&j, NULL);
        pol_json_str(&j, "group", r->it[i].group);
        pol_json_str(&j, "status", st_names[r->it[i].status]);
        pol_json_str(&j, "message", r->it[i].msg);
        if (r->it[i].fix[0])
            pol_json_str(&j, "fix", r->it[i].fix);
        if (r->it[i].ttl >= 0)
            pol_json_int(&j, "ttl", r->it[i].ttl);
        pol_json_obj_end(&j);
    }
    pol_json_arr_end(&j);
    pol_json_obj_begin(&j, "summary");
    pol_json_int(&j, "ok", counts[ST_OK]);
    pol_json_int(&j, "warn", counts[ST_WARN]);
    pol_json_int(&j, "fail", counts[ST_FAIL]);
    pol_json_int(&j, "dns_errors", counts[ST_DNS]);
    pol_json_int(&j, "exit", code);
    pol_json_obj_end(&j);
    pol_json_obj_end(&j);
    if (!j.oom)
        fprintf(f, "%s\n", j.buf);
    pol_json_free(&j);
}

int
pol_check_domain(const struct pol_config *cfg, const char *domain,
    const char *provider, bool json, FILE *out)
{
    struct report *r = calloc(1, sizeof(*r));
    int code = 0;

    if (r == NULL)
        return 3;
    r->cfg = cfg;
    r->domain = domain;
    check_mx(r, provider);
    if (!r->dns_down) {
        check_spf(r);
        check_dkim(r);
        check_dmarc(r);
        check_present(r, "MTA-STS", "_mta-sts", "v=STSv1", "senders "
            "cannot be told to require TLS to your MX (RFC 8461)",
            "v=STSv1; id=20260101");
        check_present(r, "TLS-RPT", "_smtp._tls", "v=TLSRPTv1", "no reports "
            "of TLS failures delivering to you (RFC 8460)",
            "v=TLSRPTv1; rua=mailto:tls-reports@");
        check_dnssec(r);
    }
    for (int i = 0; i < r->n; i++)
        if (r->it[i].status == ST_DNS)
            code = 3;
        else if (code < 3 && r->it[i].status > code)
            code = r->it[i].status;
    if (json)
        put_json(out, r, code);
    else {
        put_text(out, r);
        fprintf(out, "\nresult: %s (exit %d)\n", code == 0 ? "all OK"
            : code == 1 ? "warnings" : code == 2 ? "failures"
            : "DNS could not be reached", code);
    }
    free(r);
    return code;
}
