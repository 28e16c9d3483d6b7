/*
 * policy/canon.c - canonicalization for the ARC signer and verifier
 * (RFC 6376 3.4, used by RFC 8617): header fields, and the body streamed
 * into SHA-256 chunk by chunk.
 *
 * The body state machine holds back only what canonicalization may still
 * drop: trailing empty lines (counted, not stored) and, for relaxed, the
 * white space of the current line (a flag).  Memory is constant whatever
 * the body size.  One hasher per use; not shared between threads.
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "canon.h"

char *
pol_canon_header(struct pol_arena *a, const char *name, const char *value,
    bool relaxed)
{
    size_t nl = strlen(name), vl = strlen(value), o = 0, start;
    char *out = pol_arena_alloc(a, nl + vl + 2);
    bool space = false;

    if (out == NULL)
        return NULL;
    if (!relaxed) {
        memcpy(out, name, nl);
        out[nl] = ':';
        memcpy(out + nl + 1, value, vl + 1);
        return out;
    }
    for (size_t i = 0; i < nl; i++)
        out[o++] = (char)tolower((unsigned char)name[i]);
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
        o--;
    out[o++] = ':';
    start = o;
    for (size_t i = 0; i < vl; i++) {
        char c = value[i];
        if (c == '\r' || c == '\n')
            continue; /* unfold */
        if (c == ' ' || c == '\t') {
            space = true;
            continue;
        }
        if (space && o > start) /* none right after the name's colon */
            out[o++] = ' ';
        space = false;
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

#define HASH_BUF 16384 /* canonical bytes gathered before one digest update */

struct pol_bodyhash {
    EVP_MD_CTX *md;
    size_t blen;
    bool relaxed;
    long long limit;   /* bytes still to hash, -1 = no l= */
    unsigned long empty; /* empty lines held back */
    bool wsp;          /* relaxed: white space pending in this line */
    bool line_started; /* bytes seen on the current line */
    bool cr;           /* last byte was CR */
    bool any;          /* any non-empty line hashed */
    unsigned char buf[HASH_BUF]; /* last: not zeroed at creation */
};

struct pol_bodyhash *
pol_bodyhash_new(bool relaxed, long long limit)
{
    struct pol_bodyhash *h = malloc(sizeof(*h));

    if (h != NULL)
        memset(h, 0, offsetof(struct pol_bodyhash, buf));
    if (h == NULL || (h->md = EVP_MD_CTX_new()) == NULL
        || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
        if (h != NULL)
            EVP_MD_CTX_free(h->md);
        free(h);
        return NULL;
    }
    h->relaxed = relaxed;
    h->limit = limit;
    return h;
}

/* emit - canonical bytes to the digest through a buffer (the state machine
 * emits runs of unchanged bytes, and single bytes around line ends and
 * white space), within the l= limit */
static void
emit(struct pol_bodyhash *h, const char *p, size_t n)
{
    if (h->limit >= 0) {
        if ((long long)n > h->limit)
            n = (size_t)h->limit;
        h->limit -= (long long)n;
    }
    if (h->blen + n > HASH_BUF) {
        EVP_DigestUpdate(h->md, h->buf, h->blen);
        h->blen = 0;
    }
    if (n > HASH_BUF) {
        EVP_DigestUpdate(h->md, p, n);
        return;
    }
    memcpy(h->buf + h->blen, p, n);
    h->blen += n;
}

/* end_line - a line ended: hold it if empty, else flush held lines */
static void
end_line(struct pol_bodyhash *h)
{
    if (!h->line_started) {
        h->empty++;
    } else {
        h->wsp = false;
        emit(h, "\r\n", 2);
        h->any = true;
    }
    h->line_started = false;
    h->wsp = false;
}

/* start_content - first visible byte of a line: flush held empty lines */
static void
start_content(struct pol_bodyhash *h)
{
    if (!h->line_started) {
        for (; h->empty > 0; h->empty--)
            emit(h, "\r\n", 2);
        h->line_started = true;
    }
}

/* content - n bytes of line content: first the held empty lines and the
 * white space collapsed before them (relaxed), then the bytes */
static void
content(struct pol_bodyhash *h, const char *p, size_t n)
{
    start_content(h);
    if (h->wsp) {
        emit(h, " ", 1);
        h->wsp = false;
    }
    emit(h, p, n);
}

/* plain - a byte that canonicalization passes through as it is */
static inline bool
plain(const struct pol_bodyhash *h, unsigned char c)
{
    return c != '\n' && c != '\r' && !(h->relaxed && (c == ' ' || c == '\t'));
}

/* plain_run - length of the run at p[0] (a plain byte) that comes out
 * unchanged: plain bytes, and for relaxed single spaces between them */
static size_t
plain_run(const struct pol_bodyhash *h, const unsigned char *p, size_t n)
{
    size_t j = 1;

    while (j < n) {
        if (plain(h, p[j]))
            j++;
        else if (h->relaxed && p[j] == ' ' && j + 1 < n && plain(h, p[j + 1]))
            j += 2;
        else
            break;
    }
    return j;
}

void
pol_bodyhash_update(struct pol_bodyhash *h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (!h->cr && plain(h, c)) { /* the common case: a whole run at once */
            size_t run = plain_run(h, p + i, n - i);
            content(h, (const char *)p + i, run);
            i += run - 1;
            continue;
        }
        if (c == '\n') {
            h->cr = false;
            end_line(h);
            continue;
        }
        if (h->cr) { /* a CR not followed by LF is content */
            h->cr = false;
            content(h, "\r", 1);
        }
        if (c == '\r') {
            h->cr = true;
            continue;
        }
        if (h->relaxed && (c == ' ' || c == '\t')) {
            h->wsp = true; /* collapsed, dropped at end of line */
            continue;
        }
        content(h, (const char *)&c, 1);
    }
}

int
pol_bodyhash_final(struct pol_bodyhash *h, char *out, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (h->cr) {
        content(h, "\r", 1);
        h->cr = false;
    }
    if (h->line_started || (h->relaxed && h->wsp)) {
        /* last line without CRLF: canonical form adds it */
        if (h->line_started)
            end_line(h);
    }
    if (!h->any && !h->relaxed)
        emit(h, "\r\n", 2); /* simple: an empty body is one CRLF */
    if (h->blen > 0)
        EVP_DigestUpdate(h->md, h->buf, h->blen);
    h->blen = 0;
    if (len < 45 || EVP_DigestFinal_ex(h->md, md, &mdlen) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    return 0;
}

void
pol_bodyhash_free(struct pol_bodyhash *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->md);
    free(h);
}
