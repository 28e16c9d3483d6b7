/*
 * policy/verdict.c - verdicts, SMTP replies, engine logging helpers.
 * Thread-safe (no shared state).
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const action_names[] = {
    [POL_ACCEPT] = "accept",
    [POL_WARN] = "warn",
    [POL_QUARANTINE] = "quarantine",
    [POL_TEMPFAIL] = "tempfail",
    [POL_REJECT] = "reject",
};

const char *
pol_action_name(enum pol_action a)
{
    if ((unsigned)a < sizeof(action_names) / sizeof(action_names[0]))
        return action_names[a];
    return "unknown";
}

void
pol_verdict_init(struct pol_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->action = POL_ACCEPT;
}

void
pol_verdict_set(struct pol_verdict *v, enum pol_action action,
    const char *check, const char *fmt, ...)
{
    va_list ap;

    if (action == POL_ACCEPT || action < v->action
        || (action == v->action && v->check != NULL))
        return;
    v->action = action;
    v->check = check;
    va_start(ap, fmt);
    vsnprintf(v->reply, sizeof(v->reply), fmt, ap);
    va_end(ap);
}

int
pol_reply_split(const char *reply, char *rcode, char *xcode,
    const char **text)
{
    const char *p = reply;
    size_t n;

    if (reply == NULL || strlen(reply) < 4)
        return -1;
    if (!(p[0] == '4' || p[0] == '5') || !isdigit((unsigned char)p[1])
        || !isdigit((unsigned char)p[2]) || p[3] != ' ')
        return -1;
    memcpy(rcode, p, 3);
    rcode[3] = '\0';
    p += 4;
    /* enhanced status: d.ddd.ddd with the same class as the reply */
    n = strspn(p, "0123456789.");
    if (n < 5 || n > 11 || p[0] != reply[0] || p[1] != '.' || p[n] != ' ')
        return -1;
    memcpy(xcode, p, n);
    xcode[n] = '\0';
    *text = p + n + 1;
    return 0;
}

void
pol_log(const struct pol_config *cfg, enum pol_prio prio, const char *fmt,
    ...)
{
    char line[1024];
    va_list ap;

    if (cfg == NULL || cfg->hooks.log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    cfg->hooks.log(cfg->hooks.arg, prio, line);
}

time_t
pol_now(const struct pol_config *cfg)
{
    if (cfg != NULL && cfg->hooks.clock != NULL)
        return cfg->hooks.clock(cfg->hooks.arg);
    return time(NULL);
}
