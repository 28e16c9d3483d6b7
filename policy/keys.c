/*
 * policy/keys.c - the key table: private keys for DKIM (and ARC) signing,
 * loaded and checked once per config load, on OpenSSL 3.
 *
 * A key file must be PEM (PKCS#1 or PKCS#8 RSA, PKCS#8 Ed25519), owned
 * by whoever runs the daemon and not readable by group or others; its
 * directory must not be writable by group or others.  RSA keys under 1024
 * bits are refused, under 2048 bits warned about.  Each key is kept as a
 * PKCS#8 PEM string (what libopendkim takes) and as an EVP_PKEY.
 * Read-only after load: thread-safe.
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config.h"
#include "keys.h"

#define KEY_FILE_MAX (64 * 1024)

static const struct cf_enum alg_names[] = {
    { "rsa-sha256", POL_ALG_RSA_SHA256 },
    { "ed25519-sha256", POL_ALG_ED25519_SHA256 },
    { NULL, 0 },
};

const char *
pol_alg_name(int alg)
{
    return alg == POL_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

/* check_perms - refuse keys others can read, in dirs others can write */
static int
check_perms(const char *file, const config_setting_t *s, struct pol_err *err)
{
    struct stat st;
    char dir[4096];

    if (stat(file, &st) != 0) {
        pol_cf_error(err, s, "keys", "key file %s: %s", file,
            strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        pol_cf_error(err, s, "keys", "key file %s is not a regular file",
            file);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        pol_cf_error(err, s, "keys", "key file %s is accessible by group "
            "or others (mode %04o); fix: chmod 0600 %s", file,
            (unsigned)(st.st_mode & 07777), file);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", file);
    if (stat(dirname(dir), &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH))
        && !(st.st_mode & S_ISVTX)) {
        snprintf(dir, sizeof(dir), "%s", file);
        pol_cf_error(err, s, "keys", "directory %s of key file %s is "
            "writable by group or others; fix: chmod go-w %s",
            dirname(dir), file, dir);
        return -1;
    }
    return 0;
}

/* read_pem - parse the file as a PEM private key */
static EVP_PKEY *
read_pem(const char *file, const config_setting_t *s, struct pol_err *err)
{
    BIO *b = BIO_new_file(file, "r");
    EVP_PKEY *pk;
    char why[200] = "";

    if (b == NULL) {
        pol_cf_error(err, s, "keys", "key file %s: cannot read: %s", file,
            strerror(errno));
        return NULL;
    }
    pk = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
    BIO_free(b);
    if (pk == NULL) {
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof(why));
        ERR_clear_error();
        pol_cf_error(err, s, "keys", "key file %s is not a PEM private key "
            "(PKCS#1/PKCS#8 RSA or PKCS#8 Ed25519, unencrypted): %s", file,
            why);
    }
    return pk;
}

/* to_pem - PKCS#8 PEM text of a key */
static char *
to_pem(EVP_PKEY *pk)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;

    if (b == NULL)
        return NULL;
    if (PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) == 1
        && (n = BIO_get_mem_data(b, &data)) > 0
        && (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}

/* load_key_material - perms, parse, type and size checks */
static int
load_key_material(struct pol_key *k, const config_setting_t *s,
    const struct pol_config *cfg, struct pol_err *err)
{
    EVP_PKEY *pk;
    int type;

    if (check_perms(k->file, s, err) < 0
        || (pk = read_pem(k->file, s, err)) == NULL)
        return -1;
    type = EVP_PKEY_get_base_id(pk);
    if ((k->alg == POL_ALG_RSA_SHA256 && type != EVP_PKEY_RSA)
        || (k->alg == POL_ALG_ED25519_SHA256 && type != EVP_PKEY_ED25519)) {
        pol_cf_error(err, s, "keys", "key \"%s\": %s holds a %s key, not "
            "what algorithm \"%s\" needs", k->id, k->file,
            type == EVP_PKEY_RSA ? "RSA" : type == EVP_PKEY_ED25519
                ? "Ed25519" : "unsupported", pol_alg_name(k->alg));
        EVP_PKEY_free(pk);
        return -1;
    }
    k->bits = EVP_PKEY_get_bits(pk);
    if (type == EVP_PKEY_RSA && k->bits < 1024) {
        pol_cf_error(err, s, "keys", "key \"%s\": %s is RSA-%d; receivers "
            "ignore RSA keys under 1024 bits; make a new one with "
            "outpolicyctl keygen --bits 2048", k->id, k->file, k->bits);
        EVP_PKEY_free(pk);
        return -1;
    }
    if (type == EVP_PKEY_RSA && k->bits < 2048)
        pol_log(cfg, POL_LOG_WARNING, "config: key \"%s\": %s is RSA-%d; "
            "use 2048 bits (outpolicyctl keygen --bits 2048)", k->id,
            k->file, k->bits);
    k->pkey = pk;
    if ((k->pem = to_pem(pk)) == NULL) {
        pol_cf_error(err, s, "keys", "key \"%s\": out of memory", k->id);
        return -1;
    }
    return 0;
}

/* str_member - a required string member of a key entry */
static const char *
str_member(const config_setting_t *e, const char *name, struct pol_err *err)
{
    const config_setting_t *m = config_setting_get_member(e, name);
    const char *v = m ? config_setting_get_string(m) : NULL;

    if (v == NULL || *v == '\0')
        pol_cf_error(err, m ? m : e, "keys", "each key needs %s = \"...\";",
            name);
    return v;
}

/* check_members - no unknown members in a key entry */
static int
check_members(const config_setting_t *e, const char *const *allowed,
    const char *path, struct pol_err *err)
{
    for (int i = 0; i < config_setting_length(e); i++) {
        const config_setting_t *m = config_setting_get_elem(e, i);
        const char *name = config_setting_name(m);
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = name != NULL && strcmp(name, *a) == 0;
        if (!ok) {
            pol_cf_error(err, m, path, "unknown member \"%s\"",
                name ? name : "?");
            return -1;
        }
    }
    return 0;
}

/* parse_key - one { id; domain; selector; file; algorithm; } entry */
static int
parse_key(const config_setting_t *e, struct pol_config *cfg,
    struct pol_key *k, struct pol_err *err)
{
    static const char *const members[] = { "id", "domain", "selector",
        "file", "algorithm", NULL };
    const char *id, *dom, *sel, *file, *alg;

    if (!config_setting_is_group(e)) {
        pol_cf_error(err, e, "keys", "each entry is a group: { id = \"...\";"
            " domain = \"...\"; selector = \"...\"; file = \"...\"; }");
        return -1;
    }
    if (check_members(e, members, "keys", err) < 0
        || (id = str_member(e, "id", err)) == NULL
        || (dom = str_member(e, "domain", err)) == NULL
        || (sel = str_member(e, "selector", err)) == NULL
        || (file = str_member(e, "file", err)) == NULL)
        return -1;
    if (config_setting_lookup_string(e, "algorithm", &alg) != CONFIG_TRUE)
        alg = "rsa-sha256";
    k->alg = -1;
    for (const struct cf_enum *a = alg_names; a->name; a++)
        if (strcmp(a->name, alg) == 0)
            k->alg = a->value;
    if (k->alg < 0) {
        pol_cf_error(err, e, "keys", "key \"%s\": algorithm \"%s\" is not "
            "\"rsa-sha256\" or \"ed25519-sha256\"", id, alg);
        return -1;
    }
    if (!pol_domain_valid(dom) || !pol_selector_valid(sel) || *file != '/') {
        pol_cf_error(err, e, "keys", "key \"%s\": %s", id,
            !pol_domain_valid(dom) ? "domain is not a domain name"
            : !pol_selector_valid(sel) ? "selector is not a DNS label list"
            : "file must be an absolute path");
        return -1;
    }
    if ((k->id = strdup(id)) == NULL || (k->domain = strdup(dom)) == NULL
        || (k->selector = strdup(sel)) == NULL
        || (k->file = strdup(file)) == NULL) {
        pol_cf_error(err, e, "keys", "out of memory");
        return -1;
    }
    for (char *p = k->domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    k->line = (int)config_setting_source_line(e);
    return load_key_material(k, e, cfg, err);
}

int
pol_keys_parse(const config_setting_t *s, struct pol_config *cfg,
    struct pol_err *err)
{
    struct pol_keytable *t = &cfg->keys;
    int n;

    if (s == NULL)
        return 0;
    if (!config_setting_is_list(s)) {
        pol_cf_error(err, s, "keys", "must be a list of groups: keys = "
            "( { id = ...; }, ... );");
        return -1;
    }
    n = config_setting_length(s);
    if (n == 0)
        return 0;
    if ((t->v = calloc((size_t)n, sizeof(*t->v))) == NULL) {
        pol_cf_error(err, s, "keys", "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, i);
        t->n = (size_t)i + 1;
        if (parse_key(e, cfg, &t->v[i], err) < 0)
            return -1;
        for (int j = 0; j < i; j++)
            if (strcmp(t->v[j].id, t->v[i].id) == 0) {
                pol_cf_error(err, e, "keys", "duplicate key id \"%s\" "
                    "(first at line %d)", t->v[i].id, t->v[j].line);
                return -1;
            }
    }
    return 0;
}

const struct pol_key *
pol_keys_find(const struct pol_keytable *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].id, id) == 0)
            return &t->v[i];
    return NULL;
}

void
pol_keys_free(struct pol_keytable *t)
{
    for (size_t i = 0; i < t->n; i++) {
        struct pol_key *k = &t->v[i];
        free(k->id);
        free(k->domain);
        free(k->selector);
        free(k->file);
        if (k->pem != NULL) {
            OPENSSL_cleanse(k->pem, strlen(k->pem));
            free(k->pem);
        }
        EVP_PKEY_free(k->pkey);
    }
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

bool
pol_domain_valid(const char *d)
{
    size_t label = 0, n = strlen(d);

    if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.')
        return false;
    for (; *d; d++) {
        if (*d == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)*d) || *d == '-' || *d == '_') {
            if (++label > 63)
                return false;
        } else
            return false;
    }
    return true;
}

bool
pol_selector_valid(const char *s)
{
    return pol_domain_valid(s);
}

/* txt_record - "v=DKIM1; k=...; p=..." for a key pair */
static int
txt_record(EVP_PKEY *pk, int alg, char *txt, size_t len)
{
    unsigned char raw[4096], *p = raw;
    char b64[4096];
    size_t rawlen = sizeof(raw);
    int n;

    if (alg == POL_ALG_ED25519_SHA256) {
        /* RFC 8463 3: p= is the raw 32-byte public key */
        if (EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1)
            return -1;
    } else {
        if ((n = i2d_PUBKEY(pk, NULL)) <= 0 || (size_t)n > sizeof(raw))
            return -1;
        rawlen = (size_t)i2d_PUBKEY(pk, &p);
    }
    if ((size_t)(4 * ((rawlen + 2) / 3)) >= sizeof(b64))
        return -1;
    EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
    snprintf(txt, len, "v=DKIM1; k=%s; p=%s",
        alg == POL_ALG_ED25519_SHA256 ? "ed25519" : "rsa", b64);
    return 0;
}

int
pol_key_txt(const struct pol_key *k, char *txt, size_t len)
{
    return txt_record(k->pkey, k->alg, txt, len);
}

enum pol_status
pol_keygen(int alg, int bits, const char *file, char *txt, size_t len,
    struct pol_err *err)
{
    EVP_PKEY *pk = alg == POL_ALG_ED25519_SHA256
        ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
        : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    BIO *b = NULL;
    int fd;

    if (pk == NULL) {
        snprintf(err->msg, sizeof(err->msg), "key generation failed");
        return POL_ETEMP;
    }
    fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || (b = BIO_new_fd(fd, BIO_CLOSE)) == NULL
        || PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) != 1
        || BIO_flush(b) != 1 || txt_record(pk, alg, txt, len) < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: %s", file, fd < 0
                ? strerror(errno) : "cannot write the key");
        if (b != NULL)
            BIO_free(b);
        else if (fd >= 0)
            close(fd);
        EVP_PKEY_free(pk);
        return POL_EPERM;
    }
    BIO_free(b);
    EVP_PKEY_free(pk);
    return POL_OK;
}
