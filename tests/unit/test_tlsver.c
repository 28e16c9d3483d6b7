/* tests/unit/test_tlsver.c - TLS version names and ordering */
#include "policy/internal.h"
#include "units.h"

static const struct {
    const char *label, *name;
    int want;
} cases[] = {
    { "no TLS", "", 0 },
    { "SSLv3", "SSLv3", 0x0300 },
    { "TLSv1 (no minor)", "TLSv1", 0x0301 },
    { "TLSv1.1", "TLSv1.1", 0x0302 },
    { "TLSv1.2", "TLSv1.2", 0x0303 },
    { "TLSv1.3", "TLSv1.3", 0x0304 },
    { "future TLSv1.4 parses above 1.3", "TLSv1.4", 0x0305 },
    { "case-insensitive", "tlsv1.2", 0x0303 },
    { "junk", "TLS1.2", -1 },
    { "trailing junk", "TLSv1.2x", -1 },
    { "dot without minor", "TLSv1.", -1 },
    { "other protocol", "DTLSv1.2", -1 },
};

START_TEST(test_parse)
{
    ck_assert_msg(pol_tls_version_parse(cases[_i].name) == cases[_i].want,
        "%s", cases[_i].label);
}
END_TEST

START_TEST(test_order)
{
    /* the check's rule: below the minimum is refused */
    ck_assert(pol_tls_version_parse("TLSv1.1") < 0x0303);
    ck_assert(pol_tls_version_parse("TLSv1") < 0x0303);
    ck_assert(pol_tls_version_parse("TLSv1.2") >= 0x0303);
    ck_assert(pol_tls_version_parse("TLSv1.3") >= 0x0303);
    ck_assert(pol_tls_version_parse("TLSv1.2") < 0x0304);
}
END_TEST

START_TEST(test_short)
{
    char b[8];

    ck_assert_str_eq(pol_tls_version_short(0x0304, b, sizeof(b)), "1.3");
    ck_assert_str_eq(pol_tls_version_short(0x0301, b, sizeof(b)), "1.0");
    ck_assert_str_eq(pol_tls_version_short(0x0300, b, sizeof(b)), "3.0");
    ck_assert_str_eq(pol_tls_version_short(0, b, sizeof(b)), "");
}
END_TEST

Suite *
suite_tlsver(void)
{
    Suite *s = suite_create("tlsver");
    TCase *tc = tcase_create("tlsver");

    tcase_add_loop_test(tc, test_parse, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_order);
    tcase_add_test(tc, test_short);
    suite_add_tcase(s, tc);
    return s;
}
