/*
 * policy/check_dmarc.c - DMARC pre-flight: will the receiver see DMARC
 * pass?  pass = (SPF passes for every egress AND the SPF domain aligns
 * with From) OR (a DKIM key we sign with aligns with From).
 *
 * Runs at end of headers after the SPF check and the DKIM key choice.
 * A predicted fail under p=quarantine/reject gets dmarc.on_predicted_fail;
 * under p=none it is a warning.  Thread-safe.
 * Licence: BSD-2-Clause.
 */
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "msg.h"

/* spf_passes - every egress item passed */
static bool
spf_passes(const struct pol_spf_outcome *o)
{
    if (o->n == 0)
        return false;
    for (int i = 0; i < o->n; i++)
        if (o->item[i].result != POL_SPF_PASS)
            return false;
    return true;
}

/* dkim_aligned - a signature we add (or already present, ours) aligns */
static bool
dkim_aligned(const struct pol_msg *m, const struct pol_config *cfg,
    const char *from, bool strict)
{
    const struct pol_dkim_rule *r;

    for (int i = 0; i < m->nsigners; i++)
        if (pol_aligned(cfg, m->signer_keys[i]->domain, from, strict))
            return true;
    if (strcmp(m->dkim_result, "already_signed") != 0
        || (r = pol_dkim_match(cfg, from)) == NULL)
        return false;
    for (int i = 0; i < r->nkeys; i++)
        if (pol_aligned(cfg, r->keys[i]->domain, from, strict))
            return true;
    return false;
}

/* explain - why DMARC would fail, and what would fix it */
static void
explain(const struct pol_msg *m, const char *from, char *out, size_t len)
{
    const char *spf = pol_spf_result_name(m->spf.overall);

    if (m->spf.n == 0)
        snprintf(out, len, "SPF for egress not checked and no aligned DKIM "
            "key for %s; add a dkim.signing rule for it", from);
    else if (spf_passes(&m->spf))
        snprintf(out, len, "SPF passes for %s but is not aligned with "
            "From %s, and no aligned DKIM key; sign with a key for %s",
            m->spf.domain, from, from);
    else
        snprintf(out, len, "SPF %s for %s and no aligned DKIM key for %s; "
            "add a dkim.signing rule for %s", spf, m->spf.domain, from, from);
}

static enum pol_status
dmarc_eval(struct pol_msg *m, const struct pol_config *cfg,
    struct pol_verdict *v)
{
    const char *from;
    char why[200] = "", expl[300];
    int policy, found;
    enum pol_action a;

    if (!cfg->dmarc.enabled || cfg->dns.resolver == NULL || m->nfrom <= 0) {
        m->dmarc.status = "skipped";
        return POL_OK;
    }
    from = pol_addr_domain(m->from[0]);
    if (m->spf.n > 0 && m->spf.overall == POL_SPF_TEMPERROR) {
        /* DNS just failed for this message: one timeout is enough */
        found = -1;
        snprintf(why, sizeof(why), "DNS failed for the SPF check");
    } else
        found = pol_dmarc_lookup(cfg, from, &m->dmarc.rec, &m->dmarc.at,
            &m->dmarc.subdomain, why, sizeof(why));
    if (found < 0) {
        m->dmarc.status = "temperror";
        a = (enum pol_action)cfg->dmarc.on_temperror;
        pol_verdict_set(v, a, "dmarc", "%sDMARC policy of %s unknown: %s",
            a == POL_TEMPFAIL ? "451 4.7.0 " : a == POL_REJECT
                ? "550 5.7.1 " : "", from, why);
        return POL_OK;
    }
    m->dmarc.spf_aligned = spf_passes(&m->spf) && pol_aligned(cfg,
        m->spf.domain, from, m->dmarc.rec.aspf_strict);
    m->dmarc.dkim_aligned = dkim_aligned(m, cfg, from,
        m->dmarc.rec.adkim_strict);
    if (found == 0) {
        m->dmarc.status = "none";
        return POL_OK;
    }
    m->dmarc.status = "found";
    m->dmarc.predicted = m->dmarc.spf_aligned || m->dmarc.dkim_aligned
        ? "pass" : "fail";
    if (strcmp(m->dmarc.predicted, "pass") == 0)
        return POL_OK;
    policy = m->dmarc.subdomain ? m->dmarc.rec.sp : m->dmarc.rec.p;
    a = policy == POL_DMARC_NONE ? POL_WARN
                                 : (enum pol_action)cfg->dmarc.on_predicted_fail;
    explain(m, from, expl, sizeof(expl));
    pol_verdict_set(v, a, "dmarc", "%sDMARC would fail at the receiver for "
        "From %s (p=%s at %s): %s", a == POL_REJECT ? "550 5.7.1 "
            : a == POL_TEMPFAIL ? "451 4.7.1 " : "", from,
        pol_dmarc_policy_name(policy), m->dmarc.at, expl);
    return POL_OK;
}

const struct pol_check pol_check_dmarc = {
    "dmarc", POL_AT_EOH, dmarc_eval,
};
