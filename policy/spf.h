/*
 * policy/spf.h - SPF egress authorisation (spf.c) and DMARC pre-flight
 * (dmarc.c).  Internal to libpolicy.
 * Licence: BSD-2-Clause.
 */
#ifndef POL_SPF_H
#define POL_SPF_H

#include "internal.h"

enum pol_spf_result {
    POL_SPF_NONE = 0, POL_SPF_NEUTRAL, POL_SPF_PASS, POL_SPF_FAIL,
    POL_SPF_SOFTFAIL, POL_SPF_TEMPERROR, POL_SPF_PERMERROR,
    POL_SPF_RESULT_COUNT,
};
const char *pol_spf_result_name(enum pol_spf_result r);

#define POL_SPF_MAX_EGRESS 16
#define POL_SPF_MAX_LOOKUPS 10 /* RFC 7208 4.6.4 */

/** Outcome of the egress checks for one domain. */
struct pol_spf_outcome {
    const char *domain; /* checked domain (MAIL FROM or HELO) */
    int n;
    struct {
        const char *egress; /* IP, or the include domain */
        bool is_include;
        enum pol_spf_result result;
        int lookups;        /* includes: DNS-querying terms walked */
    } item[POL_SPF_MAX_EGRESS];
    enum pol_spf_result overall; /* the one that decides the action */
    char reason[200];
};

struct pol_spf;
struct pol_dns;
/** Per-config SPF state: libspf2 server on our resolver, result cache. */
struct pol_spf *pol_spf_new(struct pol_dns *dns, struct pol_err *err);
void pol_spf_free(struct pol_spf *s);

/**
 * Check the MAIL FROM sender's domain (egress.helo_name for the null
 * sender) against every egress IP and required include of cfg.
 */
void pol_spf_check(const struct pol_config *cfg, struct pol_arena *a,
    const char *sender, struct pol_spf_outcome *out);

/** Evaluate one IP for MAIL FROM sender (HELO helo if sender is empty). */
enum pol_spf_result pol_spf_eval(struct pol_spf *s, const char *ip,
    const char *sender, const char *helo, char *why, size_t whylen);

/** Does domain's policy reach include inc? (one-item outcome) */
void pol_spf_check_include(const struct pol_config *cfg, const char *domain,
    const char *inc, struct pol_spf_outcome *out);
/** 0 when record compiles (libspf2), else -1 with why. */
int pol_spf_syntax(struct pol_spf *s, const char *record, char *why,
    size_t whylen);
/** DNS-querying terms and void look-ups of a domain's SPF tree. */
void pol_spf_count(const struct pol_config *cfg, const char *domain,
    int *lookups, int *voids, bool *temp);

/* ---- dmarc.c ---- */
struct pol_dmarc_record {
    int p, sp;     /* POL_DMARC_NONE / QUARANTINE / REJECT */
    bool has_sp;
    bool adkim_strict, aspf_strict;
    int pct;
    char rua[256];
};
enum { POL_DMARC_NONE = 0, POL_DMARC_QUARANTINE, POL_DMARC_REJECT };
const char *pol_dmarc_policy_name(int p);

/**
 * Parse a DMARC TXT record (RFC 7489 6.3).  0 on success, -1 with why
 * when it is not a usable DMARC record.
 */
int pol_dmarc_parse(const char *txt, struct pol_dmarc_record *r, char *why,
    size_t whylen);

/**
 * The DMARC policy for a From domain: _dmarc.DOMAIN, else _dmarc.ORG with
 * subdomain = true (sp= applies).  at = where it was found.
 * @return 1 found, 0 no policy, -1 DNS temporary failure.
 */
int pol_dmarc_lookup(const struct pol_config *cfg, const char *from_domain,
    struct pol_dmarc_record *r, const char **at, bool *subdomain, char *why,
    size_t whylen);

struct pol_dmarc_cache;
struct pol_dmarc_cache *pol_dmarc_cache_new(void);
void pol_dmarc_cache_free(struct pol_dmarc_cache *c);

/** Organizational domain (PSL); "" when domain is a public suffix. */
const char *pol_org_domain(const struct pol_config *cfg, const char *domain);

/** Relaxed or strict identifier alignment (RFC 7489 3.1). */
bool pol_aligned(const struct pol_config *cfg, const char *a, const char *b,
    bool strict);

#endif
