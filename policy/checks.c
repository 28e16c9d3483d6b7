/*
 * policy/checks.c - the check registry and the stage dispatcher.
 * Adding a check: write check_<name>.c with a const struct pol_check,
 * declare it here and list it in pol_checks.  Thread-safe (read-only).
 * Licence: BSD-2-Clause.
 */
#include "msg.h"

extern const struct pol_check pol_check_submission_tls;
extern const struct pol_check pol_check_tls_required;
extern const struct pol_check pol_check_spf;
extern const struct pol_check pol_check_dmarc;

/* in order: DMARC needs the SPF outcome of the same stage */
const struct pol_check *const pol_checks[] = {
    &pol_check_submission_tls,
    &pol_check_spf,
    &pol_check_dmarc,
    &pol_check_tls_required,
    NULL,
};

enum pol_status
pol_engine_run(struct pol_msg *m, enum pol_stage stage,
    struct pol_verdict *v)
{
    for (const struct pol_check *const *c = pol_checks; *c; c++) {
        enum pol_status st;

        if ((*c)->stage != stage)
            continue;
        if ((st = (*c)->eval(m, m->cfg, v)) != POL_OK)
            return st;
    }
    return POL_OK;
}
