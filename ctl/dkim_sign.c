/*
 * ctl/dkim_sign.c - outpolicyctl dkim-sign: sign one message through the
 * same engine path the milter uses (headers, end of headers, body chunks,
 * end of message) and print it with the fields the milter would insert.
 *
 * Input is a message file or stdin (copied to a temporary file), LF or
 * CRLF line ends; it is read twice (sign, then print), never held whole
 * in memory.
 * Licence: BSD-2-Clause.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "ctl/ctl.h"
#include "policy/policy.h"

struct sign_opts {
    const char *conf, *key, *sel, *dom, *alg, *msg;
    long long ts;
};

/* load_config - from -c, or one key given on the command line */
static struct pol_config *
load_config(const struct sign_opts *o, struct pol_err *err)
{
    struct pol_hooks hooks = ctl_hooks;
    char text[2048];

    ctl_fix_clock(&hooks, o->ts);
    if (o->conf != NULL)
        return pol_config_load(o->conf, &hooks, err);
    snprintf(text, sizeof(text),
        "keys = ( { id = \"cli\"; domain = \"%s\"; selector = \"%s\"; "
        "file = \"%s\"; algorithm = \"%s\"; } );\n"
        "dkim = { on_no_key = \"reject\"; signing = ( "
        "{ from = \"%s\"; keys = [ \"cli\" ]; }, "
        "{ from = \"*.%s\"; keys = [ \"cli\" ]; } ); };\n"
        "events = { file = \"\"; };\n", o->dom, o->sel, o->key,
        o->alg ? o->alg : "rsa-sha256", o->dom, o->dom);
    return pol_config_load_string(text, "command line", &hooks, err);
}

/* sign_file - the engine over one message; 0, or 1 with a reason */
static int
sign_file(struct pol_config *cfg, FILE *in)
{
    struct pol_client cl = { .addr = "127.0.0.1", .hdr_leadspc = 1 };
    struct pol_msg *m = pol_msg_new(cfg, &cl, "", "");
    struct pol_verdict v;
    int crlf = 0, rc = 1;

    if (m == NULL)
        return 1;
    pol_msg_set_outbound(m, "");
    if (ctl_run_message(m, in, &crlf, &v, "dkim-sign") != 0)
        ;
    else if (v.action >= POL_TEMPFAIL)
        fprintf(stderr, "dkim-sign: not signed: %s\n", v.reply);
    else {
        if (v.action == POL_WARN)
            fprintf(stderr, "dkim-sign: warning: %s\n", v.reply);
        if (pol_msg_edits(m) == NULL)
            fprintf(stderr, "dkim-sign: nothing to add (monitor mode, "
                "or already signed)\n");
        ctl_print_with_edits(m, in, crlf);
        rc = 0;
    }
    pol_msg_free(m);
    return rc;
}

int
ctl_dkim_sign(int argc, char **argv)
{
    static const struct option lopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "selector", required_argument, NULL, 's' },
        { "domain", required_argument, NULL, 'd' },
        { "algorithm", required_argument, NULL, 'a' },
        { "timestamp", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    struct sign_opts o = { .ts = -1 };
    struct pol_err err = { "" };
    struct pol_config *cfg;
    FILE *in;
    int ch, rc;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:k:s:d:a:t:", lopts, NULL)) != -1) {
        switch (ch) {
        case 'c': o.conf = optarg; break;
        case 'k': o.key = optarg; break;
        case 's': o.sel = optarg; break;
        case 'd': o.dom = optarg; break;
        case 'a': o.alg = optarg; break;
        case 't': o.ts = atoll(optarg); break;
        default: return EX_USAGE;
        }
    }
    if (optind < argc)
        o.msg = argv[optind++];
    if (optind != argc || (o.conf == NULL
            && (o.key == NULL || o.sel == NULL || o.dom == NULL))) {
        fprintf(stderr, "usage: outpolicyctl dkim-sign (-c CONFIG | --key "
            "FILE --selector S --domain D [--algorithm A]) [--timestamp T] "
            "[MESSAGE|-]\n");
        return EX_USAGE;
    }
    if ((cfg = load_config(&o, &err)) == NULL) {
        fprintf(stderr, "dkim-sign: %s\n", err.msg);
        return 1;
    }
    pol_config_quiet(cfg);
    in = ctl_open_message(o.msg);
    if (in == NULL) {
        fprintf(stderr, "dkim-sign: cannot read %s\n", o.msg ? o.msg : "-");
        pol_config_unref(cfg);
        return 1;
    }
    rc = sign_file(cfg, in);
    fclose(in);
    pol_config_unref(cfg);
    return rc;
}
