/*
 * miltload - replay messages at a milter socket, measure the milter alone.
 *
 * A small MTA-side client of the milter protocol (version 6, as Postfix and
 * Sendmail speak it): option negotiation, connect, helo, mail, rcpt, data,
 * headers, end of headers, body chunks, end of message, quit.  It honours the
 * protocol flags the milter asks for (skipped stages, no-reply stages, leading
 * space in header values, SMFIR_SKIP during the body), reads every reply, and
 * at end of message reads the modification actions (add/insert/change header,
 * recipients, body, quarantine, progress) until the final verdict.
 *
 * C threads each open their own connections and take messages until N are
 * done or T seconds have passed; each message gets its own milter connection
 * (as Postfix does for one message per SMTP session, smtp-source's default)
 * unless -r says to send several over one connection.  Prints msgs/s and
 * p50/p99/max latency per message (connect to final verdict), the verdicts,
 * and how many header actions came back per message.  Exit status 0 only if
 * every message got accept/continue; 1 otherwise (then the figures are not
 * a speed: the summary line says INVALID).
 *
 * Bounded: -n caps the count, -t the duration, -T every read and write.
 *
 *   miltload -s unix:/run/x.sock|inet:PORT@HOST -m FILE [-m FILE...]
 *            [-c CONC] [-n N] [-t SECONDS] [-r PER_CONN] [-f FROM] [-R RCPT]
 *            [-a CLIENT_ADDR] [-T IO_TIMEOUT] [-N] [-v]
 *
 * Build: cc -O2 -pthread -o miltload miltload.c   (see tests/bench/build.sh)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* commands (MTA -> milter) */
#define C_ABORT 'A'
#define C_BODY 'B'
#define C_CONNECT 'C'
#define C_MACRO 'D'
#define C_BODYEOB 'E'
#define C_HELO 'H'
#define C_HEADER 'L'
#define C_MAIL 'M'
#define C_EOH 'N'
#define C_OPTNEG 'O'
#define C_QUIT 'Q'
#define C_RCPT 'R'
#define C_DATA 'T'

/* replies (milter -> MTA) */
#define R_ADDRCPT '+'
#define R_DELRCPT '-'
#define R_ADDRCPT_PAR '2'
#define R_SHUTDOWN '4'
#define R_ACCEPT 'a'
#define R_REPLBODY 'b'
#define R_CONTINUE 'c'
#define R_DISCARD 'd'
#define R_CHGFROM 'e'
#define R_CONN_FAIL 'f'
#define R_ADDHEADER 'h'
#define R_INSHEADER 'i'
#define R_SETSYMLIST 'l'
#define R_CHGHEADER 'm'
#define R_PROGRESS 'p'
#define R_QUARANTINE 'q'
#define R_REJECT 'r'
#define R_SKIP 's'
#define R_TEMPFAIL 't'
#define R_REPLYCODE 'y'

/* protocol flags */
#define P_NOCONNECT 0x1
#define P_NOHELO 0x2
#define P_NOMAIL 0x4
#define P_NORCPT 0x8
#define P_NOBODY 0x10
#define P_NOHDRS 0x20
#define P_NOEOH 0x40
#define P_NR_HDR 0x80
#define P_NOUNKNOWN 0x100
#define P_NODATA 0x200
#define P_SKIP 0x400
#define P_RCPT_REJ 0x800
#define P_NR_CONN 0x1000
#define P_NR_HELO 0x2000
#define P_NR_MAIL 0x4000
#define P_NR_RCPT 0x8000
#define P_NR_DATA 0x10000
#define P_NR_UNKN 0x20000
#define P_NR_EOH 0x40000
#define P_NR_BODY 0x80000
#define P_HDR_LEADSPC 0x100000
#define P_OFFER 0x1FFFFF /* everything up to HDR_LEADSPC; no MDS_* sizes */
#define A_OFFER 0x1FF    /* every action, SETSYMLIST included */

#define CHUNK 65535 /* MILTER_CHUNK_SIZE */
#define MAXREPLY (1024 * 1024)

struct header {
    char *name;
    char *value; /* without the leading space; folded lines joined by "\n" */
    int leadspc; /* the value had a leading space */
};

struct message {
    const char *path;
    struct header *hdrs;
    size_t nhdrs;
    char *body; /* CRLF line ends */
    size_t bodylen;
};

/* options */
static const char *opt_sock;
static struct message *msgs;
static size_t nmsgs;
static int opt_conc = 1;
static long opt_n = 1000;
static int opt_n_given;
static double opt_t = 0;
static int opt_per_conn = 1;
static const char *opt_from = "<sender@bench.example>";
static const char *opt_rcpt = "<rcpt@remote.example>";
static const char *opt_client_addr = "127.0.0.1";
static int opt_io_timeout = 30;
static int opt_nodelay = 1;
static int opt_verbose = 0;

/* shared state */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long next_msg;      /* next message number to hand out */
static long done_msgs;     /* messages with a final verdict */
static double *lat;        /* latency per finished message, seconds */
static long nlat;
static long v_accept, v_continue, v_reject, v_tempfail, v_discard, v_other;
static long early_accept;  /* accepted before end of message */
static long io_errors;
static long hdr_actions;   /* add/insert/change header actions */
static long other_actions;
static volatile int stop_now;
static double t_deadline;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("miltload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* ------------------------------------------------------------ messages */

static char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* Load FILE: header fields up to the first empty line, then the body.  Line
 * ends may be LF or CRLF; the body is sent with CRLF, as Postfix does. */
static void load_message(const char *path, struct message *m)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf, *p, *end;
    size_t cap = 0;

    if (!f || fstat(fileno(f), &st) != 0)
        die("%s: %s", path, strerror(errno));
    buf = xmalloc((size_t)st.st_size + 1);
    if (st.st_size && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        die("%s: short read", path);
    fclose(f);
    buf[st.st_size] = 0;
    end = buf + st.st_size;
    memset(m, 0, sizeof *m);
    m->path = path;

    p = buf;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
        char *next = eol ? eol + 1 : end;
        if (len && p[len - 1] == '\r')
            len--;
        if (len == 0) { /* end of header */
            p = next;
            break;
        }
        if ((*p == ' ' || *p == '\t') && m->nhdrs) { /* continuation */
            struct header *h = &m->hdrs[m->nhdrs - 1];
            size_t ol = strlen(h->value);
            h->value = realloc(h->value, ol + 1 + len + 1);
            if (!h->value)
                die("out of memory");
            h->value[ol] = '\n';
            memcpy(h->value + ol + 1, p, len);
            h->value[ol + 1 + len] = 0;
        } else {
            char *colon = memchr(p, ':', len);
            struct header *h;
            if (!colon)
                die("%s: header line without a colon: %.*s", path, (int)len, p);
            if (m->nhdrs == cap) {
                cap = cap ? cap * 2 : 16;
                m->hdrs = realloc(m->hdrs, cap * sizeof *m->hdrs);
                if (!m->hdrs)
                    die("out of memory");
            }
            h = &m->hdrs[m->nhdrs++];
            h->name = xstrndup(p, (size_t)(colon - p));
            colon++;
            h->leadspc = (colon < p + len && *colon == ' ');
            if (h->leadspc)
                colon++;
            h->value = xstrndup(colon, (size_t)(p + len - colon));
        }
        p = next;
    }

    /* body: convert to CRLF */
    {
        size_t n = (size_t)(end - p), o = 0;
        char *b = xmalloc(n * 2 + 2);
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
                b[o++] = '\r';
            b[o++] = p[i];
        }
        m->body = b;
        m->bodylen = o;
    }
    free(buf);
}

/* ------------------------------------------------------------ I/O */

struct conn {
    int fd;
    uint32_t proto; /* negotiated protocol flags */
    uint32_t actions;
    char *rbuf;     /* reply data */
    uint32_t rlen;
    char rcmd;
};

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* send one packet: len(4) cmd(1) data, one writev = one segment's worth */
static int send_cmd(struct conn *c, char cmd, const void *data, size_t len)
{
    uint32_t nl = htonl((uint32_t)(len + 1));
    struct iovec iov[3] = {
        { &nl, 4 }, { &cmd, 1 }, { (void *)data, len },
    };
    return write_all(c->fd, iov, len ? 3 : 2);
}

static int read_reply(struct conn *c)
{
    uint32_t nl, len;
    if (read_all(c->fd, &nl, 4) != 0)
        return -1;
    len = ntohl(nl);
    if (len < 1 || len > MAXREPLY)
        return -1;
    if (read_all(c->fd, &c->rcmd, 1) != 0)
        return -1;
    len--;
    c->rbuf = realloc(c->rbuf, len + 1);
    if (!c->rbuf)
        die("out of memory");
    if (len && read_all(c->fd, c->rbuf, len) != 0)
        return -1;
    c->rbuf[len] = 0;
    c->rlen = len;
    return 0;
}

/* builder for NUL-separated argument lists */
struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const void *s, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            die("out of memory");
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_str0(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s) + 1);
}

static int send_macros(struct conn *c, char stage, const char *const *kv)
{
    struct sbuf b = { 0 };
    int r;
    sb_add(&b, &stage, 1);
    for (; kv[0]; kv += 2) {
        sb_str0(&b, kv[0]);
        sb_str0(&b, kv[1]);
    }
    r = send_cmd(c, C_MACRO, b.p, b.len);
    free(b.p);
    return r;
}

static int connect_socket(void)
{
    int fd = -1;
    struct timeval tv = { opt_io_timeout, 0 };

    if (strncmp(opt_sock, "unix:", 5) == 0 || strncmp(opt_sock, "local:", 6) == 0 ||
        opt_sock[0] == '/') {
        const char *path = strchr(opt_sock, ':') && opt_sock[0] != '/'
                               ? strchr(opt_sock, ':') + 1 : opt_sock;
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sun.sun_path)
            die("socket path too long: %s", path);
        strcpy(sun.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
            goto fail;
    } else if (strncmp(opt_sock, "inet:", 5) == 0 || strncmp(opt_sock, "inet6:", 6) == 0) {
        char port[32], host[256];
        const char *spec = strchr(opt_sock, ':') + 1, *at = strchr(spec, '@');
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
        int one = 1;
        if (!at || (size_t)(at - spec) >= sizeof port || strlen(at + 1) >= sizeof host)
            die("bad socket %s (inet:PORT@HOST)", opt_sock);
        memcpy(port, spec, (size_t)(at - spec));
        port[at - spec] = 0;
        strcpy(host, at + 1);
        hints.ai_family = opt_sock[4] == '6' ? AF_INET6 : AF_INET;
        if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
            die("cannot resolve %s", opt_sock);
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && opt_nodelay)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            freeaddrinfo(ai);
            goto fail;
        }
        freeaddrinfo(ai);
    } else {
        die("socket must be unix:PATH or inet:PORT@HOST: %s", opt_sock);
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
fail:
    if (opt_verbose)
        fprintf(stderr, "miltload: connect %s: %s\n", opt_sock, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* ------------------------------------------------------------ session */

enum outcome { O_ERROR = -1, O_ACCEPT, O_CONTINUE, O_REJECT, O_TEMPFAIL, O_DISCARD,
               O_OTHER, O_EARLY_ACCEPT };

static enum outcome verdict_of(char r)
{
    switch (r) {
    case R_ACCEPT: return O_ACCEPT;
    case R_CONTINUE: return O_CONTINUE;
    case R_REJECT: return O_REJECT;
    case R_TEMPFAIL: return O_TEMPFAIL;
    case R_DISCARD: return O_DISCARD;
    case R_REPLYCODE: return O_OTHER;
    default: return O_ERROR;
    }
}

/* Wait for the reply to a stage; 1 = go on, 0 = message finished early
 * (*out set), -1 = I/O error.  *skip is set when the milter says SKIP. */
static int stage_reply(struct conn *c, enum outcome *out, int *skip)
{
    for (;;) {
        if (read_reply(c) != 0)
            return -1;
        if (c->rcmd == R_PROGRESS)
            continue;
        if (c->rcmd == R_CONTINUE)
            return 1;
        if (c->rcmd == R_SKIP && skip) {
            *skip = 1;
            return 1;
        }
        if (c->rcmd == R_ACCEPT) {
            *out = O_EARLY_ACCEPT;
            return 0;
        }
        *out = verdict_of(c->rcmd);
        if (*out == O_ERROR) {
            if (opt_verbose)
                fprintf(stderr, "miltload: unexpected reply '%c' before end of message\n",
                        c->rcmd);
            return -1;
        }
        if (opt_verbose && c->rcmd == R_REPLYCODE)
            fprintf(stderr, "miltload: reply: %s\n", c->rbuf);
        return 0;
    }
}

static int negotiate(struct conn *c)
{
    uint32_t v[3] = { htonl(6), htonl(A_OFFER), htonl(P_OFFER) };
    if (send_cmd(c, C_OPTNEG, v, sizeof v) != 0 || read_reply(c) != 0)
        return -1;
    if (c->rcmd != C_OPTNEG || c->rlen < 12) {
        if (opt_verbose)
            fprintf(stderr, "miltload: bad negotiation reply '%c'\n", c->rcmd);
        return -1;
    }
    memcpy(v, c->rbuf, 12);
    c->actions = ntohl(v[1]);
    c->proto = ntohl(v[2]);
    return 0;
}

static int open_session(struct conn *c, long id, enum outcome *out)
{
    static const char helo[] = "client.bench.example";
    struct sbuf b = { 0 };
    int r;
    const char *conn_macros[] = {
        "j", "mx.bench.example", "{daemon_name}", "bench", "{daemon_addr}", "127.0.0.1",
        "{client_addr}", opt_client_addr, "{client_name}", "localhost", NULL,
    };

    (void)id;
    c->fd = connect_socket();
    if (c->fd < 0)
        return -1;
    if (negotiate(c) != 0)
        return -1;
    if (!(c->proto & P_NOCONNECT)) {
        if (send_macros(c, C_CONNECT, conn_macros) != 0)
            return -1;
        sb_str0(&b, "localhost");
        sb_add(&b, "4", 1);
        uint16_t pn = htons(25000);
        sb_add(&b, &pn, 2);
        sb_str0(&b, opt_client_addr);
        r = send_cmd(c, C_CONNECT, b.p, b.len);
        free(b.p);
        if (r != 0)
            return -1;
        if (!(c->proto & P_NR_CONN) && (r = stage_reply(c, out, NULL)) != 1)
            return r;
    }
    if (!(c->proto & P_NOHELO)) {
        const char *m[] = { NULL };
        if (send_macros(c, C_HELO, m) != 0 || send_cmd(c, C_HELO, helo, sizeof helo) != 0)
            return -1;
        if (!(c->proto & P_NR_HELO) && (r = stage_reply(c, out, NULL)) != 1)
            return r;
    }
    return 1;
}

/* One transaction.  Returns 0 (verdict in *out) or -1 on an I/O error. */
static int transaction(struct conn *c, const struct message *m, long id, enum outcome *out,
                       long *nhdr, long *nother)
{
    char qid[32];
    int r, skip = 0;
    snprintf(qid, sizeof qid, "ML%010lX", (unsigned long)id + 1);
    const char *mail_macros[] = { "i", qid, "{mail_addr}", opt_from, NULL };
    const char *rcpt_macros[] = { "{rcpt_addr}", opt_rcpt, NULL };
    const char *eom_macros[] = { "i", qid, NULL };

    if (!(c->proto & P_NOMAIL)) {
        if (send_macros(c, C_MAIL, mail_macros) != 0 ||
            send_cmd(c, C_MAIL, opt_from, strlen(opt_from) + 1) != 0)
            return -1;
        if (!(c->proto & P_NR_MAIL) && (r = stage_reply(c, out, NULL)) != 1)
            return r < 0 ? -1 : 0;
    }
    if (!(c->proto & P_NORCPT)) {
        if (send_macros(c, C_RCPT, rcpt_macros) != 0 ||
            send_cmd(c, C_RCPT, opt_rcpt, strlen(opt_rcpt) + 1) != 0)
            return -1;
        if (!(c->proto & P_NR_RCPT) && (r = stage_reply(c, out, NULL)) != 1)
            return r < 0 ? -1 : 0;
    }
    if (!(c->proto & P_NODATA)) {
        if (send_cmd(c, C_DATA, NULL, 0) != 0)
            return -1;
        if (!(c->proto & P_NR_DATA) && (r = stage_reply(c, out, NULL)) != 1)
            return r < 0 ? -1 : 0;
    }
    if (!(c->proto & P_NOHDRS)) {
        for (size_t i = 0; i < m->nhdrs; i++) {
            const struct header *h = &m->hdrs[i];
            struct sbuf b = { 0 };
            sb_str0(&b, h->name);
            if (h->leadspc && (c->proto & P_HDR_LEADSPC))
                sb_add(&b, " ", 1);
            sb_str0(&b, h->value);
            r = send_cmd(c, C_HEADER, b.p, b.len);
            free(b.p);
            if (r != 0)
                return -1;
            if (!(c->proto & P_NR_HDR) && (r = stage_reply(c, out, NULL)) != 1)
                return r < 0 ? -1 : 0;
        }
    }
    if (!(c->proto & P_NOEOH)) {
        if (send_cmd(c, C_EOH, NULL, 0) != 0)
            return -1;
        if (!(c->proto & P_NR_EOH) && (r = stage_reply(c, out, NULL)) != 1)
            return r < 0 ? -1 : 0;
    }
    if (!(c->proto & P_NOBODY)) {
        for (size_t off = 0; off < m->bodylen && !skip; off += CHUNK) {
            size_t n = m->bodylen - off < CHUNK ? m->bodylen - off : CHUNK;
            if (send_cmd(c, C_BODY, m->body + off, n) != 0)
                return -1;
            if (!(c->proto & P_NR_BODY) && (r = stage_reply(c, out, &skip)) != 1)
                return r < 0 ? -1 : 0;
        }
    }
    if (send_macros(c, C_BODYEOB, eom_macros) != 0 || send_cmd(c, C_BODYEOB, NULL, 0) != 0)
        return -1;
    for (;;) {
        if (read_reply(c) != 0)
            return -1;
        switch (c->rcmd) {
        case R_ADDHEADER:
        case R_INSHEADER:
        case R_CHGHEADER:
            (*nhdr)++;
            if (opt_verbose > 1)
                fprintf(stderr, "miltload: %c %s\n", c->rcmd,
                        c->rcmd == R_ADDHEADER ? c->rbuf : c->rbuf + 4);
            continue;
        case R_ADDRCPT:
        case R_DELRCPT:
        case R_ADDRCPT_PAR:
        case R_CHGFROM:
        case R_REPLBODY:
        case R_QUARANTINE:
            (*nother)++;
            continue;
        case R_PROGRESS:
            continue;
        default:
            *out = verdict_of(c->rcmd);
            if (*out == O_ERROR)
                return -1;
            if (opt_verbose && c->rcmd == R_REPLYCODE)
                fprintf(stderr, "miltload: reply: %s\n", c->rbuf);
            return 0;
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long take_message(void)
{
    long id = -1;
    pthread_mutex_lock(&mu);
    if (!stop_now && next_msg < opt_n && (opt_t <= 0 || now() < t_deadline))
        id = next_msg++;
    pthread_mutex_unlock(&mu);
    return id;
}

static void record(enum outcome o, double secs, long nhdr, long nother)
{
    pthread_mutex_lock(&mu);
    done_msgs++;
    lat[nlat++] = secs;
    hdr_actions += nhdr;
    other_actions += nother;
    switch (o) {
    case O_ACCEPT: v_accept++; break;
    case O_CONTINUE: v_continue++; break;
    case O_REJECT: v_reject++; break;
    case O_TEMPFAIL: v_tempfail++; break;
    case O_DISCARD: v_discard++; break;
    case O_EARLY_ACCEPT: early_accept++; break;
    default: v_other++; break;
    }
    pthread_mutex_unlock(&mu);
}

static void count_error(void)
{
    pthread_mutex_lock(&mu);
    io_errors++;
    if (io_errors >= 20)
        stop_now = 1; /* a dead milter ends the run, bounded */
    pthread_mutex_unlock(&mu);
}

static void *worker(void *arg)
{
    struct conn c = { .fd = -1 };
    int in_conn = 0; /* messages sent on the open connection */
    long id;

    (void)arg;
    while ((id = take_message()) >= 0) {
        const struct message *m = &msgs[id % (long)nmsgs];
        enum outcome out = O_ERROR;
        long nhdr = 0, nother = 0;
        double t0 = now();
        int r = 1;

        if (c.fd < 0) {
            r = open_session(&c, id, &out);
            in_conn = 0;
        }
        if (r == 1)
            r = transaction(&c, m, id, &out, &nhdr, &nother) == 0 ? 0 : -1;
        if (r < 0) {
            count_error();
            if (c.fd >= 0)
                close(c.fd);
            c.fd = -1;
            continue;
        }
        record(out, now() - t0, nhdr, nother);
        in_conn++;
        if (r == 0 && out != O_ACCEPT && out != O_CONTINUE && out != O_EARLY_ACCEPT) {
            /* a rejected/tempfailed session: start over on a new connection */
            send_cmd(&c, C_QUIT, NULL, 0);
            close(c.fd);
            c.fd = -1;
        } else if (in_conn >= opt_per_conn) {
            send_cmd(&c, C_QUIT, NULL, 0);
            close(c.fd);
            c.fd = -1;
        }
    }
    if (c.fd >= 0) {
        send_cmd(&c, C_QUIT, NULL, 0);
        close(c.fd);
    }
    free(c.rbuf);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: miltload -s unix:PATH|inet:PORT@HOST -m FILE [-m FILE...]\n"
            "                [-c CONC] [-n N] [-t SECONDS] [-r PER_CONN] [-f FROM]\n"
            "                [-R RCPT] [-a CLIENT_ADDR] [-T IO_TIMEOUT] [-N] [-v]\n"
            "  -c  concurrent connections (default 1)\n"
            "  -n  messages to send (default 1000; with -t, the cap)\n"
            "  -t  stop handing out messages after SECONDS\n"
            "  -r  messages per milter connection (default 1, like Postfix with\n"
            "      one message per SMTP session)\n"
            "  -T  timeout of each read/write, seconds (default 30)\n"
            "  -N  leave Nagle on for the client's inet socket (default TCP_NODELAY)\n"
            "  -v  report errors and reply texts (-vv: header actions too)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int opt;
    pthread_t *th;
    double t0, el;
    size_t cap = 0;
    long ok;

    signal(SIGPIPE, SIG_IGN);
    while ((opt = getopt(argc, argv, "s:m:c:n:t:r:f:R:a:T:Nvh")) != -1) {
        switch (opt) {
        case 's': opt_sock = optarg; break;
        case 'm':
            if (nmsgs == cap) {
                cap = cap ? cap * 2 : 4;
                msgs = realloc(msgs, cap * sizeof *msgs);
                if (!msgs)
                    die("out of memory");
            }
            load_message(optarg, &msgs[nmsgs++]);
            break;
        case 'c': opt_conc = atoi(optarg); break;
        case 'n': opt_n = atol(optarg); opt_n_given = 1; break;
        case 't': opt_t = atof(optarg); break;
        case 'r': opt_per_conn = atoi(optarg); break;
        case 'f': opt_from = optarg; break;
        case 'R': opt_rcpt = optarg; break;
        case 'a': opt_client_addr = optarg; break;
        case 'T': opt_io_timeout = atoi(optarg); break;
        case 'N': opt_nodelay = 0; break;
        case 'v': opt_verbose++; break;
        default: usage();
        }
    }
    if (!opt_sock || !nmsgs || opt_conc < 1 || opt_conc > 1000 || opt_n < 1 ||
        opt_per_conn < 1 || opt_io_timeout < 1)
        usage();
    if (opt_t > 0 && !opt_n_given)
        opt_n = 100000000; /* -t alone: time-bounded */
    lat = xmalloc(sizeof *lat * (size_t)(opt_n < 10000000 ? opt_n : 10000000));
    if (opt_n > 10000000)
        opt_n = 10000000;

    th = xmalloc(sizeof *th * (size_t)opt_conc);
    t0 = now();
    t_deadline = t0 + opt_t;
    for (int i = 0; i < opt_conc; i++)
        if (pthread_create(&th[i], NULL, worker, NULL) != 0)
            die("pthread_create failed");
    for (int i = 0; i < opt_conc; i++)
        pthread_join(th[i], NULL);
    el = now() - t0;

    qsort(lat, (size_t)nlat, sizeof *lat, cmp_double);
    ok = v_accept + v_continue + early_accept;
    {
        double p50 = nlat ? lat[(nlat - 1) / 2] : 0;
        double p99 = nlat ? lat[(long)((nlat - 1) * 0.99)] : 0;
        double mx = nlat ? lat[nlat - 1] : 0;
        int valid = ok == done_msgs && io_errors == 0 && done_msgs > 0 &&
                    (opt_t > 0 || done_msgs == opt_n);
        printf("%s socket=%s conc=%d per_conn=%d msgs=%ld secs=%.3f rate=%.1f "
               "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f accept=%ld continue=%ld "
               "early_accept=%ld reject=%ld tempfail=%ld discard=%ld other=%ld "
               "io_errors=%ld hdr_actions_per_msg=%.2f other_actions=%ld\n",
               valid ? "RESULT" : "INVALID", opt_sock, opt_conc, opt_per_conn, done_msgs,
               el, done_msgs / el, p50 * 1e3, p99 * 1e3, mx * 1e3, v_accept, v_continue,
               early_accept, v_reject, v_tempfail, v_discard, v_other, io_errors,
               done_msgs ? (double)hdr_actions / done_msgs : 0.0, other_actions);
        return valid ? 0 : 1;
    }
}
