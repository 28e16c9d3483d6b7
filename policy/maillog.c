/*
 * policy/maillog.c - parse one Postfix log line (syslog or RFC 3339
 * time stamp, or a bare message as "journalctl -o cat" prints it) into
 * the fields delivery tracing needs.  Pure; thread-safe.
 *
 * Recognised: smtp/lmtp delivery lines (to=, relay=, delay=, delays=,
 * dsn=, status=), the client's "TLS connection established to" line,
 * qmgr "from=" and "status=expired" lines, cleanup "message-id=".  Any
 * other line is POL_LOG_OTHER (skipped and counted by the caller).
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* copy - at most len-1 bytes of [s, s+n) */
static void
copy(char *dst, size_t len, const char *s, size_t n)
{
    if (n >= len)
        n = len - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* header - time stamp, host, program[pid]; returns the message start */
static const char *
header(const char *p, struct pol_logline *l)
{
    const char *q, *br;

    /* "Nov 26 22:51:59 host" or "2026-11-26T22:51:59.1+00:00 host" */
    if (isalpha((unsigned char)p[0]) && strlen(p) > 16 && p[3] == ' '
        && p[6] == ' ' && p[9] == ':' && p[12] == ':') {
        copy(l->ts, sizeof(l->ts), p, 15);
        p += 15;
    } else if (isdigit((unsigned char)p[0]) && strlen(p) > 19 && p[4] == '-'
        && p[10] == 'T') {
        q = strchr(p, ' ');
        if (q == NULL)
            return NULL;
        copy(l->ts, sizeof(l->ts), p, (size_t)(q - p));
        p = q;
    } else
        return p; /* bare message (journalctl -o cat) */
    p += strspn(p, " ");
    if ((q = strchr(p, ' ')) == NULL) /* host */
        return NULL;
    p = q + 1;
    /* program[pid]: */
    if ((q = strstr(p, ": ")) == NULL || (br = memchr(p, '[', (size_t)(q
             - p))) == NULL || q[-1] != ']')
        return NULL;
    copy(l->prog, sizeof(l->prog), p, (size_t)(br - p));
    l->pid = strtol(br + 1, NULL, 10);
    return q + 2;
}

/* field - value of "name=" up to ", " (or the end), into dst */
static bool
field(const char *msg, const char *name, char *dst, size_t len)
{
    const char *p = msg, *end;
    size_t nl = strlen(name);

    while ((p = strstr(p, name)) != NULL) {
        if ((p == msg || p[-1] == ' ') && p[nl] == '=')
            break;
        p += nl;
    }
    if (p == NULL)
        return false;
    p += nl + 1;
    end = strstr(p, ", ");
    if (end == NULL)
        end = p + strcspn(p, " ");
    copy(dst, len, p, (size_t)(end - p));
    return true;
}

/* unangle - "<a@b>" -> "a@b" in place */
static void
unangle(char *s)
{
    size_t n = strlen(s);

    if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
}

/* relay - "host[ip]:port" into its parts */
static void
relay(struct pol_logline *l)
{
    const char *r = l->relay, *o = strchr(r, '['), *c;

    if (o == NULL || (c = strrchr(o, ']')) == NULL) {
        copy(l->relay_host, sizeof(l->relay_host), r, strlen(r));
        return;
    }
    copy(l->relay_host, sizeof(l->relay_host), r, (size_t)(o - r));
    copy(l->relay_ip, sizeof(l->relay_ip), o + 1, (size_t)(c - o - 1));
    l->relay_port = c[1] == ':' ? atoi(c + 2) : 0;
}

/* delivery - "QID: to=<..>, relay=.., delay=.., delays=a/b/c/d, dsn=..,
 * status=sent (...)" */
static int
delivery(const char *m, struct pol_logline *l)
{
    char buf[64];
    const char *st = strstr(m, " status=");

    if (!field(m, "to", l->to, sizeof(l->to)) || st == NULL)
        return -1;
    unangle(l->to);
    field(m, "orig_to", l->orig_to, sizeof(l->orig_to));
    unangle(l->orig_to);
    if (field(m, "relay", l->relay, sizeof(l->relay)))
        relay(l);
    if (field(m, "delay", buf, sizeof(buf)))
        l->delay = strtod(buf, NULL);
    if (field(m, "delays", buf, sizeof(buf)))
        sscanf(buf, "%lf/%lf/%lf/%lf", &l->delays[0], &l->delays[1],
            &l->delays[2], &l->delays[3]);
    field(m, "dsn", l->dsn, sizeof(l->dsn));
    if (field(m, "conn_use", buf, sizeof(buf)))
        l->conn_use = atoi(buf);
    st += 8;
    copy(l->status, sizeof(l->status), st, strcspn(st, " ,"));
    if (l->status[0] == '\0')
        return -1; /* "status=" with nothing after it */
    if ((st = strchr(st, '(')) != NULL) {
        const char *e = strrchr(st, ')');
        copy(l->reason, sizeof(l->reason), st + 1, e && e > st
                ? (size_t)(e - st - 1) : strlen(st + 1));
    }
    l->kind = POL_LOG_DELIVERY;
    return 0;
}

/* tls - "Verified TLS connection established to host[ip]:port: TLSv1.3
 * with cipher NAME (256/256 bits) ..." */
static int
tls(const char *m, struct pol_logline *l)
{
    const char *p = strstr(m, " TLS connection established to ");
    const char *v, *c;

    if (p == NULL)
        return -1;
    copy(l->tls_trust, sizeof(l->tls_trust), m, (size_t)(p - m));
    p += 31;
    if ((v = strstr(p, ": ")) == NULL)
        return -1;
    copy(l->relay, sizeof(l->relay), p, (size_t)(v - p));
    relay(l);
    v += 2;
    copy(l->tls_version, sizeof(l->tls_version), v, strcspn(v, " "));
    if ((c = strstr(v, " with cipher ")) != NULL) {
        c += 13;
        copy(l->tls_cipher, sizeof(l->tls_cipher), c, strcspn(c, " "));
    }
    l->kind = POL_LOG_TLS;
    return 0;
}

/* queue_id - a leading "QID: " (Postfix short or long queue IDs) */
static const char *
queue_id(const char *m, struct pol_logline *l)
{
    size_t n = strspn(m, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    if (n < 5 || n >= sizeof(l->qid) || m[n] != ':' || m[n + 1] != ' ')
        return NULL;
    copy(l->qid, sizeof(l->qid), m, n);
    return m + n + 2;
}

int
pol_logline_parse(const char *line, struct pol_logline *l)
{
    const char *m, *slash;
    char buf[32];

    memset(l, 0, sizeof(*l));
    l->kind = POL_LOG_OTHER;
    if ((m = header(line, l)) == NULL)
        return -1;
    slash = strrchr(l->prog, '/');
    copy(l->service, sizeof(l->service), slash ? slash + 1 : l->prog,
        strlen(slash ? slash + 1 : l->prog));
    if (strstr(m, " TLS connection established to ") != NULL)
        return tls(m, l);
    if ((m = queue_id(m, l)) == NULL)
        return 0;
    if (strncmp(m, "to=<", 4) == 0)
        return delivery(m, l);
    if (strncmp(m, "message-id=", 11) == 0) {
        copy(l->msgid, sizeof(l->msgid), m + 11, strcspn(m + 11, " "));
        l->kind = POL_LOG_MSGID;
    } else if (strncmp(m, "from=<", 6) == 0) {
        field(m, "from", l->from, sizeof(l->from));
        unangle(l->from);
        if (field(m, "nrcpt", buf, sizeof(buf)))
            l->nrcpt = atoi(buf);
        if (strstr(m, "status=expired") != NULL) {
            copy(l->status, sizeof(l->status), "expired", 7);
            l->kind = POL_LOG_EXPIRED;
        } else
            l->kind = POL_LOG_FROM;
    } else if (strcmp(m, "removed") == 0)
        l->kind = POL_LOG_REMOVED;
    return 0;
}
