/*
 * milter/tlsmapd.c - serves the TLS policy map (policy/tlsmap.c) to
 * Postfix's smtp_tls_policy_maps over the socketmap protocol, in one
 * thread of its own: a poll() loop over the listening socket and every
 * client, non-blocking, so a slow or hostile client never delays others.
 *
 * Each request is answered from the current config (reload applies at
 * once).  Malformed or over-long requests get a PERM reply and the
 * connection is closed; idle connections are closed after IDLE_SECONDS
 * (Postfix itself closes them after 10 s), a request must be complete
 * within PARTIAL_SECONDS of its first byte, and when every slot is taken
 * the longest-idle client makes room: no set of slow clients can lock
 * Postfix out.
 * Licence: BSD-2-Clause.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mf.h"

#define MAX_CLIENTS 256
#define MAX_REQUEST 1100 /* "tlspolicy " + a next-hop, generously */
#define IDLE_SECONDS 30    /* an idle connection (Postfix's own: 10 s) */
#define PARTIAL_SECONDS 10 /* to finish a request once it has begun */

struct client {
    int fd;
    time_t last;    /* last complete request, or connect */
    time_t started; /* first byte of the pending request, 0 = none */
    size_t len;
    char buf[MAX_REQUEST + 16];
};

static int listen_fd = -1;
static int stop_pipe[2] = { -1, -1 };
static pthread_t tid;
static char *unix_path;

/* open_unix - bind a unix socket, refusing one another process serves */
static int
open_unix(const char *path, unsigned mode, uid_t uid, gid_t gid, char *why,
    size_t len)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(why, len, "path too long");
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        goto err;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(fd);
        snprintf(why, len, "another process is listening on it");
        return -1;
    }
    close(fd);
    unlink(path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0
        || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || chmod(path, (mode_t)mode) != 0
        || ((uid != (uid_t)-1 || gid != (gid_t)-1)
            && chown(path, uid, gid) != 0))
        goto err;
    unix_path = strdup(path);
    return fd;
err:
    snprintf(why, len, "%s", strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* open_inet - bind PORT@HOST */
static int
open_inet(const char *spec, char *why, size_t len)
{
    char port[16], *host;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_NUMERICSERV }, *ai = NULL;
    const char *at = strchr(spec, '@');
    int fd = -1, one = 1, r;

    snprintf(port, sizeof(port), "%.*s", (int)(at - spec), spec);
    host = (char *)at + 1;
    if ((r = getaddrinfo(host, port, &hints, &ai)) != 0) {
        snprintf(why, len, "%s", gai_strerror(r));
        return -1;
    }
    if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0
        || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0
        || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(why, len, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

int
mf_tlsmap_open(const char *spec, unsigned mode, const char *group,
    uid_t uid, gid_t run_gid, char *why, size_t len)
{
    gid_t gid = run_gid; /* like the milter socket: the run group */

    if (spec == NULL || *spec == '\0')
        return 0;
    if (*group != '\0') {
        struct group *gr = getgrnam(group);
        if (gr == NULL) {
            snprintf(why, len, "no such group \"%s\"", group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0)
        listen_fd = open_unix(strchr(spec, ':') + 1, mode, uid, gid, why,
            len);
    else
        listen_fd = open_inet(strchr(spec, ':') + 1, why, len);
    if (listen_fd < 0)
        return -1;
    if (listen(listen_fd, 64) != 0) {
        snprintf(why, len, "listen: %s", strerror(errno));
        return -1;
    }
    fcntl(listen_fd, F_SETFL, O_NONBLOCK);
    return 0;
}

/* serve - answer every complete request in c's buffer; -1: close */
static int
serve(struct client *c)
{
    for (;;) {
        const char *req;
        size_t rlen, used, n;
        char out[1024];
        int r = pol_netstring_parse(c->buf, c->len, MAX_REQUEST, &req, &rlen,
            &used);
        struct pol_config *cfg;
        if (r == 0)
            return c->len >= sizeof(c->buf) ? -1 : 0;
        if (r < 0) {
            n = pol_netstring_format(out, sizeof(out),
                "PERM malformed or over-long request");
            (void)!send(c->fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            mf_log(LOG_NOTICE, NULL, "tls-policy: malformed request, "
                "connection closed");
            return -1;
        }
        cfg = mf_config_get();
        n = pol_tlsmap_answer(cfg, req, rlen, out, sizeof(out));
        pol_config_unref(cfg);
        if (n == 0 || send(c->fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT)
                != (ssize_t)n)
            return -1;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
}

/* loop - the server thread */
static void *
loop(void *arg)
{
    static struct client cl[MAX_CLIENTS];
    struct pollfd pfd[MAX_CLIENTS + 2];
    int n = 0;

    (void)arg;
    for (;;) {
        int k = 0;
        time_t now = time(NULL);
        pfd[k++] = (struct pollfd){ .fd = stop_pipe[0], .events = POLLIN };
        pfd[k++] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
        for (int i = 0; i < n; i++)
            pfd[k++] = (struct pollfd){ .fd = cl[i].fd, .events = POLLIN };
        if (poll(pfd, (nfds_t)k, 1000) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents)
            break;
        for (int i = n - 1; i >= 0; i--) {
            struct client *c = &cl[i];
            bool drop = false;
            if (pfd[i + 2].revents) {
                ssize_t r = read(c->fd, c->buf + c->len,
                    sizeof(c->buf) - c->len);
                if (r <= 0)
                    drop = r == 0 || (errno != EAGAIN && errno != EINTR);
                else {
                    if (c->len == 0)
                        c->started = now;
                    c->len += (size_t)r;
                    drop = serve(c) < 0;
                    if (c->len == 0) { /* all answered */
                        c->started = 0;
                        c->last = now;
                    }
                }
            }
            if (!drop && ((c->started && now - c->started > PARTIAL_SECONDS)
                    || (!c->started && now - c->last > IDLE_SECONDS)))
                drop = true;
            if (drop) {
                close(c->fd);
                cl[i] = cl[--n];
            }
        }
        if (pfd[1].revents & POLLIN) {
            int fd;
            while ((fd = accept4(listen_fd, NULL, NULL,
                        SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                if (n == MAX_CLIENTS) { /* full: the longest idle goes */
                    int old = 0;
                    for (int i = 1; i < n; i++)
                        if (cl[i].last < cl[old].last)
                            old = i;
                    close(cl[old].fd);
                    cl[old] = cl[--n];
                }
                cl[n++] = (struct client){ .fd = fd, .last = now };
            }
        }
    }
    for (int i = 0; i < n; i++)
        close(cl[i].fd);
    return NULL;
}

int
mf_tlsmap_start(void)
{
    if (listen_fd < 0)
        return 0;
    if (pipe2(stop_pipe, O_CLOEXEC) != 0
        || pthread_create(&tid, NULL, loop, NULL) != 0)
        return -1;
    return 0;
}

void
mf_tlsmap_stop(void)
{
    if (listen_fd < 0)
        return;
    if (stop_pipe[1] >= 0 && write(stop_pipe[1], "x", 1) == 1)
        pthread_join(tid, NULL);
    close(listen_fd);
    listen_fd = -1;
    if (unix_path != NULL && unlink(unix_path) != 0 && errno != ENOENT)
        mf_log_errno(LOG_INFO, "cannot remove %s", unix_path);
}

void
mf_tlsmap_abandon(void)
{
    if (unix_path != NULL)
        unlink(unix_path);
}
