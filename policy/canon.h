/*
 * policy/canon.h - DKIM/ARC canonicalization (RFC 6376 3.4) and the
 * streamed body hash (canon.c), for the ARC code on OpenSSL.
 * Internal to libpolicy.
 * Licence: BSD-2-Clause.
 */
#ifndef POL_CANON_H
#define POL_CANON_H

#include "internal.h"

/**
 * Canonical form of one header field, "name:value" with no CRLF:
 * relaxed (lower-case name, unfolded, white space runs to one space,
 * none around the colon or at the end) or simple (as given; the caller
 * passes the exact field).  Allocated from a.
 */
char *pol_canon_header(struct pol_arena *a, const char *name,
    const char *value, bool relaxed);

struct pol_bodyhash;
/** SHA-256 body hash, relaxed or simple, optional length limit (l=, -1
 * = none).  NULL when out of memory. */
struct pol_bodyhash *pol_bodyhash_new(bool relaxed, long long limit);
/** Feed body bytes as sent (CRLF line ends; a bare LF counts as CRLF). */
void pol_bodyhash_update(struct pol_bodyhash *h, const unsigned char *p,
    size_t n);
/** Finish: base64 of the digest into out (at least 45 bytes). 0 / -1 */
int pol_bodyhash_final(struct pol_bodyhash *h, char *out, size_t len);
void pol_bodyhash_free(struct pol_bodyhash *h);

#endif
