/*
 * policy/check_tls_required.c - RFC 8689 "TLS-Required: No".
 *
 * The field asks relays to deliver even without TLS.  Outbound policy
 * says every delivery leg uses TLS 1.2+, so by default the field is
 * removed, except for senders an admin allows to relax TLS.  Logged
 * either way; in monitor mode nothing is removed.  Thread-safe.
 * Licence: BSD-2-Clause.
 */
#include "msg.h"

#define TLS_REQUIRED "TLS-Required"

static enum pol_status
tls_required_eval(struct pol_msg *m, const struct pol_config *cfg,
    struct pol_verdict *v)
{
    const char *why;

    if (m->tls_required_fields == 0) {
        m->tls_required = "absent";
        return POL_OK;
    }
    m->tls_required = "kept";
    if (!cfg->tls_required.strip)
        why = "tls_required.strip is false";
    else if (pol_senderlist_match(&cfg->tls_required.keep_for_senders,
                 m->sender))
        why = "sender in tls_required.keep_for_senders";
    else if (cfg->mode == POL_MODE_MONITOR)
        why = "monitor mode";
    else {
        /* delete from the last occurrence so indexes stay valid */
        for (int i = m->tls_required_fields; i >= 1; i--)
            if (pol_msg_add_edit(m, POL_EDIT_DELETE, TLS_REQUIRED, NULL, i)
                != POL_OK)
                return POL_ETEMP;
        m->tls_required = "removed";
        why = "outbound TLS policy";
    }
    pol_log(cfg, POL_LOG_NOTICE, "%s: tls-required %s fields=%d from=<%s> "
        "reason=\"%s\"", *m->queue_id ? m->queue_id : "NOQUEUE",
        m->tls_required, m->tls_required_fields, m->sender, why);
    (void)v;
    return POL_OK;
}

const struct pol_check pol_check_tls_required = {
    "tls_required", POL_AT_EOM, tls_required_eval,
};
