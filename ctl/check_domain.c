/*
 * ctl/check_domain.c - outpolicyctl check-domain DOMAIN: the DNS a
 * sending domain needs, diagnosed against the config (policy/
 * checkdomain.c does the work).
 * Licence: BSD-2-Clause.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "ctl/ctl.h"
#include "policy/policy.h"

int
ctl_check_domain(int argc, char **argv)
{
    static const struct option lopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "provider", required_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 },
    };
    const char *conf = CTL_DEFAULT_CONF, *provider = NULL;
    struct pol_err err = { "" };
    struct pol_config *cfg;
    bool json = false;
    int ch, rc;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:jp:", lopts, NULL)) != -1) {
        switch (ch) {
        case 'c': conf = optarg; break;
        case 'j': json = true; break;
        case 'p':
            if (strcmp(optarg, "exmail") != 0 && strcmp(optarg, "none") != 0) {
                fprintf(stderr, "check-domain: --provider is exmail or "
                    "none\n");
                return EX_USAGE;
            }
            provider = strcmp(optarg, "none") ? optarg : NULL;
            break;
        default: return EX_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: outpolicyctl check-domain DOMAIN [-c CONFIG] "
            "[--json] [--provider exmail|none]\n");
        return EX_USAGE;
    }
    if ((cfg = pol_config_load(conf, &ctl_hooks, &err)) == NULL) {
        fprintf(stderr, "check-domain: %s\n", err.msg);
        return 3;
    }
    pol_config_quiet(cfg);
    if (pol_config_activate(cfg, &err) != POL_OK) {
        fprintf(stderr, "check-domain: %s\n", err.msg);
        pol_config_unref(cfg);
        return 3;
    }
    rc = pol_check_domain(cfg, argv[optind], provider, json, stdout);
    pol_config_unref(cfg);
    return rc;
}
