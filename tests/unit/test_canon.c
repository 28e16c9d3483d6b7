/*
 * tests/unit/test_canon.c - canonicalization for ARC (RFC 6376 3.4): the
 * section 3.4.5 examples, the empty-body hashes of 3.4.3/3.4.4, the RFC
 * 8463 A.3 body hash, chunk boundaries anywhere giving the same hash, and
 * random bodies against a whole-string reference written from RFC 6376.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "policy/canon.h"
#include "policy/internal.h"
#include "units.h"

/* sha256_b64 - base64 SHA-256 of a string, for expected canonical bodies */
static void
sha256_b64(const char *s, char *out)
{
    unsigned char md[32];
    unsigned int n;

    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, 32);
}

static void
body_hash(const char *body, bool relaxed, size_t chunk, char *out)
{
    struct pol_bodyhash *h = pol_bodyhash_new(relaxed, -1);
    size_t n = strlen(body);

    for (size_t o = 0; o < n; o += chunk)
        pol_bodyhash_update(h, (const unsigned char *)body + o,
            n - o < chunk ? n - o : chunk);
    ck_assert_int_eq(pol_bodyhash_final(h, out, 64), 0);
    pol_bodyhash_free(h);
}

static const struct {
    const char *label, *body;
    bool relaxed;
    const char *canonical; /* expected canonical form, or NULL */
    const char *bh;        /* expected hash, or NULL */
} body_cases[] = {
    /* RFC 6376 3.4.5, examples 1 and 2 */
    { "3.4.5 relaxed", " C \r\nD \t E\r\n\r\n\r\n", true, " C\r\nD E\r\n",
        NULL },
    { "3.4.5 simple", " C \r\nD \t E\r\n\r\n\r\n", false, " C \r\nD \t E\r\n",
        NULL },
    /* RFC 6376 3.4.3 / 3.4.4: empty bodies */
    { "empty simple", "", false, NULL,
        "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=" },
    { "empty relaxed", "", true, NULL,
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" },
    /* RFC 6376 A / RFC 8463 A.3, relaxed */
    { "joe sixpack relaxed", "Hi.\r\n\r\nWe lost the game.  Are you hungry "
        "yet?\r\n\r\nJoe.\r\n\r\n", true, NULL,
        "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=" },
    { "last line without CRLF", "abc", false, "abc\r\n", NULL },
    { "only empty lines, simple", "\r\n\r\n", false, "\r\n", NULL },
    { "only empty lines, relaxed", "\r\n\r\n", true, "", NULL },
    { "white-space-only line is empty when relaxed", "a\r\n \t \r\n", true,
        "a\r\n", NULL },
    { "bare LF counts as a line end", "a\nb\n", true, "a\r\nb\r\n", NULL },
    { "bare CR is content", "a\rb\r\n", false, "a\rb\r\n", NULL },
};

START_TEST(test_body)
{
    char want[64], got[64];

    if (body_cases[_i].canonical != NULL)
        sha256_b64(body_cases[_i].canonical, want);
    else
        strcpy(want, body_cases[_i].bh);
    for (size_t chunk = 1; chunk <= 64; chunk *= 2) {
        body_hash(body_cases[_i].body, body_cases[_i].relaxed, chunk, got);
        ck_assert_msg(strcmp(got, want) == 0, "%s (chunk %zu): %s != %s",
            body_cases[_i].label, chunk, got, want);
    }
}
END_TEST

START_TEST(test_length_limit)
{
    struct pol_bodyhash *h = pol_bodyhash_new(false, 3);
    char got[64], want[64];

    pol_bodyhash_update(h, (const unsigned char *)"abcdef\r\n", 8);
    ck_assert_int_eq(pol_bodyhash_final(h, got, sizeof(got)), 0);
    sha256_b64("abc", want);
    ck_assert_str_eq(got, want);
    pol_bodyhash_free(h);
}
END_TEST

/* reference_body - RFC 6376 3.4.3/3.4.4 on a whole body, the plain way:
 * split into lines at LF (a CR right before it belongs to the line end, any
 * other CR is content), relaxed: each WSP run to one SP and none at the end
 * of a line; then no empty lines at the end; simple: an empty result is one
 * CRLF.  Writes at most 3 * strlen(body) + 3 bytes to out. */
static size_t
reference_body(const char *body, bool relaxed, char *out)
{
    size_t o = 0, keep = 0, n = strlen(body);

    for (size_t start = 0; start < n;) {
        const char *lf = memchr(body + start, '\n', n - start);
        size_t end = lf != NULL ? (size_t)(lf - body) : n, len = end - start;
        size_t line0 = o;

        if (lf != NULL && len > 0 && body[end - 1] == '\r')
            len--;
        for (size_t i = start; i < start + len; i++) {
            char c = body[i];
            if (relaxed && (c == ' ' || c == '\t')) {
                if (o == line0 || out[o - 1] != ' ')
                    out[o++] = ' ';
            } else {
                out[o++] = c;
            }
        }
        if (relaxed)
            while (o > line0 && out[o - 1] == ' ')
                o--;
        out[o++] = '\r';
        out[o++] = '\n';
        if (o - line0 > 2)
            keep = o; /* up to the last non-empty line */
        start = end + 1;
    }
    o = keep;
    if (o == 0 && !relaxed) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    return o;
}

/* random bodies over the bytes that matter (CR, LF, SP, TAB, letters),
 * cut into random chunks, with and without an l= limit */
START_TEST(test_body_random)
{
    static const char alphabet[] = "ab \t\r\n\r\n  ";
    char body[200], *canon = malloc(3 * sizeof(body) + 3), want[64], got[64];
    unsigned int seed = 20261127;

    ck_assert_ptr_nonnull(canon);
    for (int round = 0; round < 4000; round++) {
        size_t n = (size_t)rand_r(&seed) % (sizeof(body) - 1), cn;
        bool relaxed = round % 2 == 0;
        long long limit = round % 3 == 0 ? rand_r(&seed) % 64 : -1;
        struct pol_bodyhash *h = pol_bodyhash_new(relaxed, limit);
        unsigned char md[32];
        unsigned int mdlen;

        for (size_t i = 0; i < n; i++)
            body[i] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
        body[n] = '\0';
        cn = reference_body(body, relaxed, canon);
        if (limit >= 0 && (size_t)limit < cn)
            cn = (size_t)limit;
        EVP_Digest(canon, cn, md, &mdlen, EVP_sha256(), NULL);
        EVP_EncodeBlock((unsigned char *)want, md, 32);

        ck_assert_ptr_nonnull(h);
        for (size_t o = 0; o < n;) {
            size_t chunk = 1 + (size_t)rand_r(&seed) % 40;
            if (chunk > n - o)
                chunk = n - o;
            pol_bodyhash_update(h, (const unsigned char *)body + o, chunk);
            o += chunk;
        }
        ck_assert_int_eq(pol_bodyhash_final(h, got, sizeof(got)), 0);
        pol_bodyhash_free(h);
        ck_assert_msg(strcmp(got, want) == 0, "round %d (%s, l=%lld): body \"%s\"",
            round, relaxed ? "relaxed" : "simple", limit, body);
    }
    free(canon);
}
END_TEST

static const struct {
    const char *name, *value, *relaxed;
} hdr_cases[] = {
    /* RFC 6376 3.4.5 example 1 */
    { "A", " X", "a:X" },
    { "B ", " Y\t\r\n\tZ  ", "b:Y Z" },
    { "Subject", "  two  spaces ", "subject:two spaces" },
    { "H", " a : b ;  c", "h:a : b ; c" },
    { "Empty", "", "empty:" },
};

START_TEST(test_header)
{
    struct pol_arena *a = pol_arena_new();
    char *c = pol_canon_header(a, hdr_cases[_i].name, hdr_cases[_i].value,
        true);

    ck_assert_str_eq(c, hdr_cases[_i].relaxed);
    c = pol_canon_header(a, hdr_cases[_i].name, hdr_cases[_i].value, false);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(strncmp(c, hdr_cases[_i].name,
        strlen(hdr_cases[_i].name)), 0);
    ck_assert_str_eq(c + strlen(hdr_cases[_i].name) + 1,
        hdr_cases[_i].value);
    pol_arena_free(a);
}
END_TEST

Suite *
suite_canon(void)
{
    Suite *s = suite_create("canon");
    TCase *tc = tcase_create("canon");

    tcase_add_loop_test(tc, test_body, 0,
        sizeof(body_cases) / sizeof(body_cases[0]));
    tcase_add_test(tc, test_length_limit);
    tcase_add_test(tc, test_body_random);
    tcase_add_loop_test(tc, test_header, 0,
        sizeof(hdr_cases) / sizeof(hdr_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}
