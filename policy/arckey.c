/*
 * policy/arckey.c - DKIM key records (RFC 6376 3.6.1) and raw signing and
 * verification of SHA-256 digests on OpenSSL 3, for ARC.
 *
 * rsa-sha256 is RSASSA-PKCS1-v1_5 over the digest; ed25519-sha256 (RFC
 * 8463) is PureEdDSA over the 32-byte digest.  OpenSSL types stay here.
 * Thread-safe.
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "arc.h"
#include "keys.h"

struct pol_pubkey {
    EVP_PKEY *pk;
    int type; /* EVP_PKEY_RSA / EVP_PKEY_ED25519 */
};

long
pol_b64_decode(const char *in, unsigned char *out, size_t outlen)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned long acc = 0;
    int bits = 0, pad = 0;
    size_t o = 0;

    for (; *in; in++) {
        const char *p;
        if (isspace((unsigned char)*in))
            continue;
        if (*in == '=') {
            pad++;
            continue;
        }
        if (pad > 0 || (p = strchr(tbl, *in)) == NULL || *in == '\0')
            return -1;
        acc = (acc << 6) | (unsigned long)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outlen)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (pad > 2)
        return -1;
    return (long)o;
}

/* parse_record - v=DKIM1; k=...; p=... into a key */
static struct pol_pubkey *
parse_record(const char *txt, char *why, size_t whylen)
{
    struct pol_arena *a = pol_arena_new();
    struct pol_tags t;
    struct pol_pubkey *k = NULL;
    const char *v, *kt, *p;
    unsigned char der[8192];
    const unsigned char *dp = der;
    long n;

    if (a == NULL)
        return NULL;
    if (pol_tags_parse(a, txt, &t, why, whylen) < 0)
        goto out;
    v = pol_tags_get(&t, "v");
    kt = pol_tags_get(&t, "k");
    p = pol_tags_get(&t, "p");
    if ((v != NULL && strcmp(v, "DKIM1") != 0) || p == NULL) {
        snprintf(why, whylen, "not a DKIM key record (v=%s, p=%s)",
            v ? v : "-", p ? "present" : "missing");
        goto out;
    }
    if (*p == '\0') {
        snprintf(why, whylen, "key revoked (empty p=)");
        goto out;
    }
    if ((n = pol_b64_decode(p, der, sizeof(der))) <= 0) {
        snprintf(why, whylen, "p= is not base64");
        goto out;
    }
    if ((k = calloc(1, sizeof(*k))) == NULL)
        goto out;
    if (kt == NULL || strcasecmp(kt, "rsa") == 0) {
        k->type = EVP_PKEY_RSA;
        k->pk = d2i_PUBKEY(NULL, &dp, n);
        if (k->pk == NULL) {
            dp = der;
            k->pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &dp, n);
        }
    } else if (strcasecmp(kt, "ed25519") == 0 && n == 32) {
        k->type = EVP_PKEY_ED25519;
        k->pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, 32);
    }
    if (k->pk == NULL || EVP_PKEY_get_base_id(k->pk) != k->type) {
        snprintf(why, whylen, "unusable %s key in p=", kt ? kt : "rsa");
        pol_pubkey_free(k);
        k = NULL;
    } else if (k->type == EVP_PKEY_RSA && EVP_PKEY_get_bits(k->pk) < 1024) {
        /* RFC 8301 3.2: verifiers must not accept keys under 1024 bits */
        snprintf(why, whylen, "RSA key of %d bits (under 1024)",
            EVP_PKEY_get_bits(k->pk));
        pol_pubkey_free(k);
        k = NULL;
    }
out:
    pol_arena_free(a);
    return k;
}

struct pol_pubkey *
pol_pubkey_fetch(pol_txt_fn fn, void *arg, const char *selector,
    const char *domain, int *rc, char *why, size_t whylen)
{
    char name[512], txt[8192];
    struct pol_pubkey *k;

    snprintf(name, sizeof(name), "%s._domainkey.%s", selector, domain);
    *rc = fn(arg, name, txt, sizeof(txt));
    if (*rc <= 0) {
        snprintf(why, whylen, *rc < 0 ? "DNS look-up of %s failed"
            : "no key record at %s", name);
        return NULL;
    }
    if ((k = parse_record(txt, why, whylen)) == NULL)
        *rc = 0;
    return k;
}

void
pol_pubkey_free(struct pol_pubkey *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pk);
    free(k);
}

/* digest_info_ctx - a PKEY context for raw digest sign/verify */
static EVP_PKEY_CTX *
rsa_ctx(EVP_PKEY *pk, bool sign)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);

    if (c == NULL || (sign ? EVP_PKEY_sign_init(c) : EVP_PKEY_verify_init(c))
            != 1
        || EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1
        || EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    return c;
}

bool
pol_pubkey_verify(const struct pol_pubkey *k, const char *alg,
    const unsigned char *digest, const unsigned char *sig, size_t siglen)
{
    bool ok = false;

    if (strcmp(alg, "rsa-sha256") == 0 && k->type == EVP_PKEY_RSA) {
        EVP_PKEY_CTX *c = rsa_ctx(k->pk, false);
        ok = c != NULL && EVP_PKEY_verify(c, sig, siglen, digest, 32) == 1;
        EVP_PKEY_CTX_free(c);
    } else if (strcmp(alg, "ed25519-sha256") == 0
        && k->type == EVP_PKEY_ED25519) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        ok = c != NULL && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k->pk)
                == 1
            && EVP_DigestVerify(c, sig, siglen, digest, 32) == 1;
        EVP_MD_CTX_free(c);
    }
    return ok;
}

int
pol_sign_digest(void *pkey, int alg, const unsigned char *digest, char *out,
    size_t len)
{
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    int ok = 0;

    if (alg == POL_ALG_RSA_SHA256) {
        EVP_PKEY_CTX *c = rsa_ctx(pkey, true);
        ok = c != NULL && EVP_PKEY_sign(c, sig, &siglen, digest, 32) == 1;
        EVP_PKEY_CTX_free(c);
    } else {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        ok = c != NULL && EVP_DigestSignInit(c, NULL, NULL, NULL, pkey) == 1
            && EVP_DigestSign(c, sig, &siglen, digest, 32) == 1;
        EVP_MD_CTX_free(c);
    }
    if (!ok || len < 4 * ((siglen + 2) / 3) + 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, sig, (int)siglen);
    return 0;
}
