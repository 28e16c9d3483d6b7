/*
 * policy/dns.h - the one resolver of the project (dns.c, libunbound) and
 * the libspf2 DNS layer built on it (spf.c).  Internal to libpolicy.
 * Licence: BSD-2-Clause.
 */
#ifndef POL_DNS_H
#define POL_DNS_H

#include "internal.h"

enum pol_dns_rc {
    POL_DNS_OK = 0,   /* answer with data */
    POL_DNS_NODATA,   /* name exists, no record of that type */
    POL_DNS_NXDOMAIN, /* name does not exist */
    POL_DNS_TEMP,     /* timeout, SERVFAIL, network: retrying may work */
};

#define POL_DNS_MAX_RR 64 /* records kept from one answer */

struct pol_dns_answer {
    enum pol_dns_rc rc;
    int ttl;
    int secure; /* DNSSEC validated (only with a trust anchor) */
    int n;
    struct {
        unsigned char *data;
        size_t len;
    } rr[POL_DNS_MAX_RR];
};

struct pol_dns;

/**
 * A resolver: nameservers "IP" or "IP@PORT" (empty list: /etc/resolv.conf),
 * timeout per query in milliseconds.  Starts one background thread.
 */
struct pol_dns *pol_dns_new(const struct pol_strlist *nameservers,
    int timeout_ms, const char *trust_anchor_file, struct pol_err *err);
void pol_dns_free(struct pol_dns *d);

/**
 * Look up name/type (ns_t_a, ns_t_txt ...), waiting at most the timeout.
 * Thread-safe; never blocks longer than the timeout.
 * @return a new answer (free with pol_dns_answer_free), NULL when out of
 * memory.  rc says what happened.
 */
struct pol_dns_answer *pol_dns_query(struct pol_dns *d, const char *name,
    int type);
void pol_dns_answer_free(struct pol_dns_answer *a);

/** pol_txt_fn over a resolver (arg): 1 found, 0 none, -1 temporary. */
int pol_dns_txt_lookup(void *arg, const char *name, char *out, size_t len);

/** TXT rdata i as one string (character-strings joined); malloc'ed. */
char *pol_dns_txt(const struct pol_dns_answer *a, int i);
/** A domain name in wire form (uncompressed rdata) to text; 0 or -1. */
int pol_dns_name(const unsigned char *p, size_t len, char *out,
    size_t outlen);

#endif
