/*
 * policy/tlsmap.c - the TLS policy map outpolicyd serves to Postfix's
 * smtp_tls_policy_maps (socketmap_table(5)): netstrings in and out, one
 * answer per next-hop, always from memory.
 *
 * Matching: the exact next-hop as Postfix writes it ("example.com",
 * "[smtp.exmail.qq.com]:465"), then for a domain its parents as
 * ".parent" rules (".example.com" matches every subdomain); otherwise the
 * default policy.  A routine miss is never TEMP: an unknown destination
 * gets the default.  Pure functions over a read-only config: thread-safe.
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "tlsmap.h"

#define MAP_NAME "tlspolicy"

/* ---- netstrings (http://cr.yp.to/proto/netstrings.txt) ---- */

int
pol_netstring_parse(const char *buf, size_t len, size_t max,
    const char **data, size_t *dlen, size_t *used)
{
    size_t n = 0, i = 0;

    while (i < len && isdigit((unsigned char)buf[i])) {
        if (i == 0 && buf[0] == '0' && i + 1 < len
            && isdigit((unsigned char)buf[1]))
            return -1; /* leading zeros */
        n = n * 10 + (size_t)(buf[i] - '0');
        if (n > max)
            return -1;
        i++;
    }
    if (i == len)
        return i > 10 ? -1 : 0; /* need more */
    if (i == 0 || buf[i] != ':')
        return -1;
    if (len < i + 1 + n + 1)
        return 0;
    if (buf[i + 1 + n] != ',')
        return -1;
    *data = buf + i + 1;
    *dlen = n;
    *used = i + 1 + n + 1;
    return 1;
}

size_t
pol_netstring_format(char *out, size_t outlen, const char *data)
{
    int n = snprintf(out, outlen, "%zu:%s,", strlen(data), data);

    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

/* ---- the rules ---- */

/* valid_policy - a Postfix TLS security level, then name=value attrs */
static const char *
valid_policy(const char *p)
{
    static const char *const levels[] = { "none", "may", "encrypt", "dane",
        "dane-only", "fingerprint", "verify", "secure", NULL };
    char buf[512], *save = NULL, *tok;
    bool ok = false;

    if (strlen(p) >= sizeof(buf))
        return "too long";
    snprintf(buf, sizeof(buf), "%s", p);
    if ((tok = strtok_r(buf, " \t", &save)) == NULL)
        return "empty";
    for (const char *const *l = levels; *l; l++)
        ok = ok || strcmp(tok, *l) == 0;
    if (!ok)
        return "does not start with a Postfix TLS security level (may, "
               "encrypt, dane, dane-only, fingerprint, verify, secure, none)";
    while ((tok = strtok_r(NULL, " \t", &save)) != NULL)
        if (strchr(tok, '=') == NULL || tok[0] == '=')
            return "attributes are name=value (e.g. protocols=>=TLSv1.2)";
    return NULL;
}

/* valid_match - "domain", ".domain", "[host]", "[host]:port", "host:port" */
static bool
valid_match(const char *m)
{
    if (*m == '\0' || strlen(m) > 300)
        return false;
    for (const char *c = m; *c; c++)
        if (isspace((unsigned char)*c) || *c == ',' || (unsigned char)*c < 32)
            return false;
    return true;
}

int
pol_tlsmap_parse_rules(const config_setting_t *s, struct pol_config *cfg,
    struct pol_err *err)
{
    int n;

    if (s == NULL)
        return 0;
    if (!config_setting_is_list(s)) {
        pol_cf_error(err, s, "tls_policy.destinations", "must be a list: "
            "( { match = \"example.com\"; policy = \"may\"; } );");
        return -1;
    }
    n = config_setting_length(s);
    if (n > 0 && (cfg->tls_policy.rules = calloc((size_t)n,
                      sizeof(*cfg->tls_policy.rules))) == NULL) {
        pol_cf_error(err, s, "tls_policy.destinations", "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, i);
        const char *match, *policy, *why;
        struct pol_tls_rule *r = &cfg->tls_policy.rules[i];
        if (!config_setting_is_group(e)
            || config_setting_lookup_string(e, "match", &match) != CONFIG_TRUE
            || config_setting_lookup_string(e, "policy", &policy)
                != CONFIG_TRUE || config_setting_length(e) != 2) {
            pol_cf_error(err, e, "tls_policy.destinations", "each entry is "
                "{ match = \"...\"; policy = \"...\"; }");
            return -1;
        }
        if (!valid_match(match) || (why = valid_policy(policy)) != NULL) {
            pol_cf_error(err, e, "tls_policy.destinations", "%s: %s",
                valid_match(match) ? policy : match, valid_match(match)
                    ? why : "not a next-hop (domain, .domain, [host]:port)");
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (strcasecmp(cfg->tls_policy.rules[j].match, match) == 0) {
                pol_cf_error(err, e, "tls_policy.destinations", "match = "
                    "\"%s\" is listed twice (first at line %d)", match,
                    cfg->tls_policy.rules[j].line);
                return -1;
            }
        if ((r->match = strdup(match)) == NULL
            || (r->policy = strdup(policy)) == NULL) {
            pol_cf_error(err, e, "tls_policy.destinations", "out of memory");
            return -1;
        }
        r->line = (int)config_setting_source_line(e);
        cfg->tls_policy.nrules = (size_t)i + 1;
    }
    return 0;
}

const char *
pol_tlsmap_check_default(const char *policy)
{
    return valid_policy(policy);
}

void
pol_tlsmap_unconfigure(struct pol_config *cfg)
{
    for (size_t i = 0; i < cfg->tls_policy.nrules; i++) {
        free(cfg->tls_policy.rules[i].match);
        free(cfg->tls_policy.rules[i].policy);
    }
    free(cfg->tls_policy.rules);
}

/* find - the rule for key, exact (case-insensitive) */
static const struct pol_tls_rule *
find(const struct pol_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->tls_policy.nrules; i++)
        if (strcasecmp(cfg->tls_policy.rules[i].match, key) == 0)
            return &cfg->tls_policy.rules[i];
    return NULL;
}

const char *
pol_tlsmap_decide(const struct pol_config *cfg, const char *nexthop,
    const char **rule)
{
    const struct pol_tls_rule *r = find(cfg, nexthop);

    /* a plain domain: its parents as ".parent" rules, nearest first */
    if (r == NULL && nexthop[0] != '[' && strchr(nexthop, ':') == NULL)
        for (const char *d = strchr(nexthop, '.'); d && r == NULL;
             d = strchr(d + 1, '.'))
            r = find(cfg, d);
    if (r == NULL) {
        *rule = "default";
        return cfg->tls_policy.deflt;
    }
    *rule = r->match;
    return r->policy;
}

/* tls_event - one tls_policy event line */
static void
tls_event(const struct pol_config *cfg, const char *key, const char *policy,
    const char *rule)
{
    struct pol_json j;
    char ts[64];

    if (!cfg->tls_policy.events)
        return;
    pol_event_timestamp(cfg, ts, sizeof(ts));
    pol_json_init(&j);
    pol_event_open(&j, ts, "tls_policy", "success");
    pol_json_obj_begin(&j, "destination");
    pol_json_str(&j, "address", key);
    pol_json_obj_end(&j);
    pol_json_obj_begin(&j, "outpolicy");
    pol_json_int(&j, "schema", POL_SCHEMA_VERSION);
    pol_json_obj_begin(&j, "tls_policy");
    pol_json_str(&j, "nexthop", key);
    pol_json_str(&j, "policy", policy);
    pol_json_str(&j, "rule", rule);
    pol_json_obj_end(&j);
    pol_json_obj_end(&j);
    pol_json_obj_end(&j);
    if (!j.oom)
        pol_events_write(cfg, j.buf, j.len);
    pol_json_free(&j);
}

/* key_ok - a next-hop: no white space or control characters (nothing to
 * forge a log line or a policy with); UTF-8 (an IDN) passes */
static bool
key_ok(const char *k, size_t n)
{
    const unsigned char *s = (const unsigned char *)k;

    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        size_t want;
        if (s[i] <= 0x20 || s[i] == 0x7f)
            return false;
        if (s[i] < 0x80)
            continue;
        if (s[i] < 0xc2 || s[i] > 0xf4) /* not a UTF-8 lead byte */
            return false;
        want = s[i] >= 0xf0 ? 3 : s[i] >= 0xe0 ? 2 : 1;
        for (; want > 0; want--)
            if (++i >= n || (s[i] & 0xc0) != 0x80)
                return false;
    }
    return true;
}

size_t
pol_tlsmap_answer(const struct pol_config *cfg, const char *req, size_t len,
    char *out, size_t outlen)
{
    char reply[600], key[400];
    const char *policy, *rule;
    size_t nl = strlen(MAP_NAME);

    if (len < nl + 1 || strncmp(req, MAP_NAME " ", nl + 1) != 0)
        snprintf(reply, sizeof(reply), "PERM unknown map (this socket "
            "serves \"%s\")", MAP_NAME);
    else if (len - nl - 1 >= sizeof(key) || !key_ok(req + nl + 1,
                 len - nl - 1))
        snprintf(reply, sizeof(reply), "PERM invalid or over-long key");
    else {
        memcpy(key, req + nl + 1, len - nl - 1);
        key[len - nl - 1] = '\0';
        policy = pol_tlsmap_decide(cfg, key, &rule);
        snprintf(reply, sizeof(reply), "OK %s", policy);
        pol_log(cfg, POL_LOG_INFO, "tls-policy nexthop=%s policy=\"%s\" "
            "rule=%s", key, policy, rule);
        tls_event(cfg, key, policy, rule);
    }
    return pol_netstring_format(out, outlen, reply);
}
