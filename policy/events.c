/*
 * policy/events.c - event sinks: a JSON-lines file and syslog.
 *
 * Lines go to an O_APPEND descriptor in whole lines, so lines from
 * concurrent threads (and from an old and a new config after SIGHUP)
 * never interleave.  With events.on_error = "accept" they are buffered
 * (64 KB) and flushed when the buffer fills, when a second has passed
 * (pol_config_flush from the daemon's main loop), on reopen and at exit:
 * no syscall per message.  With "tempfail" each event is written at once,
 * so the message knows whether it was recorded.  The descriptor is
 * swapped under a mutex on reopen.  A failing file sink is reported at
 * most once a minute.
 * Licence: BSD-2-Clause.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define EVENTS_ERR_INTERVAL 60 /* seconds between repeated failure logs */
#define EVENTS_BUF (64 * 1024)

struct pol_events {
    pthread_mutex_t lock;
    char *file; /* NULL = no file sink */
    int fd;
    bool to_syslog;
    enum pol_action on_error;
    time_t last_err_log;
    unsigned long failures; /* since the last failure log line */
    char *buf;              /* buffered lines (on_error accept), or NULL */
    size_t len;
    time_t last_flush;
    int pending_err;        /* errno of a failed buffered flush */
};

struct pol_events *
pol_events_new(const char *file, bool to_syslog, enum pol_action on_error,
    bool buffer)
{
    struct pol_events *ev = calloc(1, sizeof(*ev));

    if (ev == NULL)
        return NULL;
    if (file != NULL && *file != '\0' && (ev->file = strdup(file)) == NULL) {
        free(ev);
        return NULL;
    }
    pthread_mutex_init(&ev->lock, NULL);
    ev->fd = -1;
    ev->to_syslog = to_syslog;
    ev->on_error = on_error;
    if (ev->file != NULL && buffer && on_error != POL_TEMPFAIL
        && (ev->buf = malloc(EVENTS_BUF)) == NULL) {
        free(ev->file);
        free(ev);
        return NULL;
    }
    return ev;
}

/* flush_locked - write the buffer; caller holds the lock.  0 or errno */
static int
flush_locked(struct pol_events *ev)
{
    size_t off = 0;
    int e = 0;

    while (off < ev->len) {
        ssize_t w;
        if (ev->fd < 0) {
            e = EBADF;
            break;
        }
        if ((w = write(ev->fd, ev->buf + off, ev->len - off)) <= 0) {
            e = w < 0 ? errno : ENOSPC;
            break;
        }
        off += (size_t)w;
    }
    ev->len = 0; /* what could not be written is dropped, and reported */
    return e;
}

void
pol_events_flush(struct pol_events *ev, time_t now, bool force)
{
    if (ev == NULL || ev->buf == NULL)
        return;
    pthread_mutex_lock(&ev->lock);
    if (ev->len > 0 && (force || now != ev->last_flush)) {
        int e = flush_locked(ev);
        if (e != 0)
            ev->pending_err = e;
        ev->last_flush = now;
    }
    pthread_mutex_unlock(&ev->lock);
}

void
pol_events_free(struct pol_events *ev)
{
    if (ev == NULL)
        return;
    pol_events_flush(ev, 0, true);
    if (ev->fd >= 0)
        close(ev->fd);
    free(ev->buf);
    pthread_mutex_destroy(&ev->lock);
    free(ev->file);
    free(ev);
}

enum pol_status
pol_events_open(struct pol_events *ev, struct pol_err *err)
{
    int fd, old;

    if (ev->file == NULL)
        return POL_OK;
    fd = open(ev->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err->msg, sizeof(err->msg),
            "events.file %s: cannot open: %s", ev->file, strerror(errno));
        return POL_ETEMP;
    }
    pthread_mutex_lock(&ev->lock);
    if (ev->buf != NULL && ev->len > 0)
        flush_locked(ev); /* lines written before a rotation stay there */
    old = ev->fd;
    ev->fd = fd;
    pthread_mutex_unlock(&ev->lock);
    if (old >= 0)
        close(old);
    return POL_OK;
}

/* note_failure - count a failed write; log it at most once a minute */
static void
note_failure(struct pol_events *ev, const struct pol_config *cfg, int e)
{
    time_t now = pol_now(cfg);
    unsigned long n;

    pthread_mutex_lock(&ev->lock);
    ev->failures++;
    if (now - ev->last_err_log < EVENTS_ERR_INTERVAL) {
        pthread_mutex_unlock(&ev->lock);
        return;
    }
    n = ev->failures;
    ev->failures = 0;
    ev->last_err_log = now;
    pthread_mutex_unlock(&ev->lock);
    pol_log(cfg, POL_LOG_ERR,
        "events write-error file=%s error=\"%s\" failed_events=%lu "
        "on_error=%s", ev->file ? ev->file : "-", strerror(e), n,
        pol_action_name(ev->on_error));
}

/* buffered - append a line; flush when full or a second old */
static enum pol_status
buffered(struct pol_events *ev, const struct pol_config *cfg,
    const char *line, size_t len)
{
    time_t now = pol_now(cfg);
    int e = 0;

    pthread_mutex_lock(&ev->lock);
    if (ev->len + len + 1 > EVENTS_BUF)
        e = flush_locked(ev);
    memcpy(ev->buf + ev->len, line, len);
    ev->buf[ev->len + len] = '\n';
    ev->len += len + 1;
    if (now != ev->last_flush) {
        int e2 = flush_locked(ev);
        e = e ? e : e2;
        ev->last_flush = now;
    }
    if (e == 0) {
        e = ev->pending_err;
        ev->pending_err = 0;
    }
    pthread_mutex_unlock(&ev->lock);
    if (e != 0)
        note_failure(ev, cfg, e); /* on_error is accept here */
    return POL_OK;
}

enum pol_status
pol_events_write(const struct pol_config *cfg, const char *line, size_t len)
{
    struct pol_events *ev = cfg->sink;
    const struct pol_hooks *hooks = &cfg->hooks;
    char *buf;
    ssize_t w = 0;
    int e = 0;

    if (ev == NULL) /* pol_config_quiet() out of memory: no sink at all */
        return POL_OK;
    if (ev->to_syslog && hooks->event_syslog != NULL)
        hooks->event_syslog(hooks->arg, line);
    if (ev->file == NULL)
        return POL_OK;
    if (ev->buf != NULL && len + 1 <= EVENTS_BUF)
        return buffered(ev, cfg, line, len);
    if ((buf = malloc(len + 1)) == NULL) {
        e = ENOMEM;
    } else {
        memcpy(buf, line, len);
        buf[len] = '\n';
        pthread_mutex_lock(&ev->lock);
        if (ev->fd < 0)
            e = EBADF;
        else if ((w = write(ev->fd, buf, len + 1)) != (ssize_t)(len + 1))
            e = w < 0 ? errno : ENOSPC;
        pthread_mutex_unlock(&ev->lock);
        free(buf);
    }
    if (e == 0)
        return POL_OK;
    note_failure(ev, cfg, e);
    return ev->on_error == POL_TEMPFAIL ? POL_ETEMP : POL_OK;
}

void
pol_event_timestamp(const struct pol_config *cfg, char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    if (cfg->hooks.clock != NULL) {
        ts.tv_sec = pol_now(cfg);
        ts.tv_nsec = 0;
    } else
        clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
        tm.tm_sec, ts.tv_nsec / 1000000);
}

void
pol_event_open(struct pol_json *j, const char *ts, const char *action,
    const char *outcome)
{
    pol_json_obj_begin(j, NULL);
    pol_json_str(j, "@timestamp", ts);
    pol_json_obj_begin(j, "event");
    pol_json_str(j, "kind", "event");
    pol_json_arr_begin(j, "category");
    pol_json_str(j, NULL, "email");
    pol_json_arr_end(j);
    pol_json_str(j, "action", action);
    if (outcome != NULL)
        pol_json_str(j, "outcome", outcome);
    pol_json_obj_end(j);
}
