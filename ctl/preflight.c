/*
 * ctl/preflight.c - outpolicyctl preflight: the SPF, alignment and DMARC
 * checks of the engine for a message not yet sent, printed as one JSON
 * object.  Uses the configured DNS servers; writes no events.
 * Licence: BSD-2-Clause.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl/ctl.h"
#include "policy/policy.h"

int
ctl_preflight(int argc, char **argv)
{
    static const struct option lopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "mail-from", required_argument, NULL, 'm' },
        { "from", required_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 },
    };
    const char *conf = CTL_DEFAULT_CONF, *mail_from = NULL, *from = NULL;
    struct pol_client cl = { .addr = "127.0.0.1", .tls_version = "TLSv1.3" };
    struct pol_err err = { "" };
    struct pol_config *cfg;
    struct pol_verdict v;
    struct pol_msg *m;
    char *json;
    int ch, rc = 1;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:m:f:", lopts, NULL)) != -1) {
        switch (ch) {
        case 'c': conf = optarg; break;
        case 'm': mail_from = optarg; break;
        case 'f': from = optarg; break;
        default: return EX_USAGE;
        }
    }
    if (mail_from == NULL || from == NULL || optind != argc) {
        fprintf(stderr, "usage: outpolicyctl preflight [-c CONFIG] "
            "--mail-from ADDR --from ADDR\n");
        return EX_USAGE;
    }
    if ((cfg = pol_config_load(conf, &ctl_hooks, &err)) == NULL) {
        fprintf(stderr, "preflight: %s\n", err.msg);
        return 1;
    }
    pol_config_quiet(cfg);
    if (pol_config_activate(cfg, &err) != POL_OK) {
        fprintf(stderr, "preflight: %s\n", err.msg);
        pol_config_unref(cfg);
        return 1;
    }
    if ((m = pol_msg_new(cfg, &cl, "", "")) != NULL) {
        pol_msg_set_outbound(m, mail_from);
        if (pol_msg_header(m, "From", from) == POL_OK
            && pol_msg_eoh(m, &v) == POL_OK
            && (json = pol_msg_preflight_json(m, &v)) != NULL) {
            printf("%s\n", json);
            free(json);
            rc = v.action == POL_ACCEPT ? 0 : v.action == POL_WARN ? 1 : 2;
        } else
            fprintf(stderr, "preflight: %s\n", pol_msg_error(m));
        pol_msg_free(m);
    }
    pol_config_unref(cfg);
    return rc;
}
