/*
 * ctl/outpolicyctl.c - outpolicy's admin tool.
 *
 * Commands:
 *   check-config [FILE]   validate a configuration, as outpolicyd -n does
 * Licence: BSD-2-Clause.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "policy/policy.h"

#define DEFAULT_CONF "/etc/outpolicy/outpolicy.conf"

static void
usage(FILE *out)
{
    fprintf(out,
        "usage: outpolicyctl COMMAND [ARGS]\n"
        "commands:\n"
        "  check-config [FILE]   validate FILE (default %s);\n"
        "                        exit 0 when valid, 1 when not\n"
        "  version               print the version\n", DEFAULT_CONF);
}

/* cmd_check_config - load and validate, print FILE:LINE on error */
static int
cmd_check_config(int argc, char **argv)
{
    const char *file = argc > 1 ? argv[1] : DEFAULT_CONF;
    struct pol_err err = { "" };
    struct pol_config *cfg;

    if (argc > 2) {
        usage(stderr);
        return EX_USAGE;
    }
    if ((cfg = pol_config_load(file, NULL, &err)) == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("%s: configuration OK\n", file);
    pol_config_unref(cfg);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    if (strcmp(argv[1], "check-config") == 0)
        return cmd_check_config(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("outpolicyctl %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "outpolicyctl: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return EX_USAGE;
}
