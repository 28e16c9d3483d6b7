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

static time_t fixed_ts;
static time_t
fixed_clock(void *arg)
{
    (void)arg;
    return fixed_ts;
}

/* load_config - from -c, or one key given on the command line */
static struct pol_config *
load_config(const struct sign_opts *o, struct pol_err *err)
{
    struct pol_hooks hooks = ctl_hooks;
    char text[2048];

    if (o->ts >= 0) {
        fixed_ts = (time_t)o->ts;
        hooks.clock = fixed_clock;
    }
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

/* copy_stdin - stdin into an unlinked temporary file */
static FILE *
copy_stdin(void)
{
    FILE *t = tmpfile();
    char buf[65536];
    size_t n;

    if (t == NULL)
        return NULL;
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
        if (fwrite(buf, 1, n, t) != n)
            return NULL;
    rewind(t);
    return t;
}

/* feed_field - one unfolded header field to the engine */
static enum pol_status
feed_field(struct pol_msg *m, char *field)
{
    char *colon = strchr(field, ':');

    if (colon == NULL)
        return POL_EPERM;
    *colon = '\0';
    return pol_msg_header(m, field, colon + 1); /* value keeps its space */
}

/* feed_headers - header fields, folded lines joined with CRLF */
static enum pol_status
feed_headers(struct pol_msg *m, FILE *in, int *crlf)
{
    char *line = NULL, *field = NULL;
    size_t cap = 0, flen = 0;
    ssize_t n;
    enum pol_status st = POL_OK;

    while (st == POL_OK && (n = getline(&line, &cap, in)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (n > 0 && line[n - 1] == '\r') {
            line[--n] = '\0';
            *crlf = 1;
        }
        if (n > 0 && (line[0] == ' ' || line[0] == '\t') && field != NULL) {
            char *f = realloc(field, flen + (size_t)n + 3);
            if (f == NULL) { st = POL_ETEMP; break; }
            field = f;
            flen += (size_t)sprintf(field + flen, "\r\n%s", line);
            continue;
        }
        if (field != NULL && (st = feed_field(m, field)) != POL_OK)
            break;
        free(field);
        field = NULL;
        if (n == 0)
            break; /* end of header */
        if ((field = strdup(line)) == NULL) { st = POL_ETEMP; break; }
        flen = (size_t)n;
    }
    if (st == POL_OK && field != NULL)
        st = feed_field(m, field);
    free(field);
    free(line);
    return st;
}

/* feed_body - the body in chunks, bare LF turned into CRLF as on the wire */
static enum pol_status
feed_body(struct pol_msg *m, FILE *in)
{
    unsigned char buf[32768], out[65536];
    size_t n, o;
    int prev = 0;
    enum pol_status st;

    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        o = 0;
        for (size_t i = 0; i < n; i++) {
            if (buf[i] == '\n' && prev != '\r')
                out[o++] = '\r';
            out[o++] = buf[i];
            prev = buf[i];
        }
        if ((st = pol_msg_body(m, out, o)) != POL_OK)
            return st;
    }
    return POL_OK;
}

/* print_signed - inserted fields (newest on top), then the message */
static void
print_signed(const struct pol_msg *m, FILE *in, int crlf)
{
    const struct pol_edit *e, *list[16];
    int n = 0;
    char buf[65536];
    size_t r;

    for (e = pol_msg_edits(m); e != NULL && n < 16; e = e->next)
        if (e->kind == POL_EDIT_INSERT)
            list[n++] = e;
    while (n-- > 0) {
        printf("%s:", list[n]->name);
        for (const char *p = list[n]->value; *p; p++) {
            if (*p == '\n' && crlf)
                putchar('\r');
            putchar(*p);
        }
        fputs(crlf ? "\r\n" : "\n", stdout);
    }
    rewind(in);
    while ((r = fread(buf, 1, sizeof(buf), in)) > 0)
        fwrite(buf, 1, r, stdout);
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
    if (feed_headers(m, in, &crlf) != POL_OK)
        fprintf(stderr, "dkim-sign: the header does not parse\n");
    else if (pol_msg_eoh(m, &v) != POL_OK || feed_body(m, in) != POL_OK
        || pol_msg_eom(m, &v) != POL_OK || pol_msg_finish(m, &v) != POL_OK)
        fprintf(stderr, "dkim-sign: %s\n", pol_msg_error(m));
    else if (v.action >= POL_TEMPFAIL)
        fprintf(stderr, "dkim-sign: not signed: %s\n", v.reply);
    else {
        if (v.action == POL_WARN)
            fprintf(stderr, "dkim-sign: warning: %s\n", v.reply);
        if (pol_msg_edits(m) == NULL)
            fprintf(stderr, "dkim-sign: nothing to add (monitor mode, "
                "or already signed)\n");
        print_signed(m, in, crlf);
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
    in = o.msg == NULL || strcmp(o.msg, "-") == 0 ? copy_stdin()
                                                  : fopen(o.msg, "rb");
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
