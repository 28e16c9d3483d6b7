/* tests/unit/test_json.c - the event JSON writer */
#include <string.h>
#include "policy/internal.h"
#include "units.h"

START_TEST(test_nested)
{
    struct pol_json j;

    pol_json_init(&j);
    pol_json_obj_begin(&j, NULL);
    pol_json_str(&j, "a", "x");
    pol_json_obj_begin(&j, "b");
    pol_json_int(&j, "n", -5);
    pol_json_bool(&j, "t", true);
    pol_json_obj_end(&j);
    pol_json_arr_begin(&j, "c");
    pol_json_str(&j, NULL, "1");
    pol_json_str(&j, NULL, "2");
    pol_json_arr_end(&j);
    pol_json_obj_end(&j);
    ck_assert(!j.oom);
    ck_assert_str_eq(j.buf,
        "{\"a\":\"x\",\"b\":{\"n\":-5,\"t\":true},\"c\":[\"1\",\"2\"]}");
    pol_json_free(&j);
}
END_TEST

static const struct {
    const char *label, *in, *out;
} esc_cases[] = {
    { "quote and backslash", "a\"b\\c", "\"a\\\"b\\\\c\"" },
    { "control chars", "a\r\n\tb\x01", "\"a\\u000d\\u000a\\u0009b\\u0001\"" },
    { "valid utf-8 kept", "J\xc3\xbcrgen \xe4\xb8\xad", "\"J\xc3\xbcrgen \xe4\xb8\xad\"" },
    { "invalid byte replaced", "a\xff" "b", "\"a\xef\xbf\xbd" "b\"" },
    { "overlong encoding replaced", "\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
    { "surrogate replaced", "\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },
    { "truncated sequence", "\xe4\xb8", "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
};

START_TEST(test_escape)
{
    struct pol_json j;

    pol_json_init(&j);
    pol_json_str(&j, NULL, esc_cases[_i].in);
    ck_assert_msg(strcmp(j.buf, esc_cases[_i].out) == 0, "%s: %s",
        esc_cases[_i].label, j.buf);
    pol_json_free(&j);
}
END_TEST

Suite *
suite_json(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");

    tcase_add_test(tc, test_nested);
    tcase_add_loop_test(tc, test_escape, 0,
        sizeof(esc_cases) / sizeof(esc_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}
