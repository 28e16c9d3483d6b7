/*
 * policy/dkim.c - DKIM signing through libopendkim: the signing table
 * (From domain -> keys) and one signing handle per key, fed the same
 * header and body stream (RFC 8463 dual signing is two handles).
 *
 * The library handle (DKIM_LIB) belongs to a config snapshot and is shared
 * read-only by every message of that snapshot; handles (DKIM) belong to
 * one message.  The body is streamed to libopendkim chunk by chunk; only
 * the header block is kept (bounded), because the keys are chosen from
 * From:, which may come after other fields.  libopendkim types stay here.
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendkim/dkim.h>

#include "config.h"
#include "keys.h"
#include "msg.h"

#define SIG_HEADER "DKIM-Signature"

/* ---- signing table ---- */

/* rule_aligned - can key domain kd sign for From pattern p (DMARC relaxed
 * alignment without the PSL: same domain, or one a subdomain of the other) */
static bool
rule_aligned(const char *kd, const char *p)
{
    size_t lk = strlen(kd), lp;

    if (strncmp(p, "*.", 2) == 0)
        p += 2;
    lp = strlen(p);
    if (strcasecmp(kd, p) == 0)
        return true;
    if (lp > lk && p[lp - lk - 1] == '.' && strcasecmp(p + lp - lk, kd) == 0)
        return true;
    return lk > lp && kd[lk - lp - 1] == '.'
        && strcasecmp(kd + lk - lp, p) == 0;
}

/* parse_rule_keys - the keys = [ "id", ... ] of one rule */
static int
parse_rule_keys(const config_setting_t *e, struct pol_config *cfg,
    struct pol_dkim_rule *r, const char *path, int max, bool align,
    struct pol_err *err)
{
    const config_setting_t *ks = config_setting_get_member(e, "keys");
    int n = ks ? config_setting_length(ks) : 0;

    if (ks == NULL || !config_setting_is_aggregate(ks) || n == 0
        || config_setting_is_group(ks)) {
        pol_cf_error(err, ks ? ks : e, path, "rule for \"%s\" "
            "needs keys = [ \"key-id\", ... ];", r->pattern);
        return -1;
    }
    if (n > max) {
        pol_cf_error(err, ks, path, "rule for \"%s\": at most %d key%s",
            r->pattern, max, max > 1 ? "s" : "");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *k = config_setting_get_elem(ks, i);
        const char *id = config_setting_get_string(k);
        const struct pol_key *key = id ? pol_keys_find(&cfg->keys, id) : NULL;
        if (key == NULL) {
            pol_cf_error(err, k, path, "rule for \"%s\": %s%s%s",
                r->pattern, id ? "no key with id \"" : "key ids are strings",
                id ? id : "", id ? "\" in keys" : "");
            return -1;
        }
        if (align && !rule_aligned(key->domain, r->pattern)) {
            pol_cf_error(err, k, path, "rule for \"%s\": key \"%s\""
                " signs as d=%s, which does not align with that From domain "
                "(DMARC would fail)", r->pattern, id, key->domain);
            return -1;
        }
        r->keys[r->nkeys++] = key;
    }
    return 0;
}

/* parse_rule - one { from = "..."; keys = [ ... ]; } */
static int
parse_rule(const config_setting_t *e, struct pol_config *cfg,
    struct pol_dkim_rule *r, const char *path, int max, bool align,
    struct pol_err *err)
{
    const char *from, *bare;

    if (!config_setting_is_group(e)
        || config_setting_lookup_string(e, "from", &from) != CONFIG_TRUE) {
        pol_cf_error(err, e, path, "each rule is { from = "
            "\"example.com\"; keys = [ \"key-id\" ]; }");
        return -1;
    }
    for (int i = 0; i < config_setting_length(e); i++) {
        const char *name = config_setting_name(config_setting_get_elem(e, i));
        if (name == NULL || (strcmp(name, "from") && strcmp(name, "keys"))) {
            pol_cf_error(err, config_setting_get_elem(e, i), path,
                "unknown member \"%s\" (a rule has from and keys)",
                name ? name : "?");
            return -1;
        }
    }
    bare = strncmp(from, "*.", 2) == 0 ? from + 2 : from;
    if (strcmp(from, "*") == 0 || strchr(bare, '*') != NULL
        || !pol_domain_valid(bare) || strchr(bare, '.') == NULL) {
        pol_cf_error(err, e, path, "from = \"%s\": must be a "
            "domain or \"*.domain\"; a catch-all would sign every domain "
            "with one key", from);
        return -1;
    }
    if ((r->pattern = strdup(from)) == NULL) {
        pol_cf_error(err, e, path, "out of memory");
        return -1;
    }
    for (char *p = r->pattern; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    r->line = (int)config_setting_source_line(e);
    return parse_rule_keys(e, cfg, r, path, max, align, err);
}

int
pol_rules_parse(const config_setting_t *s, struct pol_config *cfg,
    const char *path, int max, bool align, struct pol_dkim_rule **rulesp,
    size_t *np, struct pol_err *err)
{
    int n;

    if (s == NULL)
        return 0;
    if (!config_setting_is_list(s)) {
        pol_cf_error(err, s, path, "must be a list of rules: ( { from = "
            "\"example.com\"; keys = [ \"id\" ]; } );");
        return -1;
    }
    n = config_setting_length(s);
    if (n == 0)
        return 0;
    if ((*rulesp = calloc((size_t)n, sizeof(**rulesp))) == NULL) {
        pol_cf_error(err, s, path, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, i);
        struct pol_dkim_rule *r = &(*rulesp)[i];
        *np = (size_t)i + 1;
        if (parse_rule(e, cfg, r, path, max, align, err) < 0)
            return -1;
        for (int j = 0; j < i; j++)
            if (strcmp((*rulesp)[j].pattern, r->pattern) == 0) {
                pol_cf_error(err, e, path, "from = \"%s\" is listed twice "
                    "(first at line %d)", r->pattern, (*rulesp)[j].line);
                return -1;
            }
    }
    return 0;
}

int
pol_arc_parse_sealing(const config_setting_t *s, struct pol_config *cfg,
    struct pol_err *err)
{
    return pol_rules_parse(s, cfg, "arc.sealing", 1, false, &cfg->arc.rules,
        &cfg->arc.nrules, err);
}

int
pol_dkim_parse_signing(const config_setting_t *s, struct pol_config *cfg,
    struct pol_err *err)
{
    return pol_rules_parse(s, cfg, "dkim.signing", POL_DKIM_MAX_KEYS, true,
        &cfg->dkim.rules, &cfg->dkim.nrules, err);
}

const struct pol_dkim_rule *
pol_rules_match(const struct pol_dkim_rule *rules, size_t n,
    const char *domain)
{
    const struct pol_dkim_rule *best = NULL;
    size_t dl = strlen(domain), bestlen = 0;

    for (size_t i = 0; i < n; i++) {
        const struct pol_dkim_rule *r = &rules[i];
        size_t pl;
        if (strcasecmp(r->pattern, domain) == 0)
            return r;
        if (strncmp(r->pattern, "*.", 2) != 0)
            continue;
        pl = strlen(r->pattern) - 1; /* ".example.com" */
        if (dl > pl && strcasecmp(domain + dl - pl, r->pattern + 1) == 0
            && pl > bestlen) {
            best = r;
            bestlen = pl;
        }
    }
    return best;
}

const struct pol_dkim_rule *
pol_dkim_match(const struct pol_config *cfg, const char *domain)
{
    return pol_rules_match(cfg->dkim.rules, cfg->dkim.nrules, domain);
}

/* ---- library handle ---- */

int
pol_dkim_setup(struct pol_config *cfg, struct pol_err *err)
{
    DKIM_LIB *lib;
    unsigned flags = DKIM_LIBFLAGS_FIXCRLF;
    uint64_t ttl = (uint64_t)cfg->dkim.expire, fixed;

    if (cfg->dkim.nrules == 0)
        return 0;
    if ((lib = dkim_init(NULL, NULL)) == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: dkim_init failed",
            cfg->file);
        return -1;
    }
    cfg->dkim.lib = lib;
    if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
            sizeof(flags)) != DKIM_STAT_OK
        || dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
               cfg->dkim.sign_headers.v, sizeof(char **)) != DKIM_STAT_OK
        || (cfg->dkim.oversign_headers.n > 0
            && dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
                   cfg->dkim.oversign_headers.v, sizeof(char **))
                != DKIM_STAT_OK)
        || (ttl > 0 && dkim_options(lib, DKIM_OP_SETOPT,
                           DKIM_OPTS_SIGNATURETTL, &ttl, sizeof(ttl))
                != DKIM_STAT_OK)) {
        snprintf(err->msg, sizeof(err->msg), "%s: dkim: libopendkim "
            "refused the signing options (header lists?)", cfg->file);
        return -1;
    }
    if (cfg->hooks.clock != NULL) { /* tests and dkim-sign --timestamp */
        fixed = (uint64_t)pol_now(cfg);
        dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, &fixed,
            sizeof(fixed));
    }
    return 0;
}

void
pol_rules_free(struct pol_dkim_rule *rules, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rules[i].pattern);
    free(rules);
}

void
pol_dkim_unconfigure(struct pol_config *cfg)
{
    pol_rules_free(cfg->arc.rules, cfg->arc.nrules);
    pol_rules_free(cfg->dkim.rules, cfg->dkim.nrules);
    if (cfg->dkim.lib != NULL)
        dkim_close(cfg->dkim.lib);
}

/* ---- per message ---- */

/* already_signed - the message has a DKIM-Signature with our d= and s= */
static bool
already_signed(const struct pol_msg *m, const struct pol_key *k)
{
    for (int i = 0; i < m->nexisting; i++)
        if (strcasecmp(m->existing[i].d, k->domain) == 0
            && strcasecmp(m->existing[i].s, k->selector) == 0)
            return true;
    return false;
}

/* start_signer - a libopendkim handle for key k, fed the stored headers */
static enum pol_status
start_signer(struct pol_msg *m, const struct pol_key *k)
{
    const struct pol_config *cfg = m->cfg;
    DKIM_STAT st;
    DKIM *d = dkim_sign(cfg->dkim.lib, (const u_char *)(*m->queue_id
            ? m->queue_id : "outpolicy"), NULL, (dkim_sigkey_t)k->pem,
        (const u_char *)k->selector, (const u_char *)k->domain,
        cfg->dkim.canon / 2 ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED,
        cfg->dkim.canon % 2 ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED,
        k->alg == POL_ALG_ED25519_SHA256 ? DKIM_SIGN_ED25519SHA256
                                         : DKIM_SIGN_RSASHA256, -1, &st);

    if (d == NULL) {
        pol_msg_seterr(m, "451 4.3.0 DKIM signing with key %s failed "
            "(libopendkim status %d)", k->id, (int)st);
        return POL_ETEMP;
    }
    /* libopendkim folds b= onto its own line for RSA only, but hashes the
     * unfolded form; under c=simple headers that breaks Ed25519
     * signatures, so those are not folded at all */
    if (k->alg == POL_ALG_ED25519_SHA256 && cfg->dkim.canon / 2)
        dkim_set_margin(d, 0);
    m->signers[m->nsigners] = d;
    m->signer_keys[m->nsigners++] = k;
    for (const struct pol_hdr *h = m->hdrs; h != NULL; h = h->next)
        if (dkim_header(d, (u_char *)h->line, h->len) != DKIM_STAT_OK
            && strncasecmp(h->line, SIG_HEADER ":", sizeof(SIG_HEADER))
                != 0) {
            /* libopendkim parses existing DKIM-Signature fields even when
             * signing and fails on a malformed one; the field is still
             * recorded and we never sign it, so that failure is ignored:
             * a broken signature from elsewhere must not stop our mail */
            pol_msg_seterr(m, "451 4.3.0 DKIM: %s", dkim_geterror(d));
            return POL_ETEMP;
        }
    if ((st = dkim_eoh(d)) != DKIM_STAT_OK) {
        pol_msg_seterr(m, "451 4.3.0 DKIM: %s", dkim_geterror(d));
        return POL_ETEMP;
    }
    return POL_OK;
}

/* from_domain - the domain to sign for, or NULL after setting a verdict */
static const char *
from_domain(struct pol_msg *m, const struct pol_config *cfg,
    struct pol_verdict *v)
{
    enum pol_action a = (enum pol_action)cfg->dkim.on_bad_from;
    const char *code = a == POL_REJECT ? "550 5.7.1" : "451 4.7.1";

    if (m->from_fields == 0 || m->nfrom <= 0) {
        m->dkim_result = "bad_from";
        pol_verdict_set(v, a, "dkim", "%s %s; cannot sign for it", code,
            m->from_fields == 0 ? "Message has no From: header"
                                : "From: header cannot be parsed");
        return NULL;
    }
    if (m->from_fields > 1 && cfg->dkim.on_multiple_from == POL_REJECT) {
        m->dkim_result = "bad_from";
        pol_verdict_set(v, POL_REJECT, "dkim", "550 5.7.1 Message has %d "
            "From: headers; RFC 5322 allows one", m->from_fields);
        return NULL;
    }
    return pol_addr_domain(m->from[0]);
}

enum pol_status
pol_dkim_eoh(struct pol_msg *m, struct pol_verdict *v)
{
    const struct pol_config *cfg = m->cfg;
    const struct pol_dkim_rule *r;
    const char *dom;
    enum pol_status st;

    if (!cfg->dkim.enabled || cfg->dkim.lib == NULL) {
        m->dkim_result = "disabled";
        return POL_OK;
    }
    if ((dom = from_domain(m, cfg, v)) == NULL)
        return POL_OK;
    if ((r = pol_dkim_match(cfg, dom)) == NULL) {
        enum pol_action a = (enum pol_action)cfg->dkim.on_no_key;
        m->dkim_result = "no_key";
        pol_verdict_set(v, a, "dkim", "%sNo DKIM key for %s; add one to "
            "dkim.signing", a == POL_REJECT ? "550 5.7.1 " : "", dom);
        return POL_OK;
    }
    for (int i = 0; i < r->nkeys; i++) {
        if (already_signed(m, r->keys[i]))
            continue;
        if ((st = start_signer(m, r->keys[i])) != POL_OK)
            return st;
    }
    m->dkim_result = m->nsigners > 0 ? "signed" : "already_signed";
    return POL_OK;
}

enum pol_status
pol_dkim_body(struct pol_msg *m, const unsigned char *p, size_t n)
{
    for (int i = 0; i < m->nsigners; i++) {
        DKIM_STAT st = dkim_body(m->signers[i], (u_char *)p, n);
        if (st != DKIM_STAT_OK) {
            pol_msg_seterr(m, "451 4.3.0 DKIM: %s",
                dkim_geterror(m->signers[i]));
            return POL_ETEMP;
        }
    }
    return POL_OK;
}

/* finish_one - the DKIM-Signature value of signer i, CRs removed */
static enum pol_status
finish_one(struct pol_msg *m, int i, const char **value)
{
    DKIM *d = m->signers[i];
    u_char *sig = NULL;
    size_t len = 0, o = 0;
    char *out;

    if (dkim_eom(d, NULL) != DKIM_STAT_OK
        || dkim_getsighdr_d(d, strlen(SIG_HEADER) + 2, &sig, &len)
            != DKIM_STAT_OK) {
        pol_msg_seterr(m, "451 4.3.0 DKIM: %s", dkim_geterror(d));
        return POL_ETEMP;
    }
    if ((out = pol_arena_alloc(m->arena, len + 2)) == NULL) {
        pol_msg_seterr(m, "451 4.3.0 out of memory");
        return POL_ETEMP;
    }
    if (m->client.hdr_leadspc)
        out[o++] = ' ';
    for (size_t j = 0; j < len; j++)
        if (sig[j] != '\r')
            out[o++] = (char)sig[j];
    out[o] = '\0';
    *value = out;
    return POL_OK;
}

enum pol_status
pol_dkim_eom(struct pol_msg *m)
{
    enum pol_status st;
    const char *value;

    for (int i = 0; i < m->nsigners; i++) {
        if ((st = finish_one(m, i, &value)) != POL_OK)
            return st;
        if (m->cfg->mode == POL_MODE_ENFORCE
            && (st = pol_msg_add_edit(m, POL_EDIT_INSERT, SIG_HEADER, value,
                    0)) != POL_OK)
            return st;
        m->signed_count++;
    }
    return POL_OK;
}

void
pol_dkim_free(struct pol_msg *m)
{
    for (int i = 0; i < m->nsigners; i++)
        dkim_free(m->signers[i]);
    m->nsigners = 0;
}
