/*
 * ctl/arc_tools.c - outpolicyctl arc-verify and arc-seal: the engine's ARC
 * code on one message, offline with keys from a zone file, or from DNS.
 *
 * Zone file lines: NAME [TTL] [IN] TXT "string" ["string" ...], "( )"
 * continuation, ";" comments; names are absolute (a trailing dot is
 * optional).
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>

#include "ctl/ctl.h"
#include "policy/policy.h"

struct zone {
    int n;
    struct {
        char *name, *txt;
    } r[512];
};

/* zone_add - one record from a logical line (continuations joined) */
static void
zone_add(struct zone *z, char *line)
{
    char *p = line, *name, *txt;
    size_t o = 0;

    name = p;
    while (*p && !isspace((unsigned char)*p))
        p++;
    if (*p == '\0' || z->n >= 512)
        return;
    *p++ = '\0';
    p = strstr(p, "TXT");
    if (p == NULL || (txt = malloc(strlen(p) + 1)) == NULL)
        return;
    for (p += 3; *p; p++) {
        if (*p != '"')
            continue;
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            txt[o++] = *p;
        }
        if (*p == '\0')
            break;
    }
    txt[o] = '\0';
    if (name[0] && name[strlen(name) - 1] == '.')
        name[strlen(name) - 1] = '\0';
    z->r[z->n].name = strdup(name);
    z->r[z->n++].txt = txt;
}

/* zone_load - read a zone file; 0 or -1 */
static int
zone_load(struct zone *z, const char *file)
{
    FILE *f = fopen(file, "r");
    char line[16384], logical[65536] = "";
    int depth = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *semi = NULL;
        bool q = false;
        for (char *c = line; *c; c++) { /* strip ; comments outside quotes */
            if (*c == '"' && (c == line || c[-1] != '\\'))
                q = !q;
            else if (*c == ';' && !q) {
                semi = c;
                break;
            } else if (!q && (*c == '(' || *c == ')')) {
                depth += *c == '(' ? 1 : -1;
                *c = ' ';
            }
        }
        if (semi)
            *semi = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (strlen(logical) + strlen(line) + 2 < sizeof(logical)) {
            strcat(logical, " ");
            strcat(logical, line);
        }
        if (depth <= 0) {
            char *s = logical + strspn(logical, " \t");
            if (*s)
                zone_add(z, s);
            logical[0] = '\0';
            depth = 0;
        }
    }
    fclose(f);
    return 0;
}

static void
zone_free(struct zone *z)
{
    for (int i = 0; i < z->n; i++) {
        free(z->r[i].name);
        free(z->r[i].txt);
    }
}

/* zone_lookup - pol_txt_fn over a loaded zone */
static int
zone_lookup(void *arg, const char *name, char *out, size_t len)
{
    const struct zone *z = arg;

    for (int i = 0; i < z->n; i++)
        if (strcasecmp(z->r[i].name, name) == 0) {
            snprintf(out, len, "%s", z->r[i].txt);
            return 1;
        }
    return 0;
}

/* tool_config - a config with only ARC (and an optional sealing key) */
static struct pol_config *
tool_config(const char *key, const char *sel, const char *dom,
    const char *alg, const char *srvid, long long ts, bool dns)
{
    struct pol_hooks hooks = ctl_hooks;
    struct pol_err err = { "" };
    struct pol_config *cfg;
    char text[4096];
    int n;

    n = snprintf(text, sizeof(text), "events = { file = \"\"; };\n"
        "dkim = { enabled = false; };\nspf = { enabled = false; };\n"
        "dmarc = { enabled = false; };\ntls_required = { strip = false; };\n");
    if (key != NULL)
        snprintf(text + n, sizeof(text) - (size_t)n,
            "keys = ( { id = \"seal\"; domain = \"%s\"; selector = \"%s\"; "
            "file = \"%s\"; algorithm = \"%s\"; } );\n"
            "arc = { key = \"seal\"; authserv_id = \"%s\"; };\n", dom, sel,
            key, alg, srvid);
    ctl_fix_clock(&hooks, ts);
    cfg = pol_config_load_string(text, "command line", &hooks, &err);
    if (cfg == NULL) {
        fprintf(stderr, "outpolicyctl: %s\n", err.msg);
        return NULL;
    }
    pol_config_quiet(cfg);
    if (dns && pol_config_activate(cfg, &err) != POL_OK) {
        fprintf(stderr, "outpolicyctl: %s\n", err.msg);
        pol_config_unref(cfg);
        return NULL;
    }
    return cfg;
}

/* ar_results - the results of the message's Authentication-Results field
 * for authserv-id id (what follows "id;"), malloc'ed, or NULL */
static char *
ar_results(FILE *in, const char *id)
{
    char *line = NULL, *field = NULL, *found = NULL;
    size_t cap = 0, flen = 0;
    ssize_t n;

    rewind(in);
    for (;;) {
        n = getline(&line, &cap, in);
        if (n > 0 && (line[0] == ' ' || line[0] == '\t') && field != NULL) {
            char *f = realloc(field, flen + (size_t)n + 1);
            if (f == NULL)
                break;
            field = f;
            memcpy(field + flen, line, (size_t)n + 1);
            flen += (size_t)n;
            continue;
        }
        if (field != NULL
            && strncasecmp(field, "Authentication-Results:", 23) == 0) {
            char *v = field + 23, *semi = strchr(v, ';');
            v += strspn(v, " \t\r\n");
            if (semi != NULL && (size_t)(semi - v) >= strlen(id)
                && strncasecmp(v, id, strlen(id)) == 0
                && strspn(v + strlen(id), " \t\r\n") == (size_t)(semi - v
                    - (long)strlen(id))) {
                char *r = semi + 1 + strspn(semi + 1, " \t\r\n");
                char *merged;
                while (*r && strchr(" \t\r\n;", r[strlen(r) - 1]))
                    r[strlen(r) - 1] = '\0';
                /* several fields for one authserv-id are merged */
                if (*r && (merged = malloc((found ? strlen(found) : 0)
                               + strlen(r) + 3)) != NULL) {
                    sprintf(merged, "%s%s%s", found ? found : "",
                        found ? "; " : "", r);
                    free(found);
                    found = merged;
                }
            }
        }
        free(field);
        field = NULL;
        if (n <= 0 || line[0] == '\n' || (line[0] == '\r' && line[1] == '\n'))
            break;
        if ((field = strdup(line)) == NULL)
            break;
        flen = (size_t)n;
    }
    free(field);
    free(line);
    rewind(in);
    return found;
}

struct arc_opts {
    const char *zone, *key, *sel, *dom, *alg, *srvid, *headers, *msg;
    long long ts;
    bool standardize;
};

/* run_arc - the engine over the message; prints per mode */
static int
run_arc(const struct arc_opts *o, bool seal)
{
    struct zone *z = calloc(1, sizeof(*z));
    struct pol_client cl = { .addr = "127.0.0.1", .hdr_leadspc = 1 };
    struct pol_config *cfg = NULL;
    struct pol_msg *m = NULL;
    struct pol_verdict v;
    FILE *in = NULL;
    char *results = NULL;
    const char *cv, *reason;
    int rc = 2, crlf = 0, inst, added;

    if (z == NULL || (o->zone != NULL && zone_load(z, o->zone) < 0)) {
        fprintf(stderr, "outpolicyctl: cannot read zone %s\n", o->zone);
        goto out;
    }
    if ((in = ctl_open_message(o->msg)) == NULL) {
        fprintf(stderr, "outpolicyctl: cannot read %s\n", o->msg ? o->msg
            : "-");
        goto out;
    }
    if ((cfg = tool_config(seal ? o->key : NULL, o->sel, o->dom, o->alg,
             o->srvid, o->ts, o->zone == NULL)) == NULL
        || (m = pol_msg_new(cfg, &cl, "", "")) == NULL)
        goto out;
    if (seal)
        results = ar_results(in, o->srvid);
    pol_msg_set_outbound(m, "");
    pol_msg_set_arc_tool(m, o->zone ? zone_lookup : NULL, o->zone ? z : NULL,
        results, o->headers, o->standardize);
    if (ctl_run_message(m, in, &crlf, &v, seal ? "arc-seal" : "arc-verify"))
        goto out;
    cv = pol_msg_arc_result(m, &inst, &reason, &added);
    if (!seal) {
        printf("{\"arc\": {\"cv\": \"%s\", \"instances\": %d, "
            "\"reason\": \"", cv, inst);
        for (const unsigned char *c = (const unsigned char *)reason; *c;
             c++) {
            if (*c == '"' || *c == '\\')
                printf("\\%c", *c);
            else if (*c < 0x20)
                printf("\\u%04x", *c);
            else
                putchar(*c);
        }
        printf("\"}}\n");
        rc = strcmp(cv, "fail") == 0;
    } else if (added == 0) {
        fprintf(stderr, "arc-seal: chain not extended (cv=%s%s%s)\n", cv,
            *reason ? ": " : "", reason);
        rc = 1;
    } else {
        ctl_print_with_edits(m, in, crlf);
        rc = 0;
    }
out:
    pol_msg_free(m);
    pol_config_unref(cfg);
    if (in != NULL)
        fclose(in);
    free(results);
    if (z != NULL)
        zone_free(z);
    free(z);
    return rc;
}

/* parse_arc_opts - shared options of arc-verify and arc-seal */
static int
parse_arc_opts(int argc, char **argv, struct arc_opts *o)
{
    static const struct option lopts[] = {
        { "zone", required_argument, NULL, 'z' },
        { "key", required_argument, NULL, 'k' },
        { "selector", required_argument, NULL, 's' },
        { "domain", required_argument, NULL, 'd' },
        { "algorithm", required_argument, NULL, 'a' },
        { "authserv-id", required_argument, NULL, 'i' },
        { "headers", required_argument, NULL, 'H' },
        { "timestamp", required_argument, NULL, 't' },
        { "standardize", no_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    memset(o, 0, sizeof(*o));
    o->ts = -1;
    o->alg = "rsa-sha256";
    optind = 1;
    while ((ch = getopt_long(argc, argv, "z:k:s:d:a:i:H:t:S", lopts, NULL))
        != -1) {
        switch (ch) {
        case 'z': o->zone = optarg; break;
        case 'k': o->key = optarg; break;
        case 's': o->sel = optarg; break;
        case 'd': o->dom = optarg; break;
        case 'a': o->alg = optarg; break;
        case 'i': o->srvid = optarg; break;
        case 'H': o->headers = optarg; break;
        case 't': o->ts = atoll(optarg); break;
        case 'S': o->standardize = true; break;
        default: return -1;
        }
    }
    if (optind < argc)
        o->msg = argv[optind++];
    return optind == argc ? 0 : -1;
}

int
ctl_arc_verify(int argc, char **argv)
{
    struct arc_opts o;

    if (parse_arc_opts(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: outpolicyctl arc-verify [--zone FILE] "
            "[MESSAGE|-]\n");
        return EX_USAGE;
    }
    return run_arc(&o, false);
}

int
ctl_arc_seal(int argc, char **argv)
{
    struct arc_opts o;

    if (parse_arc_opts(argc, argv, &o) < 0 || o.key == NULL || o.sel == NULL
        || o.dom == NULL || o.srvid == NULL) {
        fprintf(stderr, "usage: outpolicyctl arc-seal --key FILE --selector S"
            " --domain D --authserv-id ID [--algorithm rsa-sha256|"
            "ed25519-sha256] [--headers h1:h2:...] [--timestamp T] "
            "[--zone FILE] [--standardize] [MESSAGE|-]\n");
        return EX_USAGE;
    }
    return run_arc(&o, true);
}
