/*
 * ctl/trace.c - outpolicyctl trace: read Postfix's log (a file, followed
 * across rotation, or stdin), join each delivery line with the TLS line
 * of the same smtp process and with outpolicy's own submission and
 * destination events (by queue ID), and emit one "delivery" event per
 * recipient and attempt; or, with --summary, a table per destination
 * domain.  Memory is bounded: fixed-size tables with oldest-first
 * eviction, and delay percentiles from a log-scale histogram.
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "policy/policy.h"

#define QID_SLOTS 262144 /* messages remembered (the table is calloc'ed:
                           * pages count only once used) */
#define PROBE 32          /* slots searched per queue ID */
#define PENDING 4096      /* --follow: deliveries waiting for their event */
#define PENDING_WAIT 3    /* seconds a delivery waits for its event */
#define PID_SLOTS 512   /* smtp processes with a pending TLS line */
#define DOM_SLOTS 4096  /* destination domains in a summary */
#define BINS 90         /* delay histogram: 1 ms * 1.25^i */

struct msginfo { /* what we know of a queue ID (kept small: 256k of them) */
    char qid[20];
    char msgid[100], from[100];
    char verdict[12], dkim[16], subtls[6];
    char policy[3][2][64]; /* recipient domain -> TLS policy */
    char deferred[3][64];  /* recipients last deferred (for expiry) */
    unsigned short doms[4]; /* summary domains counted (index + 1) */
    int npolicy, ndeferred;
    unsigned long seq;      /* insertion order, for eviction */
    bool have_event;
};

struct tlsinfo {
    long pid;
    char qid[20]; /* first delivery of this TLS session */
    char prog[64], trust[16], version[16], cipher[80], relay[300];
};

struct domstat {
    char domain[256];
    unsigned long messages, sent, deferred, bounced, expired, tls[5];
    unsigned long unverified, n;
    unsigned long bins[BINS];
    double max;
};

static struct msginfo *msgs; /* QID_SLOTS, open addressing */
static unsigned long msg_seq;
static struct tlsinfo tlsv[PID_SLOTS];
static size_t tls_next;
static struct domstat *doms;
static size_t ndoms;
static unsigned long nlines, nused, nskipped;

/* ---- small helpers ---- */

static struct msginfo *
msg_find(const char *qid, bool create)
{
    size_t h = 5381;
    struct msginfo *oldest = NULL;

    for (const char *c = qid; *c; c++)
        h = h * 33 + (unsigned char)*c;
    for (size_t i = 0; i < PROBE; i++) {
        struct msginfo *m = &msgs[(h + i) % QID_SLOTS];
        if (strcmp(m->qid, qid) == 0)
            return m;
        if (m->qid[0] == '\0') {
            if (!create)
                return NULL;
            oldest = m;
            break;
        }
        if (oldest == NULL || m->seq < oldest->seq)
            oldest = m;
    }
    if (!create)
        return NULL;
    memset(oldest, 0, sizeof(*oldest)); /* evicts the oldest in the window */
    snprintf(oldest->qid, sizeof(oldest->qid), "%s", qid);
    oldest->seq = ++msg_seq;
    return oldest;
}

/* jstr - string value of "key":"..." after position start in a JSON line
 * written by outpolicy (compact, no spaces); "" if absent */
static void
jstr(const char *line, const char *start, const char *key, char *out,
    size_t len)
{
    char pat[64];
    const char *p = start ? strstr(line, start) : line;
    size_t o = 0;

    out[0] = '\0';
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    if (p == NULL || (p = strstr(p, pat)) == NULL)
        return;
    for (p += strlen(pat); *p && *p != '"' && o + 1 < len; p++) {
        if (*p == '\\' && p[1])
            p++;
        out[o++] = *p;
    }
    out[o] = '\0';
}

/* index_event - remember what a submission/destination event says */
static void
index_event(const char *line)
{
    char qid[32], action[24], dom[200], pol[200];
    struct msginfo *m;

    jstr(line, "\"email\":", "local_id", qid, sizeof(qid));
    jstr(line, "\"event\":", "action", action, sizeof(action));
    if (qid[0] == '\0' || (m = msg_find(qid, true)) == NULL)
        return;
    if (strcmp(action, "submission") == 0) {
        m->have_event = true;
        jstr(line, "\"email\":", "message_id", m->msgid, sizeof(m->msgid));
        jstr(line, "\"envelope\":", "from", m->from, sizeof(m->from));
        jstr(line, "\"verdict\":", "action", m->verdict, sizeof(m->verdict));
        jstr(line, "\"dkim\":", "result", m->dkim, sizeof(m->dkim));
        jstr(line, "\"tls\":", "version", m->subtls, sizeof(m->subtls));
    } else if (strcmp(action, "destination") == 0 && m->npolicy < 3) {
        jstr(line, "\"destination\":", "domain", dom, sizeof(dom));
        jstr(line, "\"tls_policy\":", "policy", pol, sizeof(pol));
        snprintf(m->policy[m->npolicy][0], 64, "%.63s", dom);
        snprintf(m->policy[m->npolicy++][1], 64, "%.63s", pol);
    }
}

/* tls_remember / tls_take - the TLS line of an smtp process */
static void
tls_remember(const struct pol_logline *l)
{
    struct tlsinfo *t = NULL;

    for (size_t i = 0; i < PID_SLOTS && t == NULL; i++)
        if (tlsv[i].pid == l->pid && strcmp(tlsv[i].prog, l->prog) == 0)
            t = &tlsv[i];
    if (t == NULL)
        t = &tlsv[tls_next++ % PID_SLOTS];
    t->pid = l->pid;
    snprintf(t->prog, sizeof(t->prog), "%s", l->prog);
    snprintf(t->trust, sizeof(t->trust), "%s", l->tls_trust);
    snprintf(t->version, sizeof(t->version), "%s", l->tls_version);
    snprintf(t->cipher, sizeof(t->cipher), "%s", l->tls_cipher);
    snprintf(t->relay, sizeof(t->relay), "%s", l->relay);
    t->qid[0] = '\0';
}

/* tls_for - the TLS session of this delivery: same process and relay,
 * and the same message, or a reused connection (conn_use > 1); a new
 * session without a TLS line of its own did not use TLS */
static const struct tlsinfo *
tls_for(const struct pol_logline *l)
{
    for (size_t i = 0; i < PID_SLOTS; i++) {
        struct tlsinfo *t = &tlsv[i];
        if (t->pid != l->pid || strcmp(t->prog, l->prog) != 0
            || strcmp(t->relay, l->relay) != 0)
            continue;
        if (t->qid[0] == '\0')
            snprintf(t->qid, sizeof(t->qid), "%.19s", l->qid);
        else if (strcmp(t->qid, l->qid) != 0 && l->conn_use <= 1) {
            t->pid = 0; /* stale: a later session without TLS */
            return NULL;
        }
        return t;
    }
    return NULL;
}

/* when - epoch of a log time stamp (syslog: this year, local time) */
static time_t
when(const char *ts)
{
    struct tm tm = { 0 };
    time_t now = time(NULL), t;

    if (ts[0] == '\0')
        return now;
    if (isdigit((unsigned char)ts[0])) { /* RFC 3339: offset honoured */
        const char *r = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
        long off = 0;
        if (r == NULL)
            return now;
        if (*r == '.')
            r += 1 + strspn(r + 1, "0123456789");
        if ((*r == '+' || *r == '-') && strlen(r) >= 6)
            off = (atol(r + 1) * 3600 + atol(r + 4) * 60) * (*r == '-' ? -1
                                                                     : 1);
        else if (*r != 'Z' && *r != 'z') { /* no offset: local time */
            tm.tm_isdst = -1;
            return mktime(&tm);
        }
        return timegm(&tm) - off;
    }
    localtime_r(&now, &tm);
    int year = tm.tm_year;
    if (strptime(ts, "%b %d %H:%M:%S", &tm) == NULL)
        return now;
    tm.tm_year = year;
    tm.tm_isdst = -1;
    t = mktime(&tm);
    if (t > now + 86400) { /* December's log read in January */
        tm.tm_year--;
        t = mktime(&tm);
    }
    return t;
}

/* ---- output ---- */

struct topts {
    const char *events[8];
    int nevents;
    bool follow, summary, json;
    time_t since, until;
    const char *log;
};

/* jesc - a JSON string (outpolicy's own writer is in the library; this
 * tool only needs plain escaping) */
static void
jesc(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

/* jkv - LEAD (JSON punctuation), then "KEY": and VAL as a JSON string */
static void
jkv(const char *lead, const char *key, const char *val)
{
    printf("%s\"%s\":", lead, key);
    jesc(stdout, val);
}

static const char *
outcome(const char *status)
{
    if (strcmp(status, "sent") == 0)
        return "success";
    if (strcmp(status, "bounced") == 0 || strcmp(status, "expired") == 0)
        return "failure";
    return "unknown";
}

/* policy_for - the TLS policy the destination event recorded */
static const char *
policy_for(const struct msginfo *m, const char *domain)
{
    for (int i = 0; m != NULL && i < m->npolicy; i++)
        if (strcasecmp(m->policy[i][0], domain) == 0)
            return m->policy[i][1];
    return NULL;
}

/* emit - one delivery event */
static void
emit(const struct pol_logline *l, const struct tlsinfo *t,
    const struct msginfo *m, time_t ts)
{
    const char *dom = strrchr(l->to, '@') ? strrchr(l->to, '@') + 1 : "";
    const char *pol = policy_for(m, dom);
    char iso[40];
    struct tm tm;

    gmtime_r(&ts, &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    printf("{\"@timestamp\":\"%s\",\"event\":{\"kind\":\"event\","
        "\"category\":[\"email\"],\"action\":\"delivery\",\"outcome\":\"%s\"},"
        "\"email\":{\"local_id\":", iso, outcome(l->status));
    jesc(stdout, l->qid);
    if (m && m->msgid[0])
        jkv(",", "message_id", m->msgid);
    printf(",\"to\":{\"address\":[");
    jesc(stdout, l->to);
    jkv("]}},\"destination\":{", "domain", dom);
    if (l->relay_host[0])
        jkv(",", "address", l->relay_host);
    if (l->relay_ip[0])
        jkv(",", "ip", l->relay_ip);
    if (l->relay_port)
        printf(",\"port\":%d", l->relay_port);
    printf("},\"tls\":{\"established\":%s", t ? "true" : "false");
    if (t) {
        jkv(",\"version_protocol\":\"tls\",", "version",
            strncmp(t->version, "TLSv", 4) == 0 ? t->version + 4 : t->version);
        jkv(",", "cipher", t->cipher);
    }
    printf("},\"outpolicy\":{\"schema\":%d,", POL_SCHEMA_VERSION);
    if (m && m->from[0]) {
        jkv("\"envelope\":{", "from", m->from);
        printf("},");
    }
    jkv("\"delivery\":{", "status", l->status);
    jkv(",", "dsn", l->dsn);
    jkv(",", "relay", l->relay);
    jkv(",", "response", l->reason);
    jkv(",", "service", l->prog);
    printf(",\"delay\":%g,\"delays\":{\"before_queue_manager\":%g,"
        "\"in_queue_manager\":%g,\"connection_setup\":%g,"
        "\"transmission\":%g}", l->delay, l->delays[0], l->delays[1],
        l->delays[2], l->delays[3]);
    if (t) {
        char trust[16];
        snprintf(trust, sizeof(trust), "%s", t->trust);
        for (char *c = trust; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        printf(",\"tls_trust\":\"%s\",\"tls_verified\":%s", trust,
            strcasecmp(t->trust, "Verified") == 0 ? "true" : "false");
    }
    printf("}");
    if (pol) {
        jkv(",\"tls_policy\":{", "policy", pol);
        printf("}");
    }
    if (m && m->have_event) {
        jkv(",\"submission\":{", "verdict", m->verdict);
        jkv(",", "dkim", m->dkim);
        jkv(",", "tls_version", m->subtls);
        printf("}");
    }
    printf("}}\n");
}

/* bin - histogram bin of a delay */
static int
bin(double d)
{
    int b = d <= 0.001 ? 0 : (int)(log(d / 0.001) / log(1.25)) + 1;

    return b < BINS ? b : BINS - 1;
}

static double
bin_value(int b)
{
    return b == 0 ? 0.0 : 0.001 * pow(1.25, b - 0.5);
}

/* account - a delivery in the per-domain summary; m (may be NULL) counts
 * each message once per domain */
static void
account(const struct pol_logline *l, const struct tlsinfo *t,
    struct msginfo *m)
{
    const char *dom = strrchr(l->to, '@') ? strrchr(l->to, '@') + 1 : "?";
    struct domstat *d = NULL;
    static const char *const vers[] = { "TLSv1", "TLSv1.1", "TLSv1.2",
        "TLSv1.3" };
    int v = 4;

    for (size_t i = 0; i < ndoms && d == NULL; i++)
        if (strcasecmp(doms[i].domain, dom) == 0)
            d = &doms[i];
    if (d == NULL) {
        if (ndoms >= DOM_SLOTS)
            return; /* bounded: later domains are not summarised */
        d = &doms[ndoms++];
        snprintf(d->domain, sizeof(d->domain), "%s", dom);
    }
    if (strcmp(l->status, "sent") == 0)
        d->sent++;
    else if (strcmp(l->status, "deferred") == 0)
        d->deferred++;
    else if (strcmp(l->status, "bounced") == 0)
        d->bounced++;
    else if (strcmp(l->status, "expired") == 0)
        d->expired++;
    else
        return; /* address probes (deliverable/undeliverable) and such */
    if (m != NULL) {
        unsigned short idx = (unsigned short)(d - doms + 1);
        int k;
        for (k = 0; k < 4 && m->doms[k] != 0 && m->doms[k] != idx; k++)
            ;
        if (k < 4 && m->doms[k] == 0) {
            m->doms[k] = idx;
            d->messages++;
        }
    } else
        d->messages++;
    if (strcmp(l->status, "expired") == 0)
        return; /* a notice, not a delivery attempt: no TLS, no delay */
    for (int i = 0; t && i < 4; i++)
        if (strcmp(t->version, vers[i]) == 0)
            v = i;
    d->tls[v]++;
    if (t == NULL || strcasecmp(t->trust, "Verified") != 0)
        d->unverified++;
    d->n++;
    d->bins[bin(l->delay)]++;
    if (l->delay > d->max)
        d->max = l->delay;
}

static double
percentile(const struct domstat *d, double p)
{
    unsigned long want = (unsigned long)ceil(p * (double)d->n), seen = 0;

    for (int b = 0; b < BINS; b++)
        if ((seen += d->bins[b]) >= want && want > 0)
            return bin_value(b) < d->max ? bin_value(b) : d->max;
    return 0;
}

static void
print_summary(bool json)
{
    if (!json)
        printf("%-30s %6s %6s %6s %6s %6s  %-23s %6s %8s %8s %8s\n",
            "domain", "msgs", "sent", "defer", "bounce", "expire",
            "TLS 1.0/1.1/1.2/1.3/none",
            "unver", "p50 s", "p95 s", "max s");
    for (size_t i = 0; i < ndoms; i++) {
        const struct domstat *d = &doms[i];
        double unv = d->n ? 100.0 * (double)d->unverified / (double)d->n : 0;
        if (json) {
            jkv("{\"destination\":{", "domain", d->domain);
            printf("},\"outpolicy\":{\"summary\":{\"messages\":%lu,"
                "\"sent\":%lu,\"deferred\":"
                "%lu,\"bounced\":%lu,\"expired\":%lu,\"tls\":{\"1.0\":%lu,"
                "\"1.1\":%lu,\"1.2\":%lu,\"1.3\":%lu,\"none\":%lu},"
                "\"not_verified_percent\":%.1f,\"delay\":{\"p50\":%.3f,"
                "\"p95\":%.3f,\"max\":%.3f}}}}\n", d->messages, d->sent,
                d->deferred,
                d->bounced, d->expired, d->tls[0], d->tls[1], d->tls[2],
                d->tls[3], d->tls[4], unv, percentile(d, 0.5),
                percentile(d, 0.95), d->max);
        } else {
            char tls[40];
            snprintf(tls, sizeof(tls), "%lu/%lu/%lu/%lu/%lu", d->tls[0],
                d->tls[1], d->tls[2], d->tls[3], d->tls[4]);
            printf("%-30.30s %6lu %6lu %6lu %6lu %6lu  %-23s %5.1f%% %8.2f "
                "%8.2f %8.2f\n", d->domain, d->messages, d->sent,
                d->deferred, d->bounced,
                d->expired, tls, unv, percentile(d, 0.5),
                percentile(d, 0.95), d->max);
        }
    }
}

/* ---- input ---- */

struct tail {
    const char *path;
    FILE *f;
    ino_t ino;
    char *line;
    size_t cap;
};

/* tail_open - (re)open a followed file */
static bool
tail_open(struct tail *t)
{
    struct stat st;

    if (t->f != NULL && t->f != stdin)
        fclose(t->f);
    t->f = strcmp(t->path, "-") == 0 ? stdin : fopen(t->path, "r");
    if (t->f == NULL)
        return false;
    if (t->f != stdin && fstat(fileno(t->f), &st) == 0)
        t->ino = st.st_ino;
    return true;
}

/* tail_rotated - the path now names another file, or it was truncated */
static bool
tail_rotated(struct tail *t)
{
    struct stat st;

    if (t->f == stdin || stat(t->path, &st) != 0)
        return false;
    return st.st_ino != t->ino || st.st_size < ftello(t->f);
}

/* tail_lines - every complete line available now, to fn */
static void
tail_lines(struct tail *t, void (*fn)(const struct topts *, const char *),
    const struct topts *o)
{
    ssize_t n;

    if (t->f == NULL && !tail_open(t))
        return;
    for (;;) {
        clearerr(t->f);
        while ((n = getline(&t->line, &t->cap, t->f)) > 0) {
            if (t->line[n - 1] != '\n' && o->follow && t->f != stdin) {
                fseeko(t->f, -(off_t)n, SEEK_CUR); /* partial: wait */
                return;
            }
            t->line[strcspn(t->line, "\r\n")] = '\0';
            fn(o, t->line);
        }
        if (!o->follow || !tail_rotated(t))
            return;
        tail_open(t); /* rotated: read the new file from its start */
    }
}

static void
on_event_line(const struct topts *o, const char *line)
{
    (void)o;
    index_event(line);
}

/* pending deliveries (--follow): the submission event of a message may
 * reach the file up to a second after Postfix logs its delivery (events
 * are buffered), so a delivery waits up to PENDING_WAIT seconds for it */
struct pending {
    struct pol_logline l;
    struct tlsinfo t;
    bool has_t;
    time_t ts, since;
};
static struct pending *pend;
static size_t npend;
static volatile sig_atomic_t stop_flag;

static void
on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void
emit_or_account(const struct topts *o, const struct pol_logline *l,
    const struct tlsinfo *t, struct msginfo *m, time_t ts)
{
    if (o->summary)
        account(l, t, m);
    else
        emit(l, t, m, ts);
    fflush(stdout);
}

/* ready - the message's events are in: its submission event and the
 * destination events written with it (an accepted message has one per
 * recipient domain; a reader may see the first line of a flush before
 * the rest) */
static bool
ready(const struct msginfo *m)
{
    return m != NULL && m->have_event && m->npolicy > 0;
}

/* flush_pending - emit from the head, in log order, what has its event
 * now or has waited long enough (all: everything) */
static void
flush_pending(const struct topts *o, bool all)
{
    time_t now = time(NULL);
    size_t i;

    for (i = 0; i < npend; i++) {
        struct pending *p = &pend[i];
        struct msginfo *m = msg_find(p->l.qid, false);
        if (!all && !ready(m) && now - p->since < PENDING_WAIT)
            break;
        emit_or_account(o, &p->l, p->has_t ? &p->t : NULL, m, p->ts);
    }
    if (i > 0) {
        memmove(pend, pend + i, (npend - i) * sizeof(*pend));
        npend -= i;
    }
}

/* deliver - one delivery: now, or (following) once its event is in */
static void
deliver(const struct topts *o, const struct pol_logline *l,
    const struct tlsinfo *t, struct msginfo *m, time_t ts)
{
    struct pending *p;

    if (!o->follow || (npend == 0 && ready(m))) {
        emit_or_account(o, l, t, m, ts);
        return;
    }
    if (npend == PENDING)
        flush_pending(o, true);
    p = &pend[npend++];
    p->l = *l;
    p->has_t = t != NULL;
    if (t != NULL)
        p->t = *t;
    p->ts = ts;
    p->since = time(NULL);
}

static void
on_log_line(const struct topts *o, const char *line)
{
    struct pol_logline l;
    struct msginfo *m;
    time_t ts;

    nlines++;
    if (isatty(2) && nlines % 100000 == 0)
        fprintf(stderr, "\rtrace: %lu lines, %lu used, %lu skipped", nlines,
            nused, nskipped);
    if (pol_logline_parse(line, &l) != 0 || l.kind == POL_LOG_OTHER) {
        nskipped++;
        return;
    }
    nused++;
    switch (l.kind) {
    case POL_LOG_TLS:
        tls_remember(&l);
        return;
    case POL_LOG_MSGID:
        if ((m = msg_find(l.qid, true)) != NULL && m->msgid[0] == '\0')
            snprintf(m->msgid, sizeof(m->msgid), "%.99s", l.msgid);
        return;
    case POL_LOG_FROM:
        if ((m = msg_find(l.qid, true)) != NULL && m->from[0] == '\0')
            snprintf(m->from, sizeof(m->from), "%.99s", l.from);
        return;
    case POL_LOG_REMOVED:
        return; /* kept: delivery events may still be joined late */
    default:
        break;
    }
    ts = when(l.ts);
    if ((o->since && ts < o->since) || (o->until && ts > o->until))
        return;
    m = msg_find(l.qid, l.kind == POL_LOG_DELIVERY
        && strcmp(l.status, "deferred") == 0);
    if (l.kind == POL_LOG_EXPIRED) {
        /* qmgr names no recipient: the ones last deferred expire */
        for (int i = 0; m != NULL && i < m->ndeferred; i++) {
            snprintf(l.to, sizeof(l.to), "%s", m->deferred[i]);
            deliver(o, &l, NULL, m, ts);
        }
        return;
    }
    if (m != NULL && strcmp(l.status, "deferred") == 0) {
        int i;
        for (i = 0; i < m->ndeferred && strcmp(m->deferred[i], l.to); i++)
            ;
        if (i == m->ndeferred && i < 3)
            snprintf(m->deferred[m->ndeferred++], 64, "%.63s", l.to);
    }
    deliver(o, &l, tls_for(&l), m, ts);
}

/* parse_time - epoch seconds or YYYY-MM-DDTHH:MM[:SS] (local time) */
static time_t
parse_time(const char *s)
{
    struct tm tm = { 0 };
    char *end;
    long long v = strtoll(s, &end, 10);

    if (*end == '\0')
        return (time_t)v;
    if (strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL
        && strptime(s, "%Y-%m-%dT%H:%M", &tm) == NULL)
        return (time_t)-1;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

int
ctl_trace(int argc, char **argv)
{
    static const struct option lopts[] = {
        { "events", required_argument, NULL, 'e' },
        { "follow", no_argument, NULL, 'f' },
        { "summary", no_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "since", required_argument, NULL, 'S' },
        { "until", required_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    struct topts o = { .log = "-" };
    struct tail logt = { 0 }, evt[8];
    int ch;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "e:fsjS:U:", lopts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            if (o.nevents < 8)
                o.events[o.nevents++] = optarg;
            break;
        case 'f': o.follow = true; break;
        case 's': o.summary = true; break;
        case 'j': o.json = true; break;
        case 'S': o.since = parse_time(optarg); break;
        case 'U': o.until = parse_time(optarg); break;
        default: return EX_USAGE;
        }
    }
    if (optind < argc)
        o.log = argv[optind++];
    if (optind != argc || o.since == (time_t)-1 || o.until == (time_t)-1
        || (o.follow && o.summary)) {
        fprintf(stderr, "usage: outpolicyctl trace [--events FILE]... "
            "[--follow | --summary [--json]] [--since T] [--until T] "
            "[POSTFIX-LOG|-]\n  T: epoch seconds or YYYY-MM-DDTHH:MM[:SS]\n");
        return EX_USAGE;
    }
    msgs = calloc(QID_SLOTS, sizeof(*msgs));
    doms = calloc(DOM_SLOTS, sizeof(*doms));
    pend = o.follow ? calloc(PENDING, sizeof(*pend)) : NULL;
    if (o.follow) { /* SIGTERM/SIGINT: emit what waits, then exit */
        signal(SIGTERM, on_stop);
        signal(SIGINT, on_stop);
    }
    if (msgs == NULL || doms == NULL || (o.follow && pend == NULL))
        return 1;
    memset(evt, 0, sizeof(evt));
    logt.path = o.log;
    for (int i = 0; i < o.nevents; i++) {
        evt[i].path = o.events[i];
        if (!tail_open(&evt[i]))
            fprintf(stderr, "trace: cannot read %s\n", o.events[i]);
    }
    if (!tail_open(&logt)) {
        fprintf(stderr, "trace: cannot read %s\n", o.log);
        return 1;
    }
    for (;;) {
        for (int i = 0; i < o.nevents; i++)
            tail_lines(&evt[i], on_event_line, &o);
        tail_lines(&logt, on_log_line, &o);
        flush_pending(&o, !o.follow || stop_flag);
        if (!o.follow || stop_flag)
            break;
        usleep(250000);
    }
    if (o.summary)
        print_summary(o.json);
    if (isatty(2))
        fputc('\n', stderr);
    fprintf(stderr, "trace: %lu lines read, %lu used, %lu skipped\n", nlines,
        nused, nskipped);
    for (int i = 0; i < o.nevents; i++) {
        free(evt[i].line);
        if (evt[i].f != NULL)
            fclose(evt[i].f);
    }
    free(logt.line);
    if (logt.f != NULL && logt.f != stdin)
        fclose(logt.f);
    free(msgs);
    free(doms);
    free(pend);
    return 0;
}
