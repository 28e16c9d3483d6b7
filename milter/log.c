/*
 * milter/log.c - the daemon's log: syslog, or stderr in the foreground.
 *
 * The destination is chosen once at start-up; call sites just call
 * mf_log().  Lines are "QID: event key=value ...".  Thread-safe (syslog(3)
 * and one fprintf per line).  Never logs key material.
 * Licence: BSD-2-Clause.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mf.h"

static bool log_stderr;
static int log_facility = LOG_MAIL;
static const char *log_ident = "outpolicyd";
static atomic_int log_level = 1;

void
mf_log_init(const char *ident, int facility, bool to_stderr)
{
    log_ident = ident;
    log_facility = facility;
    log_stderr = to_stderr;
    if (!to_stderr)
        openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
mf_log_set_level(int level)
{
    atomic_store(&log_level, level);
}

/* wanted - does the configured level show prio? */
static bool
wanted(int prio)
{
    int level = atomic_load(&log_level);

    if (prio <= LOG_WARNING)
        return true;
    if (prio == LOG_NOTICE)
        return level >= 1;
    if (prio == LOG_INFO)
        return level >= 2;
    return level >= 3;
}

/* escape - control bytes, DEL and bytes of invalid UTF-8 as \xNN, so
 * nothing a client sends can forge a log line or break a log parser */
static const char *
escape(const char *in, char *out, size_t len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;

    while (*s && o + 5 < len) {
        size_t n = 0;
        if (*s >= 0x20 && *s < 0x7f)
            n = 1;
        else if (*s >= 0xc2 && *s <= 0xf4) { /* a whole UTF-8 sequence */
            size_t want = *s >= 0xf0 ? 4 : *s >= 0xe0 ? 3 : 2;
            for (n = 1; n < want && (s[n] & 0xc0) == 0x80; n++)
                ;
            if (n != want)
                n = 0;
        }
        if (n == 0) {
            o += (size_t)snprintf(out + o, len - o, "\\x%02x", *s);
            s++;
        } else if (o + n < len) {
            memcpy(out + o, s, n);
            o += n;
            s += n;
        } else
            break;
    }
    out[o] = '\0';
    return out;
}

/* emit - one finished line to the chosen destination */
static void
emit(int prio, const char *raw)
{
    char ts[32], buf[4096];
    const char *line = escape(raw, buf, sizeof(buf));
    struct tm tm;
    time_t now;

    if (!log_stderr) {
        syslog(log_facility | prio, "%s", line);
        return;
    }
    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s %s[%ld]: %s\n", ts, log_ident, (long)getpid(), line);
}

void
mf_log(int prio, const char *qid, const char *fmt, ...)
{
    char line[1200];
    int n = 0;
    va_list ap;

    if (!wanted(prio))
        return;
    if (qid != NULL)
        n = snprintf(line, sizeof(line), "%s: ", *qid ? qid : "NOQUEUE");
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    emit(prio, line);
}

void
mf_log_errno(int prio, const char *fmt, ...)
{
    char line[1024];
    int e = errno;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    mf_log(prio, NULL, "%s: %s", line, strerror(e));
}

/* hook_log - engine log lines */
static void
hook_log(void *arg, enum pol_prio prio, const char *line)
{
    (void)arg;
    if (wanted((int)prio))
        emit((int)prio, line);
}

/* hook_event - one event as a syslog message (events.syslog) */
static void
hook_event(void *arg, const char *json)
{
    (void)arg;
    if (log_stderr)
        fprintf(stderr, "%s\n", json);
    else
        syslog(log_facility | LOG_INFO, "%s", json);
}

const struct pol_hooks mf_hooks = { hook_log, hook_event, NULL, NULL };
