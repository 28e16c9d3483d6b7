/*
 * ctl/msgio.c - messages for outpolicyctl: read a file or stdin, run it
 * through the engine stage by stage as the milter would (headers, end of
 * headers, body in chunks, end of message), print it with the fields the
 * engine inserts.  Input is read twice, never held whole in memory.
 * Licence: BSD-2-Clause.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "policy/policy.h"

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

void
ctl_print_with_edits(const struct pol_msg *m, FILE *in, int crlf)
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

static time_t fixed_ts;

static time_t
fixed_clock(void *arg)
{
    (void)arg;
    return fixed_ts;
}

void
ctl_fix_clock(struct pol_hooks *hooks, long long ts)
{
    if (ts < 0)
        return;
    fixed_ts = (time_t)ts;
    hooks->clock = fixed_clock;
}

FILE *
ctl_open_message(const char *path)
{
    if (path == NULL || strcmp(path, "-") == 0)
        return copy_stdin();
    return fopen(path, "rb");
}

int
ctl_run_message(struct pol_msg *m, FILE *in, int *crlf,
    struct pol_verdict *v, const char *tool)
{
    if (feed_headers(m, in, crlf) != POL_OK) {
        fprintf(stderr, "%s: the header does not parse\n", tool);
        return 1;
    }
    if (pol_msg_eoh(m, v) != POL_OK || feed_body(m, in) != POL_OK
        || pol_msg_eom(m, v) != POL_OK || pol_msg_finish(m, v) != POL_OK) {
        fprintf(stderr, "%s: %s\n", tool, pol_msg_error(m));
        return 1;
    }
    return 0;
}
