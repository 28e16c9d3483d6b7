/*
 * ctl/outpolicyctl.c - outpolicy's admin tool: command dispatch and
 * check-config.
 * Licence: BSD-2-Clause.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "ctl/ctl.h"
#include "policy/policy.h"

static void
usage(FILE *out)
{
    fprintf(out,
        "usage: outpolicyctl COMMAND [ARGS]\n"
        "commands:\n"
        "  check-config [[-c] FILE]\n"
        "                         validate FILE (default %s);\n"
        "                         exit 0 when valid, 1 when not\n"
        "  keygen --domain D --selector S [--algorithm rsa|ed25519]\n"
        "         [--bits N] [--out FILE]\n"
        "                         write a DKIM private key (mode 0600) and\n"
        "                         print the TXT record to publish\n"
        "  dkim-sign (-c CONFIG | --key FILE --selector S --domain D\n"
        "         [--algorithm rsa-sha256|ed25519-sha256]) [--timestamp T]\n"
        "         [MESSAGE|-]     print the message with the signature(s)\n"
        "                         the milter would add\n"
        "  preflight [-c CONFIG] --mail-from ADDR --from ADDR\n"
        "                         SPF for every egress, alignment and the\n"
        "                         predicted DMARC result, as JSON; exit 0\n"
        "                         accept, 1 warn, 2 refuse\n"
        "  arc-verify [--zone FILE] [MESSAGE|-]\n"
        "                         validate the ARC chain; prints JSON\n"
        "  arc-seal --key FILE --selector S --domain D --authserv-id ID\n"
        "         [--algorithm A] [--headers h1:h2] [--timestamp T]\n"
        "         [--zone FILE] [--standardize] [MESSAGE|-]\n"
        "                         print the message with a new ARC set\n"
        "  trace [--events FILE]... [--follow | --summary [--json]]\n"
        "         [--since T] [--until T] [POSTFIX-LOG|-]\n"
        "                         delivery events joined with outpolicy's\n"
        "                         events, or a summary per domain\n"
        "  check-domain DOMAIN [-c CONFIG] [--json] [--provider exmail|none]\n"
        "                         MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT,\n"
        "                         DNSSEC and TTLs, with the records to publish;\n"
        "                         exit 0 OK, 1 warnings, 2 failures, 3 DNS\n"
        "  version                print the version\n", CTL_DEFAULT_CONF);
}

/* hook_log - engine warnings (weak keys ...) to stderr */
static void
hook_log(void *arg, enum pol_prio prio, const char *line)
{
    (void)arg;
    if (prio <= POL_LOG_WARNING)
        fprintf(stderr, "outpolicyctl: %s\n", line);
}

const struct pol_hooks ctl_hooks = { hook_log, NULL, NULL, NULL };

int
ctl_check_config(int argc, char **argv)
{
    const char *file = CTL_DEFAULT_CONF;
    struct pol_err err = { "" };
    struct pol_config *cfg;

    /* "-c FILE" as in the other commands, or FILE alone */
    if (argc > 1 && strcmp(argv[1], "-c") == 0) {
        argc--;
        argv++;
        if (argc < 2) {
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (argc > 1)
        file = argv[1];
    if (argc > 2) {
        usage(stderr);
        return EX_USAGE;
    }
    if ((cfg = pol_config_load(file, &ctl_hooks, &err)) == NULL) {
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
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        { "check-config", ctl_check_config },
        { "keygen", ctl_keygen },
        { "dkim-sign", ctl_dkim_sign },
        { "preflight", ctl_preflight },
        { "arc-verify", ctl_arc_verify },
        { "arc-seal", ctl_arc_seal },
        { "trace", ctl_trace },
        { "check-domain", ctl_check_domain },
    };

    if (argc < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("outpolicyctl %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "outpolicyctl: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return EX_USAGE;
}
