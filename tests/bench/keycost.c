/*
 * keycost - what one RSA DKIM signature costs through libopendkim, and why.
 *
 * Signs the same message N times in four ways and prints the CPU time per
 * message of each (getrusage, user+system):
 *
 *   libopendkim    dkim_sign + dkim_header... + dkim_eom + dkim_getsighdr_d +
 *                  dkim_free, the key given as the PEM text each time (the
 *                  only way libopendkim 2.11 takes a signing key)
 *   decode         PEM_read_bio_PrivateKey alone (what dkim_eom does first)
 *   decode+sign    decode, EVP_PKEY_get1_RSA, RSA_sign: libopendkim's key
 *                  handling and signature, without its hashing
 *   sign           EVP_PKEY_sign with a key decoded once and a reused
 *                  context (how outpolicyd signs the ARC-Seal and AMS)
 *
 * so BENCHMARKS.md can show how much of a libopendkim signature is key
 * handling that a caller cannot move out of the per-message path.
 *
 *   keycost -k KEY.pem [-m MESSAGE] [-n N]
 *
 * Build: see tests/bench/build.sh (needs libopendkim-dev, libssl-dev).
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* RSA_sign: what libopendkim calls */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <opendkim/dkim.h>

#define MAX_FILE (1 << 20)

/* read_file PATH LEN - the whole file, NUL-terminated; exits on error */
static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(MAX_FILE + 1);
    size_t n;

    if (f == NULL || buf == NULL) {
        fprintf(stderr, "keycost: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    n = fread(buf, 1, MAX_FILE, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* cpu_us - user+system CPU time of this process, in microseconds */
static double
cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
        ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* a message split into header fields (unfolded lines kept as they are) and
 * a CRLF body, as a milter receives it */
struct message {
    char *hdr[64];
    size_t nhdr;
    char *body;
    size_t bodylen;
};

static void
split_message(char *text, struct message *m)
{
    char *p = text, *eol;

    m->nhdr = 0;
    while (*p != '\0' && *p != '\n' && !(p[0] == '\r' && p[1] == '\n')) {
        eol = p;
        /* a field ends at a newline not followed by white space */
        while ((eol = strchr(eol, '\n')) != NULL && (eol[1] == ' ' || eol[1] == '\t'))
            eol++;
        if (eol == NULL)
            break;
        *eol = '\0';
        if (eol > p && eol[-1] == '\r')
            eol[-1] = '\0';
        if (m->nhdr < sizeof m->hdr / sizeof m->hdr[0])
            m->hdr[m->nhdr++] = p;
        p = eol + 1;
    }
    p += (*p == '\r') ? 2 : (*p == '\n');
    m->body = p;
    m->bodylen = strlen(p);
}

/* one message through libopendkim; false when any step fails */
static bool
sign_libopendkim(DKIM_LIB *lib, const char *pem, const struct message *m)
{
    DKIM_STAT st;
    DKIM *d = dkim_sign(lib, (const unsigned char *)"keycost", NULL,
        (dkim_sigkey_t)pem, (const unsigned char *)"bench",
        (const unsigned char *)"bench.example", DKIM_CANON_RELAXED,
        DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st);
    unsigned char *hdr;
    size_t len;
    bool ok = d != NULL;

    for (size_t i = 0; ok && i < m->nhdr; i++)
        ok = dkim_header(d, (unsigned char *)m->hdr[i], strlen(m->hdr[i])) ==
            DKIM_STAT_OK;
    ok = ok && dkim_eoh(d) == DKIM_STAT_OK;
    ok = ok && dkim_body(d, (unsigned char *)m->body, m->bodylen) == DKIM_STAT_OK;
    ok = ok && dkim_eom(d, NULL) == DKIM_STAT_OK;
    ok = ok && dkim_getsighdr_d(d, strlen("DKIM-Signature: "), &hdr, &len) ==
        DKIM_STAT_OK;
    if (d != NULL)
        dkim_free(d);
    return ok;
}

static EVP_PKEY *
decode_pem(const char *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return k;
}

/* decode, then sign as libopendkim 2.11 does with the key it decoded */
static bool
decode_and_rsa_sign(const char *pem, size_t len, const unsigned char *dg)
{
    EVP_PKEY *k = decode_pem(pem, len);
    RSA *rsa = k != NULL ? EVP_PKEY_get1_RSA(k) : NULL;
    unsigned char sig[1024];
    unsigned int siglen = 0;
    bool ok = rsa != NULL && RSA_size(rsa) <= (int)sizeof sig &&
        RSA_sign(NID_sha256, dg, 32, sig, &siglen, rsa) == 1;

    RSA_free(rsa);
    EVP_PKEY_free(k);
    return ok;
}

static void
report(const char *what, double us, int n, double base)
{
    printf("%-12s %8.1f us/msg", what, us / n);
    if (base > 0)
        printf("  (%.2f x sign with a key decoded once)", us / n / base);
    printf("\n");
}

static void
usage(void)
{
    fprintf(stderr, "usage: keycost -k KEY.pem [-m MESSAGE] [-n N]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *keyfile = NULL, *msgfile = NULL;
    int n = 2000, o;
    size_t keylen, msglen;
    char *pem, *text;
    struct message m;
    unsigned char dg[32] = { 1 }, sig[1024];
    size_t siglen;
    double t, t_lib, t_dec, t_decsign, t_sign;
    EVP_PKEY *key;
    EVP_PKEY_CTX *ctx;
    DKIM_LIB *lib;

    while ((o = getopt(argc, argv, "k:m:n:")) != -1) {
        switch (o) {
        case 'k': keyfile = optarg; break;
        case 'm': msgfile = optarg; break;
        case 'n': n = atoi(optarg); break;
        default: usage();
        }
    }
    if (keyfile == NULL || n < 1 || n > 1000000)
        usage();
    pem = read_file(keyfile, &keylen);
    if (msgfile != NULL) {
        text = read_file(msgfile, &msglen);
    } else {
        text = strdup("From: a@bench.example\r\nTo: b@remote.example\r\n"
                      "Subject: keycost\r\n\r\nhello\r\n");
    }
    split_message(text, &m);
    if ((key = decode_pem(pem, keylen)) == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        fprintf(stderr, "keycost: %s: not an RSA private key in PEM\n", keyfile);
        return 2;
    }
    if ((lib = dkim_init(NULL, NULL)) == NULL || !sign_libopendkim(lib, pem, &m)) {
        fprintf(stderr, "keycost: libopendkim cannot sign with %s\n", keyfile);
        return 2;
    }

    t = cpu_us();
    for (int i = 0; i < n; i++)
        sign_libopendkim(lib, pem, &m);
    t_lib = cpu_us() - t;

    t = cpu_us();
    for (int i = 0; i < n; i++)
        EVP_PKEY_free(decode_pem(pem, keylen));
    t_dec = cpu_us() - t;

    t = cpu_us();
    for (int i = 0; i < n; i++)
        decode_and_rsa_sign(pem, keylen, dg);
    t_decsign = cpu_us() - t;

    ctx = EVP_PKEY_CTX_new(key, NULL);
    if (ctx == NULL || EVP_PKEY_sign_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0) {
        fprintf(stderr, "keycost: EVP_PKEY_sign_init failed\n");
        return 2;
    }
    t = cpu_us();
    for (int i = 0; i < n; i++) {
        siglen = sizeof sig;
        if (EVP_PKEY_sign(ctx, sig, &siglen, dg, sizeof dg) <= 0) {
            fprintf(stderr, "keycost: EVP_PKEY_sign failed\n");
            return 2;
        }
    }
    t_sign = cpu_us() - t;

    printf("keycost: %d messages of %zu header fields and %zu body bytes, key %s (%d bits), %s\n",
        n, m.nhdr, m.bodylen, keyfile, EVP_PKEY_get_bits(key), OpenSSL_version(OPENSSL_VERSION));
    report("sign", t_sign, n, 0);
    report("decode", t_dec, n, t_sign / n);
    report("decode+sign", t_decsign, n, t_sign / n);
    report("libopendkim", t_lib, n, t_sign / n);
    printf("RESULT sign_us=%.1f decode_us=%.1f decode_sign_us=%.1f libopendkim_us=%.1f "
           "key_handling_us=%.1f\n", t_sign / n, t_dec / n, t_decsign / n, t_lib / n,
        (t_decsign - t_sign) / n);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    dkim_close(lib);
    free(pem);
    free(text);
    return 0;
}
