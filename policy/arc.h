/*
 * policy/arc.h - ARC (RFC 8617): tag lists, DKIM key records, chain
 * validation and sealing on OpenSSL 3 (arc.c, arckey.c).
 * Internal to libpolicy.
 * Licence: BSD-2-Clause.
 */
#ifndef POL_ARC_H
#define POL_ARC_H

#include "internal.h"

#define POL_ARC_MAX 50 /* RFC 8617 4.2.1 */
#define POL_TAGS_MAX 32

struct pol_tags {
    int n;
    struct {
        const char *name, *value;
    } t[POL_TAGS_MAX];
};

/**
 * Parse a DKIM-style tag list (RFC 6376 3.2) strictly: tag names
 * [A-Za-z][A-Za-z0-9_]*, no duplicates, white space around tokens
 * allowed.  Strings come from a.  0, or -1 with why.
 */
int pol_tags_parse(struct pol_arena *a, const char *list,
    struct pol_tags *t, char *why, size_t whylen);
const char *pol_tags_get(const struct pol_tags *t, const char *name);

/** Key look-up: TXT at name into out.  1 found, 0 none, -1 temporary. */
typedef int (*pol_txt_fn)(void *arg, const char *name, char *out,
    size_t len);

struct pol_pubkey;
/**
 * Fetch and parse the DKIM key record of selector._domainkey.domain:
 * k=rsa (SubjectPublicKeyInfo or RSAPublicKey) or k=ed25519 (raw 32).
 * Returns NULL with why (rc 0 = permanent, -1 = temporary).
 */
struct pol_pubkey *pol_pubkey_fetch(pol_txt_fn fn, void *arg,
    const char *selector, const char *domain, int *rc, char *why,
    size_t whylen);
void pol_pubkey_free(struct pol_pubkey *k);
/** Verify sig over a SHA-256 digest; alg "rsa-sha256"/"ed25519-sha256". */
bool pol_pubkey_verify(const struct pol_pubkey *k, const char *alg,
    const unsigned char *digest, const unsigned char *sig, size_t siglen);
/** Sign a SHA-256 digest with a private key (EVP_PKEY *); base64 into
 * out.  0 / -1. */
int pol_sign_digest(void *pkey, int alg, const unsigned char *digest,
    char *out, size_t len);

/** Base64 decode ignoring white space; returns length or -1. */
long pol_b64_decode(const char *in, unsigned char *out, size_t outlen);

/* ---- per message (arc.c) ---- */
struct pol_msg;
struct pol_arc;

/** End of headers: find the ARC sets, start the body hashes. */
enum pol_status pol_arc_eoh(struct pol_msg *m);
void pol_arc_body(struct pol_msg *m, const unsigned char *p, size_t n);
/** End of message: validate the chain (keys through fn). */
enum pol_status pol_arc_validate(struct pol_msg *m, pol_txt_fn fn,
    void *arg);
/**
 * Then, when a sealing key applies, queue AAR/AMS/AS inserts; the AAR
 * carries m->arc_results (this hop's results, including arc=).
 */
enum pol_status pol_arc_seal(struct pol_msg *m);
void pol_arc_free(struct pol_msg *m);

/** Chain result of a message: "none" / "pass" / "fail", and why. */
const char *pol_arc_cv(const struct pol_msg *m, const char **reason);

#endif
