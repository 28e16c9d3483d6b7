/* tests/unit/test_addr.c - From: address-list parsing */
#include <string.h>

#include "policy/internal.h"
#include "units.h"

static const struct {
    const char *label, *value;
    int n;
    const char *first, *second;
} cases[] = {
    { "bare address", "alice@example.com", 1, "alice@example.com", NULL },
    { "display name and angle", "Alice Example <alice@example.com>", 1,
        "alice@example.com", NULL },
    { "quoted display name with comma", "\"Doe, John\" <jd@example.com>",
        1, "jd@example.com", NULL },
    { "comment after address", "alice@example.com (Alice)", 1,
        "alice@example.com", NULL },
    { "nested comment", "a@example.com (x (y) z)", 1, "a@example.com",
        NULL },
    { "two mailboxes", "a@x.example, B <b@y.example>", 2, "a@x.example",
        "b@y.example" },
    { "group", "team: a@x.example, b@y.example;", 2, "a@x.example",
        "b@y.example" },
    { "empty group", "undisclosed-recipients:;", 0, NULL, NULL },
    { "quoted local part", "\"a b\"@example.com", 1, "\"a b\"@example.com",
        NULL },
    { "obsolete route", "<@relay.example:u@example.com>", 1,
        "u@example.com", NULL },
    { "folded value", "Alice\r\n <alice@example.com>", 1,
        "alice@example.com", NULL },
    { "utf-8 display name", "J\xc3\xbcrgen <j@example.de>", 1,
        "j@example.de", NULL },
    { "no domain", "alice", -1, NULL, NULL },
    { "empty angle", "<>", -1, NULL, NULL },
    { "unterminated angle", "Alice <alice@example.com", -1, NULL, NULL },
    { "unterminated quote", "\"Alice <alice@example.com>", -1, NULL, NULL },
    { "unterminated comment", "alice@example.com (oops", -1, NULL, NULL },
    { "two angle addrs in one mailbox", "<a@x.example> <b@y.example>", -1,
        NULL, NULL },
    { "stray closing bracket", "a@example.com>", -1, NULL, NULL },
    { "bad domain character", "a@exa mple!com", -1, NULL, NULL },
};

START_TEST(test_parse)
{
    struct pol_arena *a = pol_arena_new();
    const char *out[4] = { NULL };
    int n = pol_addr_parse_list(a, cases[_i].value, out, 4);

    ck_assert_msg(n == cases[_i].n, "%s: got %d want %d", cases[_i].label, n,
        cases[_i].n);
    if (cases[_i].first)
        ck_assert_str_eq(out[0], cases[_i].first);
    if (cases[_i].second)
        ck_assert_str_eq(out[1], cases[_i].second);
    pol_arena_free(a);
}
END_TEST

START_TEST(test_more_than_max_counted)
{
    struct pol_arena *a = pol_arena_new();
    const char *out[2];

    ck_assert_int_eq(pol_addr_parse_list(a, "a@x.example, b@x.example, "
        "c@x.example", out, 2), 3);
    ck_assert_str_eq(out[1], "b@x.example");
    pol_arena_free(a);
}
END_TEST

START_TEST(test_domain)
{
    ck_assert_str_eq(pol_addr_domain("a@example.com"), "example.com");
    ck_assert_str_eq(pol_addr_domain("\"a@b\"@example.com"), "example.com");
    ck_assert_str_eq(pol_addr_domain("nodomain"), "");
    ck_assert_str_eq(pol_addr_domain(""), "");
}
END_TEST

Suite *
suite_addr(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("addr");

    tcase_add_loop_test(tc, test_parse, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_more_than_max_counted);
    tcase_add_test(tc, test_domain);
    suite_add_tcase(s, tc);
    return s;
}
