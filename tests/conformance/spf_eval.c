/*
 * tests/conformance/spf_eval.c - SPF evaluation driver for the RFC 7208
 * test suite: libspf2 through the engine's own DNS layer (pol_spf_eval on
 * a pol_dns resolver pointed at a loopback DNS server).
 *
 * Reads commands on stdin, one per line, fields separated by TABs:
 *
 *   server PORT           use (and create on first use) a resolver for
 *                         127.0.0.1@PORT; drops the timeout rules
 *   timeout NAME TYPES    queries for NAME time out, except for the types
 *                         in TYPES (comma-separated numbers, "-" = none)
 *   eval ID IP MAILFROM HELO
 *                         prints "ID RESULT SIMULATED RAW ERROR COMMENT"
 *                         (TAB-separated): RESULT is pol_spf_eval's,
 *                         SIMULATED counts the look-ups that a timeout rule
 *                         answered, RAW and ERROR are what libspf2's
 *                         SPF_request_query_mailfrom gave the engine (its
 *                         SPF_result_t name and SPF_strerror of its return
 *                         value), COMMENT the SMTP comment.  A "-" input
 *                         field is empty.
 *
 * The timeout rules stand for the suite's TIMEOUT zone entries, which a
 * DNS server cannot express per type: the program is linked with
 * -Wl,--wrap=pol_dns_query, so every look-up libspf2 makes through the
 * engine's layer passes __wrap_pol_dns_query below, which answers a
 * matching look-up with POL_DNS_TEMP (what dns.c returns after its
 * timeout) and hands every other one to the real resolver.  It is also
 * linked with -Wl,--wrap=SPF_request_query_mailfrom, to see libspf2's own
 * answer beside the engine's mapping of it.
 *
 * Environment: SPF_EVAL_TIMEOUT (seconds per real look-up, default 3),
 * SPF_EVAL_DEBUG (set: every look-up and its outcome on stderr).
 * Licence: BSD-2-Clause.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <spf2/spf.h>

#include "policy/dns.h"
#include "policy/spf.h"

#define MAX_SERVERS 64
#define MAX_RULES 64

struct pol_dns_answer *__real_pol_dns_query(struct pol_dns *d,
    const char *name, int type);
struct pol_dns_answer *__wrap_pol_dns_query(struct pol_dns *d,
    const char *name, int type);

static struct {
    int port;
    struct pol_dns *dns;
    struct pol_spf *spf;
} servers[MAX_SERVERS];
static int nservers;

static struct {
    char name[256];
    char except[128]; /* ",16,99," */
} rules[MAX_RULES];
static int nrules;
static int simulated; /* look-ups answered by a rule in this eval */
static SPF_result_t raw_result;
static SPF_errcode_t raw_err;

SPF_errcode_t __real_SPF_request_query_mailfrom(SPF_request_t *req,
    SPF_response_t **resp);
SPF_errcode_t __wrap_SPF_request_query_mailfrom(SPF_request_t *req,
    SPF_response_t **resp);

SPF_errcode_t
__wrap_SPF_request_query_mailfrom(SPF_request_t *req, SPF_response_t **resp)
{
    raw_err = __real_SPF_request_query_mailfrom(req, resp);
    raw_result = *resp != NULL ? SPF_response_result(*resp)
                               : SPF_RESULT_INVALID;
    return raw_err;
}

/* raw_name - libspf2's name of a result */
static const char *
raw_name(SPF_result_t r)
{
    return r == SPF_RESULT_INVALID ? "invalid" : SPF_strresult(r);
}

/* same_name - DNS names equal, ignoring case and a trailing dot */
static int
same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la > 0 && a[la - 1] == '.')
        la--;
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

struct pol_dns_answer *
__wrap_pol_dns_query(struct pol_dns *d, const char *name, int type)
{
    static int debug = -1;
    struct pol_dns_answer *a;
    char t[16];

    if (debug < 0)
        debug = getenv("SPF_EVAL_DEBUG") != NULL;

    snprintf(t, sizeof(t), ",%d,", type);
    for (int i = 0; i < nrules; i++)
        if (same_name(rules[i].name, name)
            && strstr(rules[i].except, t) == NULL) {
            if ((a = calloc(1, sizeof(*a))) != NULL)
                a->rc = POL_DNS_TEMP;
            if (debug)
                fprintf(stderr, "spf_eval: %s type %d: simulated timeout\n",
                    name, type);
            simulated++;
            return a;
        }
    a = __real_pol_dns_query(d, name, type);
    if (debug)
        fprintf(stderr, "spf_eval: %s type %d: rc %d, %d records\n", name,
            type, a != NULL ? (int)a->rc : -1, a != NULL ? a->n : 0);
    return a;
}

/* server - the resolver and SPF state for 127.0.0.1@port */
static struct pol_spf *
server(int port)
{
    char ns[64], *v[1] = { ns };
    struct pol_strlist list = { v, 1 };
    struct pol_err err = { "" };
    const char *tmo = getenv("SPF_EVAL_TIMEOUT");
    int timeout_ms = (tmo != NULL ? atoi(tmo) : 3) * 1000;

    for (int i = 0; i < nservers; i++)
        if (servers[i].port == port)
            return servers[i].spf;
    if (nservers == MAX_SERVERS || timeout_ms <= 0)
        return NULL;
    snprintf(ns, sizeof(ns), "127.0.0.1@%d", port);
    servers[nservers].dns = pol_dns_new(&list, timeout_ms, NULL, &err);
    if (servers[nservers].dns == NULL
        || (servers[nservers].spf = pol_spf_new(servers[nservers].dns,
                &err)) == NULL) {
        fprintf(stderr, "spf_eval: %s: %s\n", ns, err.msg);
        pol_dns_free(servers[nservers].dns);
        return NULL;
    }
    servers[nservers].port = port;
    return servers[nservers++].spf;
}

/* split - TAB-separated fields of line, in place; "-" is empty */
static int
split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;

    line[strcspn(line, "\r\n")] = '\0';
    while (n < max && p != NULL) {
        f[n++] = p;
        if ((p = strchr(p, '\t')) != NULL)
            *p++ = '\0';
    }
    for (int i = 0; i < n; i++)
        if (strcmp(f[i], "-") == 0)
            f[i][0] = '\0';
    return n;
}

/* clean - the comment on one line (no TABs or line ends) */
static void
clean(char *s)
{
    for (; *s; s++)
        if (*s == '\t' || *s == '\r' || *s == '\n')
            *s = ' ';
}

int
main(void)
{
    char line[4096], why[512], *f[8];
    struct pol_spf *cur = NULL;
    int rc = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        int n = split(line, f, 8);
        if (n >= 2 && strcmp(f[0], "server") == 0) {
            nrules = 0;
            if ((cur = server(atoi(f[1]))) == NULL)
                rc = 1;
        } else if (n >= 3 && strcmp(f[0], "timeout") == 0
            && nrules < MAX_RULES) {
            snprintf(rules[nrules].name, sizeof(rules[0].name), "%s", f[1]);
            snprintf(rules[nrules].except, sizeof(rules[0].except), ",%s,",
                f[2]);
            nrules++;
        } else if (n >= 5 && strcmp(f[0], "eval") == 0) {
            enum pol_spf_result r = POL_SPF_TEMPERROR;
            simulated = 0;
            raw_result = SPF_RESULT_INVALID;
            raw_err = SPF_E_SUCCESS;
            why[0] = '\0';
            if (cur != NULL)
                r = pol_spf_eval(cur, f[2], f[3], f[4], why, sizeof(why));
            else
                snprintf(why, sizeof(why), "no server");
            clean(why);
            printf("%s\t%s\t%d\t%s\t%s\t%s\n", f[1],
                pol_spf_result_name(r), simulated, raw_name(raw_result),
                raw_err == SPF_E_SUCCESS ? "-" : SPF_strerror(raw_err), why);
        } else if (n >= 1 && f[0][0] != '\0' && f[0][0] != '#') {
            fprintf(stderr, "spf_eval: bad command: %s\n", f[0]);
            rc = 1;
        }
    }
    for (int i = 0; i < nservers; i++) {
        pol_spf_free(servers[i].spf);
        pol_dns_free(servers[i].dns);
    }
    return rc;
}
