/*
 * policy/addrlist.c - IPv4/IPv6 address and CIDR lists, sender lists.
 *
 * Lists are built once at config load and read-only afterwards, so
 * matching is thread-safe.  IPv4-mapped IPv6 addresses (::ffff:a.b.c.d)
 * match IPv4 entries.
 * Licence: BSD-2-Clause.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

struct pol_addrlist {
    struct pol_addrlist *next;
    int family;
    unsigned char net[16];
    int prefix;
};

/* parse_addr - textual address to family + 16-byte buffer (v4 in [0..3]) */
static int
parse_addr(const char *s, int *family, unsigned char *out)
{
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out) == 1) {
        static const unsigned char mapped[12] =
            { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(out, mapped, 12) == 0) {
            memmove(out, out + 12, 4);
            memset(out + 4, 0, 12);
            *family = AF_INET;
        } else
            *family = AF_INET6;
        return 0;
    }
    return -1;
}

/* prefix_match - first bits of a and b are equal */
static bool
prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

int
pol_addrlist_add(struct pol_addrlist **l, const char *spec, char *why,
    size_t whylen)
{
    char host[64];
    const char *slash = strchr(spec, '/');
    size_t hlen = slash ? (size_t)(slash - spec) : strlen(spec);
    struct pol_addrlist *e;
    int family, max, prefix;
    unsigned char addr[16];

    if (hlen == 0 || hlen >= sizeof(host)) {
        snprintf(why, whylen, "\"%s\" is not an IP address or CIDR block",
            spec);
        return -1;
    }
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    if (strchr(host, '.') != NULL && strchr(host, ':') == NULL
        && inet_pton(AF_INET, host, addr) != 1) {
        snprintf(why, whylen, "\"%s\" is not an IPv4 address", host);
        return -1;
    }
    if (parse_addr(host, &family, addr) != 0) {
        snprintf(why, whylen, "\"%s\" is not an IP address", host);
        return -1;
    }
    /* the prefix counts bits of the address as written: a v4-mapped v6
     * block "::ffff:10.0.0.0/104" is the v4 block 10.0.0.0/8 */
    max = strchr(host, ':') != NULL ? 128 : 32;
    prefix = max;
    if (slash != NULL) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || p < 0 || p > max) {
            snprintf(why, whylen, "\"%s\": prefix length must be 0..%d",
                spec, max);
            return -1;
        }
        prefix = (int)p;
    }
    if (max == 128 && family == AF_INET) {
        if (prefix < 96) {
            snprintf(why, whylen, "\"%s\": a v4-mapped block needs a "
                "prefix of at least 96", spec);
            return -1;
        }
        prefix -= 96;
    }
    {
        unsigned char masked[16];
        memcpy(masked, addr, 16);
        for (int i = 0; i < 16; i++) {
            int bits = prefix - i * 8;
            if (bits <= 0)
                masked[i] = 0;
            else if (bits < 8)
                masked[i] &= (unsigned char)(0xff << (8 - bits));
        }
        if (memcmp(masked, addr, 16) != 0) {
            snprintf(why, whylen,
                "\"%s\" has host bits set beyond /%d", spec, prefix);
            return -1;
        }
    }
    if ((e = calloc(1, sizeof(*e))) == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    e->family = family;
    memcpy(e->net, addr, 16);
    e->prefix = prefix;
    e->next = *l;
    *l = e;
    return 0;
}

bool
pol_addrlist_match(const struct pol_addrlist *l, const char *addr)
{
    unsigned char a[16];
    int family;

    if (addr == NULL || parse_addr(addr, &family, a) != 0)
        return false;
    for (; l != NULL; l = l->next)
        if (l->family == family && prefix_match(l->net, a, l->prefix))
            return true;
    return false;
}

void
pol_addrlist_free(struct pol_addrlist *l)
{
    struct pol_addrlist *next;

    for (; l != NULL; l = next) {
        next = l->next;
        free(l);
    }
}

void
pol_strlist_clear(struct pol_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

bool
pol_senderlist_match(const struct pol_strlist *l, const char *addr)
{
    const char *dom = pol_addr_domain(addr);

    for (size_t i = 0; i < l->n; i++) {
        const char *e = l->v[i];
        if (e[0] == '@') {
            if (*dom != '\0' && strcasecmp(e + 1, dom) == 0)
                return true;
        } else if (strcasecmp(e, addr) == 0)
            return true;
    }
    return false;
}
