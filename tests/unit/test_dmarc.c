/*
 * tests/unit/test_dmarc.c - DMARC record parsing, organizational domains
 * from the Public Suffix List, identifier alignment, SPF result names.
 */
#include <string.h>

#include "policy/internal.h"
#include "policy/spf.h"
#include "units.h"

static const struct {
    const char *label, *txt;
    int ok, p, sp, pct;
    bool adkim_s, aspf_s;
} parse_cases[] = {
    { "minimal reject", "v=DMARC1; p=reject", 1, POL_DMARC_REJECT,
        POL_DMARC_REJECT, 100, false, false },
    { "sp and strict modes", "v=DMARC1; p=quarantine; sp=none; adkim=s; "
        "aspf=s; pct=50", 1, POL_DMARC_QUARANTINE, POL_DMARC_NONE, 50, true,
        true },
    { "whitespace and trailing semicolon", "v=DMARC1 ;  p = none ; ", 1,
        POL_DMARC_NONE, POL_DMARC_NONE, 100, false, false },
    { "case-insensitive policy value", "v=DMARC1; p=REJECT", 1,
        POL_DMARC_REJECT, POL_DMARC_REJECT, 100, false, false },
    { "unknown tags ignored", "v=DMARC1; p=none; fo=1; ri=3600; x=y", 1,
        POL_DMARC_NONE, POL_DMARC_NONE, 100, false, false },
    { "invalid adkim keeps relaxed", "v=DMARC1; p=reject; adkim=x", 1,
        POL_DMARC_REJECT, POL_DMARC_REJECT, 100, false, false },
    { "invalid pct ignored", "v=DMARC1; p=reject; pct=150", 1,
        POL_DMARC_REJECT, POL_DMARC_REJECT, 100, false, false },
    { "bad p with rua becomes none", "v=DMARC1; p=bogus; "
        "rua=mailto:d@example.com", 1, POL_DMARC_NONE, POL_DMARC_NONE, 100,
        false, false },
    { "no p with rua is none", "v=DMARC1; rua=mailto:d@example.com", 1,
        POL_DMARC_NONE, POL_DMARC_NONE, 100, false, false },
    { "bad p without rua", "v=DMARC1; p=bogus", 0, 0, 0, 0, false, false },
    { "no p, no rua", "v=DMARC1; pct=10", 0, 0, 0, 0, false, false },
    { "v not first", "p=reject; v=DMARC1", 0, 0, 0, 0, false, false },
    { "wrong version", "v=DMARC2; p=reject", 0, 0, 0, 0, false, false },
    { "empty", "", 0, 0, 0, 0, false, false },
    { "garbage", "hello world", 0, 0, 0, 0, false, false },
    { "tag without value separator", "v=DMARC1; p", 0, 0, 0, 0, false,
        false },
};

START_TEST(test_parse)
{
    struct pol_dmarc_record r;
    char why[128] = "";
    int ok = pol_dmarc_parse(parse_cases[_i].txt, &r, why, sizeof(why)) == 0;

    ck_assert_msg(ok == parse_cases[_i].ok, "%s: %s", parse_cases[_i].label,
        why);
    if (!ok) {
        ck_assert_msg(why[0] != '\0', "%s: no reason", parse_cases[_i].label);
        return;
    }
    ck_assert_int_eq(r.p, parse_cases[_i].p);
    ck_assert_int_eq(r.sp, parse_cases[_i].sp);
    ck_assert_int_eq(r.pct, parse_cases[_i].pct);
    ck_assert(r.adkim_strict == parse_cases[_i].adkim_s);
    ck_assert(r.aspf_strict == parse_cases[_i].aspf_s);
}
END_TEST

static struct pol_config *
activated(void)
{
    struct pol_err err;
    /* an unreachable name server: these tests never look anything up */
    struct pol_config *cfg = pol_config_load_string(
        "dns = { nameservers = [ \"127.0.0.1@9\" ]; timeout = 1; };\n"
        "events = { file = \"\"; };\n", "d.conf", NULL, &err);

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    ck_assert_msg(pol_config_activate(cfg, &err) == POL_OK, "%s", err.msg);
    return cfg;
}

static const struct {
    const char *domain, *org;
} org_cases[] = {
    { "example.com", "example.com" },
    { "mail.example.com", "example.com" },
    { "a.b.c.example.com", "example.com" },
    { "example.co.uk", "example.co.uk" },
    { "mail.example.co.uk", "example.co.uk" },
    { "co.uk", "" },
    { "com", "" },
};

START_TEST(test_org_domain)
{
    struct pol_config *cfg = activated();

    ck_assert_str_eq(pol_org_domain(cfg, org_cases[_i].domain),
        org_cases[_i].org);
    pol_config_unref(cfg);
}
END_TEST

static const struct {
    const char *label, *a, *b;
    bool strict, want;
} align_cases[] = {
    { "same domain strict", "example.com", "example.com", true, true },
    { "case-insensitive", "Example.COM", "example.com", true, true },
    { "subdomain relaxed", "bounce.example.com", "example.com", false,
        true },
    { "subdomain strict", "bounce.example.com", "example.com", true, false },
    { "sibling subdomains relaxed", "a.example.com", "b.example.com", false,
        true },
    { "psl boundary relaxed", "mail.example.co.uk", "example.co.uk", false,
        true },
    { "different org under co.uk", "example.co.uk", "other.co.uk", false,
        false },
    { "public suffix never aligns", "co.uk", "co.uk.", false, false },
    { "different domains", "example.com", "example.net", false, false },
    { "empty", "", "example.com", false, false },
};

START_TEST(test_aligned)
{
    struct pol_config *cfg = activated();

    ck_assert_msg(pol_aligned(cfg, align_cases[_i].a, align_cases[_i].b,
        align_cases[_i].strict) == align_cases[_i].want, "%s",
        align_cases[_i].label);
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_spf_names)
{
    ck_assert_str_eq(pol_spf_result_name(POL_SPF_PASS), "pass");
    ck_assert_str_eq(pol_spf_result_name(POL_SPF_TEMPERROR), "temperror");
    ck_assert_str_eq(pol_spf_result_name(POL_SPF_PERMERROR), "permerror");
    ck_assert_str_eq(pol_spf_result_name((enum pol_spf_result)99), "none");
}
END_TEST

START_TEST(test_dns_config_errors)
{
    struct pol_err err;

    ck_assert_ptr_null(pol_config_load_string("dns = { nameservers = "
        "[ \"localhost\" ]; };\n", "d.conf", NULL, &err));
    ck_assert_msg(strstr(err.msg, "d.conf:1: option 'dns.nameservers': "
        "\"localhost\" is not an IP address") != NULL, "%s", err.msg);
    ck_assert_ptr_null(pol_config_load_string("egress = { ips = "
        "[ \"192.0.2.0/24\" ]; };\n", "d.conf", NULL, &err));
    ck_assert_msg(strstr(err.msg, "is not an IP address") != NULL, "%s",
        err.msg);
    ck_assert_ptr_null(pol_config_load_string("egress = { spf_includes = "
        "[ \"not a domain\" ]; };\n", "d.conf", NULL, &err));
    ck_assert_msg(strstr(err.msg, "is not a domain name") != NULL, "%s",
        err.msg);
    ck_assert_ptr_null(pol_config_load_string("spf = { on_fail = "
        "\"bounce\"; };\n", "d.conf", NULL, &err));
    ck_assert_msg(strstr(err.msg, "option 'spf.on_fail'") != NULL, "%s",
        err.msg);
    ck_assert_ptr_null(pol_config_load_string("dns = { timeout = 0; };\n",
        "d.conf", NULL, &err));
    ck_assert_msg(strstr(err.msg, "out of range 1..60") != NULL, "%s",
        err.msg);
}
END_TEST

Suite *
suite_dmarc(void)
{
    Suite *s = suite_create("dmarc");
    TCase *tc = tcase_create("dmarc");

    tcase_add_loop_test(tc, test_parse, 0,
        sizeof(parse_cases) / sizeof(parse_cases[0]));
    tcase_add_loop_test(tc, test_org_domain, 0,
        sizeof(org_cases) / sizeof(org_cases[0]));
    tcase_add_loop_test(tc, test_aligned, 0,
        sizeof(align_cases) / sizeof(align_cases[0]));
    tcase_add_test(tc, test_spf_names);
    tcase_add_test(tc, test_dns_config_errors);
    suite_add_tcase(s, tc);
    return s;
}
