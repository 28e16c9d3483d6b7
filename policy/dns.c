/*
 * policy/dns.c - DNS look-ups on libunbound with a hard per-query timeout.
 *
 * libunbound resolves in a background thread (ub_ctx_async); one pump
 * thread per resolver delivers finished answers (ub_process) to the
 * waiting callers.  A caller waits on its own condition variable until
 * the answer or its deadline; on timeout the query is cancelled, so a
 * slow or dead DNS server delays only the messages that need it, never
 * other connections.  Thread-safe.
 * Licence: BSD-2-Clause.
 */
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "dns.h"

struct pol_dns {
    struct ub_ctx *ub;
    int timeout_ms;
    pthread_t pump;
    int stop_pipe[2];
};

struct query {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs; /* caller + callback */
    bool done;
    int err;
    struct ub_result *res;
};

static void
query_unref(struct query *q)
{
    int left;

    pthread_mutex_lock(&q->lock);
    left = --q->refs;
    pthread_mutex_unlock(&q->lock);
    if (left > 0)
        return;
    if (q->res != NULL)
        ub_resolve_free(q->res);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

/* on_result - libunbound callback, runs in the pump thread */
static void
on_result(void *arg, int err, struct ub_result *res)
{
    struct query *q = arg;

    pthread_mutex_lock(&q->lock);
    q->err = err;
    q->res = res;
    q->done = true;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    query_unref(q);
}

/* pump - deliver finished answers until told to stop */
static void *
pump(void *arg)
{
    struct pol_dns *d = arg;
    struct pollfd pfd[2] = {
        { .fd = ub_fd(d->ub), .events = POLLIN },
        { .fd = d->stop_pipe[0], .events = POLLIN },
    };

    for (;;) {
        if (poll(pfd, 2, 1000) < 0 && errno != EINTR)
            break;
        if (pfd[1].revents)
            break;
        if (pfd[0].revents)
            ub_process(d->ub);
    }
    return NULL;
}

/* set_servers - forwarders, or the system's resolv.conf */
static int
set_servers(struct pol_dns *d, const struct pol_strlist *ns,
    const char *anchor, struct pol_err *err)
{
    int r;

    /* the test servers, and local caches, live on 127.0.0.1 */
    ub_ctx_set_option(d->ub, "do-not-query-localhost:", "no");
    if (ns == NULL || ns->n == 0) {
        if ((r = ub_ctx_resolvconf(d->ub, NULL)) != 0) {
            snprintf(err->msg, sizeof(err->msg), "dns: /etc/resolv.conf: %s",
                ub_strerror(r));
            return -1;
        }
    }
    for (size_t i = 0; ns != NULL && i < ns->n; i++)
        if ((r = ub_ctx_set_fwd(d->ub, ns->v[i])) != 0) {
            snprintf(err->msg, sizeof(err->msg), "dns.nameservers: \"%s\": "
                "%s", ns->v[i], ub_strerror(r));
            return -1;
        }
    if (anchor != NULL && *anchor != '\0'
        && (r = ub_ctx_add_ta_file(d->ub, anchor)) != 0) {
        snprintf(err->msg, sizeof(err->msg), "dns.trust_anchor %s: %s",
            anchor, ub_strerror(r));
        return -1;
    }
    return 0;
}

struct pol_dns *
pol_dns_new(const struct pol_strlist *ns, int timeout_ms,
    const char *anchor, struct pol_err *err)
{
    struct pol_dns *d = calloc(1, sizeof(*d));

    if (d == NULL || (d->ub = ub_ctx_create()) == NULL) {
        snprintf(err->msg, sizeof(err->msg), "dns: cannot create resolver");
        free(d);
        return NULL;
    }
    d->timeout_ms = timeout_ms;
    d->stop_pipe[0] = d->stop_pipe[1] = -1;
    if (set_servers(d, ns, anchor, err) < 0 || ub_ctx_async(d->ub, 1) != 0
        || pipe2(d->stop_pipe, O_CLOEXEC) != 0
        || pthread_create(&d->pump, NULL, pump, d) != 0) {
        if (err->msg[0] == '\0')
            snprintf(err->msg, sizeof(err->msg), "dns: cannot start the "
                "resolver thread");
        if (d->stop_pipe[0] >= 0) {
            close(d->stop_pipe[0]);
            close(d->stop_pipe[1]);
        }
        ub_ctx_delete(d->ub);
        free(d);
        return NULL;
    }
    return d;
}

void
pol_dns_free(struct pol_dns *d)
{
    if (d == NULL)
        return;
    if (write(d->stop_pipe[1], "x", 1) == 1)
        pthread_join(d->pump, NULL);
    close(d->stop_pipe[0]);
    close(d->stop_pipe[1]);
    ub_ctx_delete(d->ub);
    free(d);
}

/* deadline - now + ms */
static struct timespec
deadline(int ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* fill - our answer from libunbound's result */
static void
fill(struct pol_dns_answer *a, const struct ub_result *r)
{
    a->ttl = r->ttl;
    a->secure = r->secure;
    if (r->rcode == 3 /* NXDOMAIN */) {
        a->rc = POL_DNS_NXDOMAIN;
        return;
    }
    if (r->rcode != 0 || r->bogus) {
        a->rc = POL_DNS_TEMP; /* SERVFAIL, REFUSED, DNSSEC bogus */
        return;
    }
    if (!r->havedata) {
        a->rc = POL_DNS_NODATA;
        return;
    }
    a->rc = POL_DNS_OK;
    for (int i = 0; r->data[i] != NULL && a->n < POL_DNS_MAX_RR; i++) {
        unsigned char *p = malloc((size_t)r->len[i] + 1);
        if (p == NULL)
            break;
        memcpy(p, r->data[i], (size_t)r->len[i]);
        p[r->len[i]] = '\0';
        a->rr[a->n].data = p;
        a->rr[a->n++].len = (size_t)r->len[i];
    }
}

/* name_ok - a name DNS can carry: labels 1..63, at most 253 octets */
static bool
name_ok(const char *name)
{
    size_t n = strlen(name), label = 0;

    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return strcmp(name, ".") == 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] != '.')
            label++;
        else if (label == 0)
            return false;
        else
            label = 0;
        if (label > 63)
            return false;
    }
    return label > 0;
}

struct pol_dns_answer *
pol_dns_query(struct pol_dns *d, const char *name, int type)
{
    struct pol_dns_answer *a = calloc(1, sizeof(*a));
    struct query *q = calloc(1, sizeof(*q));
    struct timespec until = deadline(d->timeout_ms);
    int id, rc = 0;

    if (a == NULL || q == NULL) {
        free(a);
        free(q);
        return NULL;
    }
    a->rc = POL_DNS_TEMP;
    if (!name_ok(name)) { /* such a name cannot exist */
        a->rc = POL_DNS_NXDOMAIN;
        free(q);
        return a;
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    q->refs = 2;
    if (ub_resolve_async(d->ub, name, type, ns_c_in, q, on_result, &id)
        != 0) {
        q->refs = 1;
        query_unref(q);
        return a;
    }
    pthread_mutex_lock(&q->lock);
    while (!q->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&q->cond, &q->lock, &until);
    if (q->done && q->err == 0 && q->res != NULL)
        fill(a, q->res);
    pthread_mutex_unlock(&q->lock);
    if (!q->done && ub_cancel(d->ub, id) == 0)
        query_unref(q); /* cancelled: the callback will never run */
    query_unref(q);
    return a;
}

int
pol_dns_txt_lookup(void *arg, const char *name, char *out, size_t len)
{
    struct pol_dns_answer *a;
    int rc = 0;

    if (arg == NULL || (a = pol_dns_query(arg, name, ns_t_txt)) == NULL)
        return -1;
    if (a->rc == POL_DNS_TEMP)
        rc = -1;
    else if (a->rc == POL_DNS_OK && a->n > 0) {
        char *t = pol_dns_txt(a, 0);
        if (t != NULL) {
            snprintf(out, len, "%s", t);
            free(t);
            rc = 1;
        }
    }
    pol_dns_answer_free(a);
    return rc;
}

void
pol_dns_answer_free(struct pol_dns_answer *a)
{
    if (a == NULL)
        return;
    for (int i = 0; i < a->n; i++)
        free(a->rr[i].data);
    free(a);
}

char *
pol_dns_txt(const struct pol_dns_answer *a, int i)
{
    const unsigned char *p = a->rr[i].data, *end = p + a->rr[i].len;
    char *out = malloc(a->rr[i].len + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    while (p < end) {
        size_t n = *p++;
        if (n > (size_t)(end - p))
            n = (size_t)(end - p);
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = '\0';
    return out;
}

int
pol_dns_name(const unsigned char *p, size_t len, char *out, size_t outlen)
{
    size_t o = 0, i = 0;

    while (i < len && p[i] != 0) {
        size_t n = p[i++];
        if (n > 63 || i + n > len || o + n + 2 > outlen)
            return -1;
        if (o > 0)
            out[o++] = '.';
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    if (i >= len || o >= outlen)
        return -1;
    out[o] = '\0';
    return 0;
}
