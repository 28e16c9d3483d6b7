/*
 * policy/keys.h - the key table (keys.c) and the DKIM signer (dkim.c).
 * Internal to libpolicy.
 * Licence: BSD-2-Clause.
 */
#ifndef POL_KEYS_H
#define POL_KEYS_H

#include <libconfig.h>

#include "internal.h"

enum { POL_ALG_RSA_SHA256 = 0, POL_ALG_ED25519_SHA256 = 1 };

struct pol_key {
    char *id, *domain, *selector, *file;
    int alg;   /* POL_ALG_* */
    int bits;
    int line;  /* config line of the entry */
    char *pem; /* PKCS#8 PEM, as libopendkim takes it */
    void *pkey; /* EVP_PKEY *, for signers on OpenSSL (ARC) */
};

/** Parse the "keys" list (schema CF_CUSTOM). 0 or -1 with err. */
int pol_keys_parse(const config_setting_t *s, struct pol_config *cfg,
    struct pol_err *err);
const struct pol_key *pol_keys_find(const struct pol_keytable *t,
    const char *id);
void pol_keys_free(struct pol_keytable *t);
const char *pol_alg_name(int alg);
bool pol_domain_valid(const char *d);
/** The DNS TXT record ("v=DKIM1; k=...; p=...") of a loaded key. */
int pol_key_txt(const struct pol_key *k, char *txt, size_t len);
bool pol_selector_valid(const char *s);

/* ---- dkim.c ---- */
#define POL_DKIM_MAX_KEYS 4 /* keys signing one message */

/** One signing-table entry: From domain pattern -> keys. */
struct pol_dkim_rule {
    char *pattern; /* "example.com" or "*.example.com" */
    const struct pol_key *keys[POL_DKIM_MAX_KEYS];
    int nkeys;
    int line;
};

/**
 * Parse a list of { from = PATTERN; keys = [ ids ]; } rules at path, at
 * most max keys each; align: key domains must align with the pattern.
 */
int pol_rules_parse(const config_setting_t *s, struct pol_config *cfg,
    const char *path, int max, bool align, struct pol_dkim_rule **rulesp,
    size_t *np, struct pol_err *err);
const struct pol_dkim_rule *pol_rules_match(
    const struct pol_dkim_rule *rules, size_t n, const char *domain);
void pol_rules_free(struct pol_dkim_rule *rules, size_t n);

/** Parse "arc.sealing" rules (one key each; CF_CUSTOM). */
int pol_arc_parse_sealing(const config_setting_t *s, struct pol_config *cfg,
    struct pol_err *err);

/** Parse "dkim.signing" (schema CF_CUSTOM).  Needs the key table. */
int pol_dkim_parse_signing(const config_setting_t *s, struct pol_config *cfg,
    struct pol_err *err);
/** Build the libopendkim library handle for a loaded config. */
int pol_dkim_setup(struct pol_config *cfg, struct pol_err *err);
void pol_dkim_unconfigure(struct pol_config *cfg);
/** The rule for a From domain (exact first, then the longest wildcard). */
const struct pol_dkim_rule *pol_dkim_match(const struct pol_config *cfg,
    const char *domain);

struct pol_msg;
/** End of headers: choose keys from From:, start the signers. */
enum pol_status pol_dkim_eoh(struct pol_msg *m, struct pol_verdict *v);
/** A body chunk for every signer. */
enum pol_status pol_dkim_body(struct pol_msg *m, const unsigned char *p,
    size_t n);
/** End of message: finish, queue DKIM-Signature inserts. */
enum pol_status pol_dkim_eom(struct pol_msg *m);
/** Release the signers of a message. */
void pol_dkim_free(struct pol_msg *m);

#endif
