/* tests/unit/test_addrlist.c - CIDR lists and sender lists */
#include <stdlib.h>

#include "policy/internal.h"
#include "units.h"

static const struct {
    const char *label, *spec, *addr;
    bool match;
} match_cases[] = {
    { "v4 host matches itself", "192.0.2.1", "192.0.2.1", true },
    { "v4 host does not match neighbour", "192.0.2.1", "192.0.2.2", false },
    { "v4 /24 matches inside", "192.0.2.0/24", "192.0.2.200", true },
    { "v4 /24 excludes outside", "192.0.2.0/24", "192.0.3.1", false },
    { "v4 /0 matches all v4", "0.0.0.0/0", "203.0.113.9", true },
    { "v4 /12 odd prefix inside", "172.16.0.0/12", "172.31.255.255", true },
    { "v4 /12 odd prefix outside", "172.16.0.0/12", "172.32.0.1", false },
    { "v6 /32 matches inside", "2001:db8::/32", "2001:db8:1::5", true },
    { "v6 /32 excludes outside", "2001:db8::/32", "2001:db9::1", false },
    { "v6 loopback", "::1/128", "::1", true },
    { "v4-mapped v6 client matches v4 entry", "127.0.0.0/8",
        "::ffff:127.0.0.7", true },
    { "v4 entry never matches v6 client", "0.0.0.0/0", "2001:db8::1", false },
    { "v4-mapped block is the v4 block", "::ffff:10.0.0.0/104", "10.9.8.7",
        true },
    { "v4-mapped block excludes outside", "::ffff:10.0.0.0/104", "11.0.0.1",
        false },
    { "empty client address never matches", "0.0.0.0/0", "", false },
    { "junk client address never matches", "0.0.0.0/0", "localhost", false },
};

START_TEST(test_match)
{
    struct pol_addrlist *l = NULL;
    char why[160];

    ck_assert_msg(pol_addrlist_add(&l, match_cases[_i].spec, why,
                      sizeof(why)) == 0, "%s: %s", match_cases[_i].label, why);
    ck_assert_msg(pol_addrlist_match(l, match_cases[_i].addr)
            == match_cases[_i].match, "%s", match_cases[_i].label);
    pol_addrlist_free(l);
}
END_TEST

static const struct {
    const char *label, *spec;
} bad_cases[] = {
    { "empty", "" },
    { "name not address", "mail.example.com" },
    { "v4 prefix too long", "192.0.2.0/33" },
    { "v6 prefix too long", "2001:db8::/129" },
    { "negative prefix", "192.0.2.0/-1" },
    { "empty prefix", "192.0.2.0/" },
    { "trailing junk in prefix", "192.0.2.0/24x" },
    { "host bits set", "192.0.2.1/24" },
    { "bad octet", "192.0.2.256" },
    { "short v4", "192.0.2" },
    { "v4-mapped prefix under 96", "::ffff:10.0.0.0/64" },
};

START_TEST(test_bad)
{
    struct pol_addrlist *l = NULL;
    char why[160] = "";

    ck_assert_msg(pol_addrlist_add(&l, bad_cases[_i].spec, why,
                      sizeof(why)) == -1, "%s accepted", bad_cases[_i].label);
    ck_assert_msg(why[0] != '\0', "%s: no reason", bad_cases[_i].label);
    ck_assert_ptr_null(l);
}
END_TEST

START_TEST(test_senderlist)
{
    char *v[] = { "ops@example.com", "@legacy.example", NULL };
    struct pol_strlist l = { v, 2 };

    ck_assert(pol_senderlist_match(&l, "ops@example.com"));
    ck_assert(pol_senderlist_match(&l, "OPS@Example.COM"));
    ck_assert(!pol_senderlist_match(&l, "dev@example.com"));
    ck_assert(pol_senderlist_match(&l, "anyone@legacy.example"));
    ck_assert(!pol_senderlist_match(&l, "x@sub.legacy.example"));
    ck_assert(!pol_senderlist_match(&l, ""));
}
END_TEST

Suite *
suite_addrlist(void)
{
    Suite *s = suite_create("addrlist");
    TCase *tc = tcase_create("addrlist");

    tcase_add_loop_test(tc, test_match, 0,
        sizeof(match_cases) / sizeof(match_cases[0]));
    tcase_add_loop_test(tc, test_bad, 0,
        sizeof(bad_cases) / sizeof(bad_cases[0]));
    tcase_add_test(tc, test_senderlist);
    suite_add_tcase(s, tc);
    return s;
}
