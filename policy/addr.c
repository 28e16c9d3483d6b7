/*
 * policy/addr.c - RFC 5322 address-list parsing for From:/Sender: values.
 *
 * Finds the addr-spec of each mailbox: "Name <a@b>", "a@b (comment)",
 * groups "team: a@b, c@d;", quoted local parts.  Strict about structure
 * (unbalanced quotes, comments or brackets, a mailbox without "@domain"
 * are errors) so that a header we cannot read is never silently taken
 * for a different sender.  Pure; thread-safe.
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <string.h>

#include "internal.h"

#define ADDR_MAX 998 /* a line is at most 998 octets (RFC 5322 2.1.1) */

struct scan {
    char out[ADDR_MAX + 1]; /* current mailbox, comments and FWS removed */
    size_t len;
    bool angle_seen; /* a <...> was found: it is the address */
    char angle[ADDR_MAX + 1];
    size_t alen;
};

/* skip_comment - s points at '('; return the char after the matching ')' */
static const char *
skip_comment(const char *s)
{
    int depth = 0;

    for (; *s != '\0'; s++) {
        if (*s == '\\' && s[1] != '\0')
            s++;
        else if (*s == '(')
            depth++;
        else if (*s == ')' && --depth == 0)
            return s + 1;
    }
    return NULL;
}

/* push - append c to the current buffer (angle or plain) */
static int
push(struct scan *sc, bool in_angle, char c)
{
    if (in_angle) {
        if (sc->alen >= ADDR_MAX)
            return -1;
        sc->angle[sc->alen++] = c;
    } else {
        if (sc->len >= ADDR_MAX)
            return -1;
        sc->out[sc->len++] = c;
    }
    return 0;
}

/* valid_addr - local@domain with a plausible domain */
static bool
valid_addr(const char *a)
{
    const char *at = strrchr(a, '@');

    if (at == NULL || at == a || at[1] == '\0')
        return false;
    for (const char *d = at + 1; *d != '\0'; d++)
        if (!(isalnum((unsigned char)*d) || *d == '-' || *d == '.'
                || *d == '[' || *d == ']' || *d == ':'
                || (unsigned char)*d >= 0x80))
            return false;
    return true;
}

/* finish - end of one mailbox: store its address */
static int
finish(struct pol_arena *a, struct scan *sc, const char **out, int max,
    int *n)
{
    const char *addr;
    size_t len;

    if (sc->angle_seen) {
        sc->angle[sc->alen] = '\0';
        addr = sc->angle;
        /* obsolete route "@a,@b:user@dom" */
        if (addr[0] == '@' && strchr(addr, ':') != NULL)
            addr = strchr(addr, ':') + 1;
        len = strlen(addr);
    } else {
        sc->out[sc->len] = '\0';
        addr = sc->out;
        len = sc->len;
    }
    if (len == 0) {
        if (sc->angle_seen)
            return -1; /* "<>" is not a mailbox in a header */
        goto reset;    /* empty element, e.g. "a@b, , c@d" */
    }
    if (!valid_addr(addr))
        return -1;
    if (*n < max && (out[*n] = pol_arena_strndup(a, addr, len)) == NULL)
        return -1;
    (*n)++;
reset:
    sc->len = sc->alen = 0;
    sc->angle_seen = false;
    return 0;
}

int
pol_addr_parse_list(struct pol_arena *a, const char *value,
    const char **out, int max)
{
    struct scan sc;
    bool in_angle = false, in_group = false;
    const char *s = value;
    int n = 0;

    memset(&sc, 0, sizeof(sc));
    while (*s != '\0') {
        char c = *s;
        if (c == '(') {
            if ((s = skip_comment(s)) == NULL)
                return -1;
            continue;
        }
        if (c == '"') { /* quoted string: copied with its quotes */
            if (push(&sc, in_angle, c) < 0)
                return -1;
            for (s++; *s != '"'; s++) {
                if (*s == '\0')
                    return -1;
                if (*s == '\\' && s[1] != '\0' && push(&sc, in_angle, *s++))
                    return -1;
                if (push(&sc, in_angle, *s) < 0)
                    return -1;
            }
            if (push(&sc, in_angle, '"') < 0)
                return -1;
            s++;
            continue;
        }
        if (in_angle) {
            if (c == '>')
                in_angle = false;
            else if (c == '<')
                return -1;
            else if (!isspace((unsigned char)c) && push(&sc, true, c) < 0)
                return -1;
        } else if (c == '<') {
            if (sc.angle_seen)
                return -1;
            in_angle = sc.angle_seen = true;
        } else if (c == '>') {
            return -1;
        } else if (c == ':' && !in_group && !sc.angle_seen) {
            in_group = true; /* display name of a group: drop it */
            sc.len = 0;
        } else if (c == ',' || (c == ';' && in_group)) {
            if (finish(a, &sc, out, max, &n) < 0)
                return -1;
            if (c == ';')
                in_group = false;
        } else if (!isspace((unsigned char)c)) {
            /* words after "<addr>" are ignored, as receivers do */
            if (!sc.angle_seen && push(&sc, false, c) < 0)
                return -1;
        }
        s++;
    }
    if (in_angle)
        return -1;
    if (finish(a, &sc, out, max, &n) < 0)
        return -1;
    return n;
}

const char *
pol_addr_domain(const char *addr)
{
    const char *at = addr != NULL ? strrchr(addr, '@') : NULL;

    return at != NULL ? at + 1 : "";
}
