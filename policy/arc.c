/*
 * policy/arc.c - ARC (RFC 8617) chain validation and sealing.
 *
 * At end of headers the ARC header sets are indexed by instance and their
 * structure is checked; the body hashes the newest AMS needs, and our own
 * AMS, are then streamed (canon.c).  At end of message the chain is
 * validated (newest AMS, then every seal, newest first) within a budget
 * of signatures and key look-ups, and a new set AAR + AMS + AS with
 * i = N + 1 is queued for insertion on top (AS topmost), unless the chain
 * already has 50 sets or its newest seal says cv=fail.
 * Per-message state; one thread at a time.
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "arc.h"
#include "canon.h"
#include "keys.h"
#include "msg.h"

enum { AAR = 0, AMS, AS, KINDS };
static const char *const kind_names[KINDS] = {
    "ARC-Authentication-Results", "ARC-Message-Signature", "ARC-Seal",
};

/* one slot per possible look-up (arc.max_key_lookups is at most 51), so a
 * fetched key is always cached and freed with the message */
#define KEY_CACHE 52

struct arc_field {
    const struct pol_hdr *h;
    struct pol_tags tags; /* AMS, AS */
};

struct pol_arc {
    struct arc_field *f[POL_ARC_MAX + 1][KINDS];
    int n;                     /* highest instance */
    const char *cv;            /* none / pass / fail, once decided */
    char reason[200];
    struct pol_bodyhash *vbh;  /* body hash of AMS(n) */
    struct pol_bodyhash *sbh;  /* body hash of our AMS */
    const struct pol_key *key; /* sealing key, or NULL */
    int sigs, lookups;         /* validation budget used */
    struct {
        char d[256], s[64];
        struct pol_pubkey *k;
    } cache[KEY_CACHE];
    int ncache;
};

/* ---- tag lists ---- */

int
pol_tags_parse(struct pol_arena *a, const char *list, struct pol_tags *t,
    char *why, size_t whylen)
{
    const char *p = list;

    t->n = 0;
    while (*p) {
        const char *name, *val, *end;
        size_t nl, vl;
        p += strspn(p, " \t\r\n");
        if (*p == '\0')
            break;
        name = p;
        if (!isalpha((unsigned char)*p)) {
            snprintf(why, whylen, "bad tag name near \"%.16s\"", p);
            return -1;
        }
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        nl = (size_t)(p - name);
        p += strspn(p, " \t\r\n");
        if (*p != '=') {
            snprintf(why, whylen, "tag \"%.*s\" without '='", (int)nl, name);
            return -1;
        }
        p++;
        p += strspn(p, " \t\r\n");
        val = p;
        end = strchr(p, ';');
        if (end == NULL)
            end = p + strlen(p);
        vl = (size_t)(end - val);
        while (vl > 0 && strchr(" \t\r\n", val[vl - 1]) != NULL)
            vl--;
        if (t->n >= POL_TAGS_MAX) {
            snprintf(why, whylen, "more than %d tags", POL_TAGS_MAX);
            return -1;
        }
        t->t[t->n].name = pol_arena_strndup(a, name, nl);
        t->t[t->n].value = pol_arena_strndup(a, val, vl);
        if (t->t[t->n].name == NULL || t->t[t->n].value == NULL) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        for (int i = 0; i < t->n; i++)
            if (strcmp(t->t[i].name, t->t[t->n].name) == 0) {
                snprintf(why, whylen, "duplicate tag \"%s\"",
                    t->t[t->n].name);
                return -1;
            }
        t->n++;
        p = *end ? end + 1 : end;
    }
    return 0;
}

const char *
pol_tags_get(const struct pol_tags *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->t[i].name, name) == 0)
            return t->t[i].value;
    return NULL;
}

/* strip_b - the field value with the b= tag's value removed */
static char *
strip_b(struct pol_arena *a, const char *v)
{
    char *out = pol_arena_strdup(a, v), *p = out;

    while (out != NULL && p != NULL && *p) {
        char *q = p + strspn(p, " \t\r\n");
        if (*q == 'b') {
            char *e = q + 1 + strspn(q + 1, " \t\r\n");
            if (*e == '=') {
                char *semi = strchr(e, ';');
                memmove(e + 1, semi ? semi : e + strlen(e),
                    strlen(semi ? semi : e + strlen(e)) + 1);
                return out;
            }
        }
        p = strchr(q, ';');
        if (p != NULL)
            p++;
    }
    return out;
}

/* ---- collecting the sets ---- */

/* fail - decide cv=fail with a reason (the first reason wins) */
static void POL_PRINTF(2, 3)
fail(struct pol_arc *arc, const char *fmt, ...)
{
    va_list ap;

    if (arc->cv != NULL)
        return;
    arc->cv = "fail";
    va_start(ap, fmt);
    vsnprintf(arc->reason, sizeof(arc->reason), fmt, ap);
    va_end(ap);
}

/* instance - i= of an ARC field (AAR: the leading "i=N;"), or -1 */
static int
instance(const char *v)
{
    long i;
    char *end;

    v += strspn(v, " \t\r\n");
    if (v[0] != 'i')
        return -1;
    v++;
    v += strspn(v, " \t\r\n");
    if (*v++ != '=')
        return -1;
    v += strspn(v, " \t\r\n");
    if (!isdigit((unsigned char)*v))
        return -1;
    i = strtol(v, &end, 10);
    end += strspn(end, " \t\r\n");
    if (*end != ';' && *end != '\0')
        return -1;
    return i >= 1 && i <= POL_ARC_MAX ? (int)i : -1;
}

/* tag_instance - i= of a parsed AMS/AS, or -1 */
static int
tag_instance(const struct pol_tags *t)
{
    const char *v = pol_tags_get(t, "i");
    char *end;
    long i;

    if (v == NULL || !isdigit((unsigned char)*v))
        return -1;
    i = strtol(v, &end, 10);
    return *end == '\0' && i >= 1 && i <= POL_ARC_MAX ? (int)i : -1;
}

/* collect - index one ARC field */
static void
collect(struct pol_msg *m, struct pol_arc *arc, const struct pol_hdr *h,
    int kind)
{
    struct arc_field *f;
    char why[120];
    int i;

    if ((f = pol_arena_alloc(m->arena, sizeof(*f))) == NULL)
        return;
    f->h = h;
    if (kind != AAR && pol_tags_parse(m->arena, h->value, &f->tags, why,
                           sizeof(why)) < 0) {
        fail(arc, "%s does not parse: %s", kind_names[kind], why);
        return;
    }
    i = kind == AAR ? instance(h->value) : tag_instance(&f->tags);
    if (i < 0) {
        fail(arc, "%s with a missing or invalid i= (1..50)",
            kind_names[kind]);
        return;
    }
    if (arc->f[i][kind] != NULL) {
        fail(arc, "two %s fields with i=%d", kind_names[kind], i);
        return;
    }
    arc->f[i][kind] = f;
    if (i > arc->n)
        arc->n = i;
}

/* check_structure - every instance 1..n has exactly one field of each kind */
static void
check_structure(struct pol_arc *arc)
{
    for (int i = 1; i <= arc->n && arc->cv == NULL; i++)
        for (int k = 0; k < KINDS; k++)
            if (arc->f[i][k] == NULL)
                fail(arc, "missing %s i=%d", kind_names[k], i);
}

/* seal_cv - cv= of AS(i), "" if absent */
static const char *
seal_cv(const struct pol_arc *arc, int i)
{
    const char *cv = arc->f[i][AS] ? pol_tags_get(&arc->f[i][AS]->tags, "cv")
                                   : NULL;
    return cv ? cv : "";
}

/* sealing_key - ADMD key, or the rule for the From domain */
static const struct pol_key *
sealing_key(const struct pol_msg *m, const struct pol_config *cfg)
{
    const struct pol_dkim_rule *r = NULL;

    if (m->nfrom > 0)
        r = pol_rules_match(cfg->arc.rules, cfg->arc.nrules,
            pol_addr_domain(m->from[0]));
    if (r != NULL)
        return r->keys[0];
    return cfg->arc.key;
}

enum pol_status
pol_arc_eoh(struct pol_msg *m)
{
    const struct pol_config *cfg = m->cfg;
    struct pol_arc *arc;
    const char *c;

    if (!cfg->arc.enabled)
        return POL_OK;
    if ((arc = pol_arena_alloc(m->arena, sizeof(*arc))) == NULL)
        goto oom;
    m->arc = arc;
    for (const struct pol_hdr *h = m->hdrs; h != NULL; h = h->next)
        for (int k = 0; k < KINDS; k++)
            if (strcasecmp(h->name, kind_names[k]) == 0)
                collect(m, arc, h, k);
    check_structure(arc);
    if (arc->n == 0 && arc->cv == NULL)
        arc->cv = "none";
    if (arc->cv == NULL && strcmp(seal_cv(arc, arc->n), "fail") == 0)
        fail(arc, "the newest ARC-Seal (i=%d) says cv=fail", arc->n);
    if (arc->cv == NULL) { /* body hash for AMS(n) */
        const struct pol_tags *t = &arc->f[arc->n][AMS]->tags;
        const char *l = pol_tags_get(t, "l");
        c = pol_tags_get(t, "c");
        arc->vbh = pol_bodyhash_new(c == NULL || (strchr(c, '/') != NULL
                && strncmp(strchr(c, '/') + 1, "relaxed", 7) == 0),
            l ? atoll(l) : -1);
        if (arc->vbh == NULL)
            goto oom;
    }
    arc->key = sealing_key(m, cfg);
    if (arc->key != NULL && (arc->sbh = pol_bodyhash_new(true, -1)) == NULL)
        goto oom;
    return POL_OK;
oom:
    pol_msg_seterr(m, "451 4.3.0 out of memory");
    return POL_ETEMP;
}

void
pol_arc_body(struct pol_msg *m, const unsigned char *p, size_t n)
{
    if (m->arc == NULL)
        return;
    if (m->arc->vbh != NULL)
        pol_bodyhash_update(m->arc->vbh, p, n);
    if (m->arc->sbh != NULL)
        pol_bodyhash_update(m->arc->sbh, p, n);
}

void
pol_arc_free(struct pol_msg *m)
{
    struct pol_arc *arc = m->arc;

    if (arc == NULL)
        return;
    pol_bodyhash_free(arc->vbh);
    pol_bodyhash_free(arc->sbh);
    for (int i = 0; i < arc->ncache; i++)
        pol_pubkey_free(arc->cache[i].k);
    m->arc = NULL;
}

const char *
pol_msg_arc_result(const struct pol_msg *m, int *instances,
    const char **reason, int *added)
{
    *instances = m->arc ? m->arc->n : 0;
    *added = m->arc_added;
    return pol_arc_cv(m, reason);
}

const char *
pol_arc_cv(const struct pol_msg *m, const char **reason)
{
    if (m->arc == NULL || m->arc->cv == NULL) {
        *reason = "";
        return "none";
    }
    *reason = m->arc->reason;
    return m->arc->cv;
}

/* ---- hashing ---- */

struct hash {
    EVP_MD_CTX *md;
};

static bool
hash_init(struct hash *h)
{
    return (h->md = EVP_MD_CTX_new()) != NULL
        && EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) == 1;
}

/* hash_field - canonical "name:value" (+ CRLF unless last) */
static bool
hash_field(struct pol_msg *m, struct hash *h, const char *name,
    const char *value, bool relaxed, const char *line, bool last)
{
    const char *c = relaxed ? pol_canon_header(m->arena, name, value, true)
                            : line;

    if (c == NULL)
        return false;
    EVP_DigestUpdate(h->md, c, strlen(c));
    if (!last)
        EVP_DigestUpdate(h->md, "\r\n", 2);
    return true;
}

static bool
hash_final(struct hash *h, unsigned char *out)
{
    unsigned int n = 0;
    bool ok = EVP_DigestFinal_ex(h->md, out, &n) == 1 && n == 32;

    EVP_MD_CTX_free(h->md);
    h->md = NULL;
    return ok;
}

/* header_array - the message's header fields, top first */
static const struct pol_hdr **
header_array(struct pol_msg *m, const struct pol_hdr *extra_top[],
    int nextra, int *n)
{
    const struct pol_hdr **v;
    int k = 0, count = nextra;

    for (const struct pol_hdr *h = m->hdrs; h; h = h->next)
        count++;
    if ((v = pol_arena_alloc(m->arena, sizeof(*v) * (size_t)(count + 1)))
        == NULL)
        return NULL;
    for (int i = 0; i < nextra; i++)
        v[k++] = extra_top[i];
    for (const struct pol_hdr *h = m->hdrs; h; h = h->next)
        v[k++] = h;
    *n = k;
    return v;
}

/* hash_signed_headers - the h= list, each name taking the lowest unused
 * occurrence (RFC 6376 5.4.2), then the signature field without b= */
static bool
hash_signed_headers(struct pol_msg *m, struct hash *h,
    const struct pol_hdr **v, int n, const char *hlist, bool relaxed)
{
    bool *used = pol_arena_alloc(m->arena, (size_t)n + 1);
    char *list = pol_arena_strdup(m->arena, hlist), *save = NULL;

    if (used == NULL || list == NULL)
        return false;
    for (char *name = strtok_r(list, ":", &save); name;
         name = strtok_r(NULL, ":", &save)) {
        name += strspn(name, " \t\r\n");
        for (size_t l = strlen(name); l > 0 && strchr(" \t\r\n",
                 name[l - 1]); l--)
            name[l - 1] = '\0';
        for (int i = n - 1; i >= 0; i--)
            if (!used[i] && strcasecmp(v[i]->name, name) == 0) {
                used[i] = true;
                if (!hash_field(m, h, v[i]->name, v[i]->value, relaxed,
                        v[i]->line, false))
                    return false;
                break;
            }
    }
    return true;
}

/* ---- validation ---- */

/* get_key - d/s key, from the per-message cache or a look-up in budget */
static struct pol_pubkey *
get_key(struct pol_msg *m, pol_txt_fn fn, void *arg, const char *d,
    const char *s)
{
    struct pol_arc *arc = m->arc;
    struct pol_pubkey *k;
    char why[160];
    int rc;

    for (int i = 0; i < arc->ncache; i++)
        if (strcasecmp(arc->cache[i].d, d) == 0
            && strcasecmp(arc->cache[i].s, s) == 0)
            return arc->cache[i].k;
    if (++arc->lookups > m->cfg->arc.max_key_lookups) {
        fail(arc, "more than %d key look-ups needed",
            m->cfg->arc.max_key_lookups);
        return NULL;
    }
    if ((k = pol_pubkey_fetch(fn, arg, s, d, &rc, why, sizeof(why)))
        == NULL) {
        if (rc < 0 && arc->cv == NULL) {
            arc->cv = "temperror"; /* decided by the caller */
            snprintf(arc->reason, sizeof(arc->reason), "%s", why);
        } else
            fail(arc, "key s=%s d=%s: %s", s, d, why);
        return NULL;
    }
    /* lookups <= max_key_lookups < KEY_CACHE: there is always a slot */
    snprintf(arc->cache[arc->ncache].d, sizeof(arc->cache[0].d), "%s", d);
    snprintf(arc->cache[arc->ncache].s, sizeof(arc->cache[0].s), "%s", s);
    arc->cache[arc->ncache++].k = k;
    return k;
}

/* check_sig - verify field f's b= over digest with its d=/s= key */
static bool
check_sig(struct pol_msg *m, pol_txt_fn fn, void *arg,
    const struct arc_field *f, const unsigned char *digest, const char *what,
    int i)
{
    struct pol_arc *arc = m->arc;
    const char *a = pol_tags_get(&f->tags, "a"), *b = pol_tags_get(&f->tags,
        "b"), *d = pol_tags_get(&f->tags, "d"), *s = pol_tags_get(&f->tags,
        "s");
    unsigned char sig[1024];
    struct pol_pubkey *k;
    long n;

    if (a == NULL || b == NULL || d == NULL || s == NULL) {
        fail(arc, "%s i=%d lacks a=, b=, d= or s=", what, i);
        return false;
    }
    if (strcmp(a, "rsa-sha256") != 0 && strcmp(a, "ed25519-sha256") != 0) {
        fail(arc, "%s i=%d: unsupported a=%s", what, i, a);
        return false;
    }
    if (++arc->sigs > m->cfg->arc.max_signatures) {
        fail(arc, "more than %d signatures to check",
            m->cfg->arc.max_signatures);
        return false;
    }
    if ((k = get_key(m, fn, arg, d, s)) == NULL)
        return false;
    if ((n = pol_b64_decode(b, sig, sizeof(sig))) <= 0
        || !pol_pubkey_verify(k, a, digest, sig, (size_t)n)) {
        fail(arc, "%s i=%d: signature does not verify (d=%s s=%s)", what, i,
            d, s);
        return false;
    }
    return true;
}

/* verify_ams - the newest AMS: body hash and header signature */
static bool
verify_ams(struct pol_msg *m, pol_txt_fn fn, void *arg)
{
    struct pol_arc *arc = m->arc;
    const struct arc_field *f = arc->f[arc->n][AMS];
    const char *hl = pol_tags_get(&f->tags, "h"), *bh = pol_tags_get(
        &f->tags, "bh"), *c = pol_tags_get(&f->tags, "c");
    /* RFC 8617 leaves c= to DKIM's default (simple); the ARC test suite
     * and dkimpy use relaxed/relaxed when c= is absent, as we do */
    bool relaxed = c == NULL || strncmp(c, "relaxed", 7) == 0;
    const struct pol_hdr **v;
    char mine[64], *stripped, *line;
    unsigned char digest[32], want[64], got[64];
    struct hash h;
    int n;

    if (hl == NULL || bh == NULL) {
        fail(arc, "ARC-Message-Signature i=%d lacks h= or bh=", arc->n);
        return false;
    }
    if (strcasestr(hl, "arc-seal") != NULL) {
        fail(arc, "ARC-Message-Signature i=%d signs ARC-Seal", arc->n);
        return false;
    }
    if (pol_bodyhash_final(arc->vbh, mine, sizeof(mine)) < 0
        || pol_b64_decode(bh, want, sizeof(want)) != 32
        || pol_b64_decode(mine, got, sizeof(got)) != 32
        || memcmp(want, got, 32) != 0) {
        fail(arc, "ARC-Message-Signature i=%d: body hash does not match "
            "(body changed)", arc->n);
        return false;
    }
    if ((v = header_array(m, NULL, 0, &n)) == NULL
        || (stripped = strip_b(m->arena, f->h->value)) == NULL
        || (line = pol_arena_alloc(m->arena, strlen(f->h->name)
                + strlen(stripped) + 3)) == NULL || !hash_init(&h))
        return false;
    sprintf(line, "%s:%s%s", f->h->name, m->client.hdr_leadspc ? "" : " ",
        stripped);
    if (!hash_signed_headers(m, &h, v, n, hl, relaxed)
        || !hash_field(m, &h, f->h->name, stripped, relaxed, line, true)
        || !hash_final(&h, digest))
        return false;
    return check_sig(m, fn, arg, f, digest, "ARC-Message-Signature",
        arc->n);
}

/* seal_digest - AS(i)'s hash input: sets 1..i, the last AS without b= */
static bool
seal_digest(struct pol_msg *m, const struct arc_field *const sets[][KINDS],
    int i, const char *last_as_stripped, unsigned char *digest)
{
    struct hash h;

    if (!hash_init(&h))
        return false;
    for (int j = 1; j <= i; j++)
        for (int k = 0; k < KINDS; k++) {
            const struct pol_hdr *f = sets[j][k]->h;
            bool last = j == i && k == AS;
            if (!hash_field(m, &h, f->name, last ? last_as_stripped
                    : f->value, true, NULL, last)) {
                EVP_MD_CTX_free(h.md);
                return false;
            }
        }
    return hash_final(&h, digest);
}

/* verify_seals - every AS from the newest down, with its cv= */
static bool
verify_seals(struct pol_msg *m, pol_txt_fn fn, void *arg)
{
    struct pol_arc *arc = m->arc;
    unsigned char digest[32];

    for (int i = arc->n; i >= 1; i--) {
        const struct arc_field *as = arc->f[i][AS];
        const char *cv = seal_cv(arc, i);
        char *stripped;
        if (strcmp(cv, i == 1 ? "none" : "pass") != 0) {
            fail(arc, "ARC-Seal i=%d has cv=%s, expected %s", i, cv,
                i == 1 ? "none" : "pass");
            return false;
        }
        if (pol_tags_get(&as->tags, "h") != NULL) {
            fail(arc, "ARC-Seal i=%d has an h= tag", i);
            return false;
        }
        if ((stripped = strip_b(m->arena, as->h->value)) == NULL
            || !seal_digest(m, (const struct arc_field *const(*)[KINDS])
                    arc->f, i, stripped, digest)
            || !check_sig(m, fn, arg, as, digest, "ARC-Seal", i))
            return false;
    }
    return true;
}

/* validate - the chain status (RFC 8617 5.2) */
static void
validate(struct pol_msg *m, pol_txt_fn fn, void *arg)
{
    struct pol_arc *arc = m->arc;

    if (arc->cv != NULL)
        return; /* decided by structure at end of headers */
    if (verify_ams(m, fn, arg) && verify_seals(m, fn, arg))
        arc->cv = "pass";
    if (arc->cv == NULL)
        fail(arc, "chain does not validate");
}

/* ---- sealing ---- */

struct tagval {
    const char *name, *value; /* value NULL: the b= slot */
};

/* build_value - "n=v; n=v; ..." in the given order, b= holding b; folded
 * before the long tags unless standardized (one line, as the suite) */
static char *
build_value(struct pol_arena *a, const struct tagval *tv, int n,
    const char *b, bool standardized)
{
    size_t len = 1;
    char *out, *p;

    for (int i = 0; i < n; i++)
        len += strlen(tv[i].name) + strlen(tv[i].value ? tv[i].value : b)
            + 5;
    if ((p = out = pol_arena_alloc(a, len)) == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        bool fold = !standardized && i > 0 && (strcmp(tv[i].name, "b") == 0
            || strcmp(tv[i].name, "bh") == 0 || strcmp(tv[i].name, "h") == 0
            || strcmp(tv[i].name, "d") == 0);
        p += sprintf(p, "%s%s=%s", i == 0 ? "" : fold ? ";\n\t" : "; ",
            tv[i].name, tv[i].value ? tv[i].value : b);
    }
    return out;
}

/* sort_tags - the "standardized" order: tag names alphabetically */
static void
sort_tags(struct tagval *tv, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(tv[j - 1].name, tv[j].name) > 0;
             j--) {
            struct tagval t = tv[j];
            tv[j] = tv[j - 1];
            tv[j - 1] = t;
        }
}

/* signed_field - build a signature field: hash (prefix fields + the field
 * with b= empty), sign, and return the field with b= filled */
static char *
signed_field(struct pol_msg *m, struct hash *h, const char *name,
    struct tagval *tv, int n, bool standardized)
{
    const struct pol_key *k = m->arc->key;
    char *empty, b64[1400];
    unsigned char digest[32];

    if (standardized)
        sort_tags(tv, n);
    if ((empty = build_value(m->arena, tv, n, "", standardized)) == NULL
        || !hash_field(m, h, name, empty, true, NULL, true)
        || !hash_final(h, digest)
        || pol_sign_digest(k->pkey, k->alg, digest, b64, sizeof(b64)) < 0)
        return NULL;
    return build_value(m->arena, tv, n, b64, standardized);
}

/* our_dkim_fields - the DKIM-Signature fields we insert, top first */
static int
our_dkim_fields(struct pol_msg *m, const struct pol_hdr **top, int max)
{
    int n = 0;

    for (const struct pol_edit *e = m->edits; e; e = e->next) {
        struct pol_hdr *h;
        if (e->kind != POL_EDIT_INSERT || strcasecmp(e->name,
                "DKIM-Signature") != 0 || n >= max
            || (h = pol_arena_alloc(m->arena, sizeof(*h))) == NULL)
            continue;
        h->name = e->name;
        h->value = e->value;
        memmove(top + 1, top, sizeof(*top) * (size_t)n); /* newest on top */
        top[0] = h;
        n++;
    }
    return n;
}

/* hlist - the AMS h= list: configured names, DKIM-Signature once per
 * field present so that ours (on top) are covered */
static char *
hlist(struct pol_msg *m, int ndkim)
{
    const struct pol_strlist *l = &m->cfg->arc.sign_headers;
    size_t len = 1 + (size_t)ndkim * 16;
    char *out, *p;

    if (m->arc_headers != NULL)
        return pol_arena_strdup(m->arena, m->arc_headers);
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->v[i]) + 1;
    if ((p = out = pol_arena_alloc(m->arena, len)) == NULL)
        return NULL;
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->v[i], "dkim-signature") != 0)
            p += sprintf(p, "%s%s", p == out ? "" : ":", l->v[i]);
    for (int i = 0; i < ndkim; i++)
        p += sprintf(p, "%sdkim-signature", p == out ? "" : ":");
    return out;
}

/* insert3 - queue AAR, AMS, AS, each at the top: AS ends up topmost */
static enum pol_status
insert3(struct pol_msg *m, const char *aar, const char *ams, const char *as)
{
    const char *vals[KINDS] = { aar, ams, as };

    for (int k = 0; k < KINDS; k++) {
        const char *v = vals[k];
        char *sp;
        if (m->client.hdr_leadspc) { /* values we add carry the space */
            if ((sp = pol_arena_alloc(m->arena, strlen(v) + 2)) == NULL)
                return POL_ETEMP;
            sp[0] = ' ';
            strcpy(sp + 1, v);
            v = sp;
        }
        if (pol_msg_add_edit(m, POL_EDIT_INSERT, kind_names[k], v, 0)
            != POL_OK)
            return POL_ETEMP;
    }
    return POL_OK;
}

/* seal - add AAR, AMS and AS with i = n + 1 */
static enum pol_status
seal(struct pol_msg *m)
{
    struct pol_arc *arc = m->arc;
    const struct pol_key *k = arc->key;
    const struct pol_hdr *top[MSG_MAX_SIGNERS], **v;
    const struct arc_field *sets[POL_ARC_MAX + 2][KINDS];
    struct pol_hdr nh[KINDS];
    struct arc_field nf[KINDS];
    char inst[16], ts[24], bh[64], *aar, *ams, *as, *hl;
    const char *alg = pol_alg_name(k->alg);
    bool std = m->arc_standardize;
    int ntop = our_dkim_fields(m, top, MSG_MAX_SIGNERS), n, ndkim = ntop;
    struct hash h;

    for (const struct pol_hdr *x = m->hdrs; x; x = x->next)
        ndkim += strcasecmp(x->name, "DKIM-Signature") == 0;
    snprintf(inst, sizeof(inst), "%d", arc->n + 1);
    snprintf(ts, sizeof(ts), "%lld", (long long)pol_now(m->cfg));
    if (pol_bodyhash_final(arc->sbh, bh, sizeof(bh)) < 0
        || (hl = hlist(m, ndkim)) == NULL
        || (v = header_array(m, top, ntop, &n)) == NULL
        || (aar = pol_arena_alloc(m->arena, strlen(m->cfg->arc.authserv_id)
                + strlen(m->arc_results) + 16)) == NULL)
        goto oom;
    sprintf(aar, "i=%s; %s; %s", inst, m->cfg->arc.authserv_id,
        m->arc_results);
    {
        struct tagval t[] = { { "i", inst }, { "a", alg },
            { "c", "relaxed/relaxed" }, { "d", k->domain },
            { "s", k->selector }, { "t", ts }, { "h", hl }, { "bh", bh },
            { "b", NULL } };
        if (!hash_init(&h) || !hash_signed_headers(m, &h, v, n, hl, true)
            || (ams = signed_field(m, &h, kind_names[AMS], t, 9, std))
                == NULL)
            goto oom;
    }
    memcpy(sets, arc->f, sizeof(arc->f));
    nh[AAR] = (struct pol_hdr){ .name = kind_names[AAR], .value = aar };
    nh[AMS] = (struct pol_hdr){ .name = kind_names[AMS], .value = ams };
    for (int kk = 0; kk < AS; kk++) {
        nf[kk].h = &nh[kk];
        sets[arc->n + 1][kk] = &nf[kk];
    }
    {
        struct tagval t[] = { { "i", inst }, { "a", alg },
            { "cv", arc->cv }, { "d", k->domain }, { "s", k->selector },
            { "t", ts }, { "b", NULL } };
        if (!hash_init(&h))
            goto oom;
        /* RFC 8617 5.1.2: a seal with cv=fail covers only its own set
         * (the earlier sets may be incomplete or broken) */
        for (int j = strcmp(arc->cv, "fail") == 0 ? arc->n + 1 : 1;
             j <= arc->n + 1; j++)
            for (int kk = 0; kk < KINDS && !(j == arc->n + 1 && kk == AS);
                 kk++)
                hash_field(m, &h, sets[j][kk]->h->name,
                    sets[j][kk]->h->value, true, NULL, false);
        if ((as = signed_field(m, &h, kind_names[AS], t, 7, std)) == NULL)
            goto oom;
    }
    m->arc_added = arc->n + 1;
    if (m->cfg->mode != POL_MODE_ENFORCE)
        return POL_OK; /* monitor: computed, not added */
    return insert3(m, aar, ams, as);
oom:
    pol_msg_seterr(m, "451 4.3.0 ARC sealing failed");
    return POL_ETEMP;
}

enum pol_status
pol_arc_validate(struct pol_msg *m, pol_txt_fn fn, void *arg)
{
    struct pol_arc *arc = m->arc;

    if (arc == NULL)
        return POL_OK;
    validate(m, fn, arg);
    if (strcmp(arc->cv, "temperror") == 0) {
        pol_msg_seterr(m, "451 4.7.0 ARC key look-up failed: %s",
            arc->reason);
        return POL_ETEMP;
    }
    return POL_OK;
}

enum pol_status
pol_arc_seal(struct pol_msg *m)
{
    struct pol_arc *arc = m->arc;

    if (arc == NULL || arc->key == NULL || arc->sbh == NULL)
        return POL_OK; /* validation only */
    if (arc->n >= POL_ARC_MAX) {
        m->arc_not_sealed = "the chain already has 50 sets";
        return POL_OK;
    }
    if (arc->n > 0 && strcmp(seal_cv(arc, arc->n), "fail") == 0) {
        m->arc_not_sealed = "the newest seal says cv=fail";
        return POL_OK;
    }
    return seal(m);
}
