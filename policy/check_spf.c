/*
 * policy/check_spf.c - does SPF authorise our egress for this sender?
 *
 * Runs at end of headers (after the DKIM key choice, before DMARC).  The
 * MAIL FROM domain (egress.helo_name for the null sender) is evaluated
 * for every egress.ips address and must reach every egress.spf_includes
 * domain; the worst result, by configured action, decides.  Replies say
 * what to publish.  Thread-safe.
 * Licence: BSD-2-Clause.
 */
#include <stdio.h>

#include "msg.h"

/* reply_code - SMTP reply and enhanced code for an SPF verdict */
static const char *
reply_code(enum pol_action a, enum pol_spf_result r)
{
    if (a == POL_TEMPFAIL)
        return "451 4.7.24 ";
    if (a != POL_REJECT)
        return "";
    return r == POL_SPF_FAIL || r == POL_SPF_SOFTFAIL ? "550 5.7.23 "
                                                      : "550 5.7.24 ";
}

static enum pol_status
spf_eval(struct pol_msg *m, const struct pol_config *cfg,
    struct pol_verdict *v)
{
    struct pol_spf_outcome *o = &m->spf;
    enum pol_action a;

    if (!cfg->spf.enabled) {
        m->spf_status = "disabled";
        return POL_OK;
    }
    if (cfg->egress.ips.n == 0 && cfg->egress.spf_includes.n == 0) {
        m->spf_status = "not_configured";
        return POL_OK;
    }
    if (cfg->dns.resolver == NULL || (*m->sender == '\0'
            && *cfg->egress.helo_name == '\0')) {
        m->spf_status = cfg->dns.resolver == NULL ? "no_resolver"
                                                  : "null_sender";
        return POL_OK;
    }
    pol_spf_check(cfg, m->arena, m->sender, o);
    m->spf_status = "checked";
    a = (enum pol_action)cfg->spf.on[o->overall];
    if (a == POL_ACCEPT)
        return POL_OK;
    if (o->overall == POL_SPF_FAIL && !o->reason[0])
        snprintf(o->reason, sizeof(o->reason), "fail");
    pol_verdict_set(v, a, "spf", "%sSPF %s for %s: %s", reply_code(a,
        o->overall), pol_spf_result_name(o->overall), o->domain, o->reason);
    return POL_OK;
}

const struct pol_check pol_check_spf = {
    "spf", POL_AT_EOH, spf_eval,
};
