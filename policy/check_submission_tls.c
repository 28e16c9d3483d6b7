/*
 * policy/check_submission_tls.c - TLS protocol floor on the submission
 * leg (client -> gateway), from the MTA's {tls_version} macro.
 *
 * Runs at MAIL FROM.  A session without TLS is below any minimum; a
 * version string we do not recognise is treated as below the minimum
 * (fail closed) and named in the reply.  Thread-safe.
 * Licence: BSD-2-Clause.
 */
#include <stdio.h>

#include "msg.h"

/* version_name - "TLSv1.2" for 0x0303 */
static const char *
version_name(int v, char *buf, size_t len)
{
    if (v == 0x0301)
        snprintf(buf, len, "TLSv1");
    else
        snprintf(buf, len, "TLSv1.%d", v - 0x0301);
    return buf;
}

static enum pol_status
submission_tls_eval(struct pol_msg *m, const struct pol_config *cfg,
    struct pol_verdict *v)
{
    int min = cfg->submission_tls.min_version;
    int have = pol_tls_version_parse(m->client.tls_version);
    enum pol_action action = (enum pol_action)cfg->submission_tls.action;
    const char *code = action == POL_REJECT ? "530 5.7.0 "
        : action == POL_TEMPFAIL ? "450 4.7.0 " : "";
    char want[24], got[64];

    if (min == POL_TLS_MIN_NONE || have >= min)
        return POL_OK;
    if (pol_addrlist_match(cfg->submission_tls.exempt_hosts, m->client.addr))
        return POL_OK;
    if (have == 0)
        snprintf(got, sizeof(got), "no TLS; use STARTTLS");
    else if (have < 0)
        snprintf(got, sizeof(got), "unrecognised TLS version \"%.32s\"",
            m->client.tls_version);
    else
        snprintf(got, sizeof(got), "%.32s", m->client.tls_version);
    pol_verdict_set(v, action, "submission_tls",
        "%sOutbound mail must be submitted over %s or newer "
        "(this session: %s)", code, version_name(min, want, sizeof(want)),
        got);
    return POL_OK;
}

const struct pol_check pol_check_submission_tls = {
    "submission_tls", POL_AT_ENVFROM, submission_tls_eval,
};
