/*
 * tests/unit/test_tlsmap.c - the TLS policy socketmap: netstring codec,
 * next-hop matching, replies, config validation.
 */
#include <string.h>

#include "policy/internal.h"
#include "units.h"

static const struct {
    const char *label, *in;
    int rc;
    const char *data;
    size_t used;
} ns_cases[] = {
    { "simple", "5:hello,", 1, "hello", 8 },
    { "empty", "0:,", 1, "", 3 },
    { "two in a row: first", "1:a,1:b,", 1, "a", 4 },
    { "partial length", "1", 0, NULL, 0 },
    { "partial data", "5:hel", 0, NULL, 0 },
    { "missing comma", "5:hello;", -1, NULL, 0 },
    { "no digits", ":hello,", -1, NULL, 0 },
    { "leading zero", "05:hello,", -1, NULL, 0 },
    { "letters in length", "5x:hello,", -1, NULL, 0 },
    { "over the maximum", "99999:", -1, NULL, 0 },
    { "endless digits", "12345678901234", -1, NULL, 0 },
};

START_TEST(test_netstring)
{
    const char *data = NULL;
    size_t dlen = 0, used = 0;
    int rc = pol_netstring_parse(ns_cases[_i].in, strlen(ns_cases[_i].in),
        1000, &data, &dlen, &used);

    ck_assert_msg(rc == ns_cases[_i].rc, "%s: rc %d", ns_cases[_i].label, rc);
    if (rc == 1) {
        ck_assert_uint_eq(dlen, strlen(ns_cases[_i].data));
        ck_assert_int_eq(memcmp(data, ns_cases[_i].data, dlen), 0);
        ck_assert_uint_eq(used, ns_cases[_i].used);
    }
}
END_TEST

START_TEST(test_format)
{
    char out[32];

    ck_assert_uint_eq(pol_netstring_format(out, sizeof(out), "OK may"), 9);
    ck_assert_str_eq(out, "6:OK may,");
    ck_assert_uint_eq(pol_netstring_format(out, 4, "too long"), 0);
}
END_TEST

static struct pol_config *
conf(void)
{
    struct pol_err err;
    struct pol_config *cfg = pol_config_load_string(
        "events = { file = \"\"; };\n"
        "tls_policy = { default = \"encrypt protocols=>=TLSv1.2\";\n"
        " destinations = (\n"
        "  { match = \".legacy.example\"; policy = \"may\"; },\n"
        "  { match = \"legacy.example\"; policy = \"none\"; },\n"
        "  { match = \"[smtp.exmail.qq.com]:465\"; policy = \"encrypt "
        "protocols=>=TLSv1.2 ciphers=high\"; },\n"
        "  { match = \"bank.example\"; policy = \"secure match=.bank.example\"; }"
        " ); };\n", "t.conf", NULL, &err);

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    return cfg;
}

static const struct {
    const char *key, *policy, *rule;
} match_cases[] = {
    { "example.com", "encrypt protocols=>=TLSv1.2", "default" },
    { "mx.legacy.example", "may", ".legacy.example" },
    { "a.b.legacy.example", "may", ".legacy.example" },
    { "legacy.example", "none", "legacy.example" },
    { "LEGACY.example", "none", "legacy.example" },
    { "[smtp.exmail.qq.com]:465", "encrypt protocols=>=TLSv1.2 ciphers=high",
        "[smtp.exmail.qq.com]:465" },
    { "[smtp.exmail.qq.com]", "encrypt protocols=>=TLSv1.2", "default" },
    { "smtp.exmail.qq.com", "encrypt protocols=>=TLSv1.2", "default" },
    { "bank.example", "secure match=.bank.example", "bank.example" },
    { "notbank.example", "encrypt protocols=>=TLSv1.2", "default" },
    { "[mx.legacy.example]:25", "encrypt protocols=>=TLSv1.2", "default" },
};

START_TEST(test_match)
{
    struct pol_config *cfg = conf();
    const char *rule, *p = pol_tlsmap_decide(cfg, match_cases[_i].key, &rule);

    ck_assert_msg(strcmp(p, match_cases[_i].policy) == 0, "%s: %s",
        match_cases[_i].key, p);
    ck_assert_str_eq(rule, match_cases[_i].rule);
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_answer)
{
    struct pol_config *cfg = conf();
    char out[600];
    size_t n;

    n = pol_tlsmap_answer(cfg, "tlspolicy mx.legacy.example", 27, out,
        sizeof(out));
    ck_assert_str_eq(out, "6:OK may,");
    ck_assert_uint_eq(n, 9);
    pol_tlsmap_answer(cfg, "tlspolicy unknown.example", 25, out,
        sizeof(out));
    ck_assert_str_eq(out, "30:OK encrypt protocols=>=TLSv1.2,");
    pol_tlsmap_answer(cfg, "other example.com", 17, out, sizeof(out));
    ck_assert_ptr_nonnull(strstr(out, ":PERM unknown map"));
    pol_tlsmap_answer(cfg, "tlspolicy", 9, out, sizeof(out));
    ck_assert_ptr_nonnull(strstr(out, ":PERM"));
    pol_tlsmap_answer(cfg, "tlspolicy a\0b", 13, out, sizeof(out));
    ck_assert_ptr_nonnull(strstr(out, ":PERM invalid or over-long key"));
    pol_config_unref(cfg);
}
END_TEST

static const struct {
    const char *label, *text, *want;
} bad_cases[] = {
    { "bad default level", "tls_policy = { default = \"encrypted\"; };",
        "does not start with a Postfix TLS security level" },
    { "bad attribute", "tls_policy = { default = \"encrypt TLSv1.2\"; };",
        "attributes are name=value" },
    { "entry shape", "tls_policy = { destinations = ( { match = \"a.b\"; "
        "}); };", "each entry is" },
    { "match with space", "tls_policy = { destinations = ( { match = "
        "\"a b\"; policy = \"may\"; }); };", "not a next-hop" },
    { "duplicate match", "tls_policy = { destinations = ( { match = \"a.b\";"
        " policy = \"may\"; }, { match = \"A.b\"; policy = \"none\"; } ); };",
        "listed twice" },
    { "socket without host", "tls_policy = { socket = \"inet:1234\"; };",
        "without @HOST" },
};

START_TEST(test_config_errors)
{
    struct pol_err err;

    ck_assert_ptr_null(pol_config_load_string(bad_cases[_i].text, "t.conf",
        NULL, &err));
    ck_assert_msg(strstr(err.msg, bad_cases[_i].want) != NULL
        && strncmp(err.msg, "t.conf:1:", 9) == 0, "%s: %s",
        bad_cases[_i].label, err.msg);
}
END_TEST

Suite *
suite_tlsmap(void)
{
    Suite *s = suite_create("tlsmap");
    TCase *tc = tcase_create("tlsmap");

    tcase_add_loop_test(tc, test_netstring, 0,
        sizeof(ns_cases) / sizeof(ns_cases[0]));
    tcase_add_test(tc, test_format);
    tcase_add_loop_test(tc, test_match, 0,
        sizeof(match_cases) / sizeof(match_cases[0]));
    tcase_add_test(tc, test_answer);
    tcase_add_loop_test(tc, test_config_errors, 0,
        sizeof(bad_cases) / sizeof(bad_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}
