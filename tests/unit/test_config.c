/* tests/unit/test_config.c - config loading and strict validation */
#include <string.h>
#include <syslog.h>

#include "policy/internal.h"
#include "units.h"

static const struct {
    const char *label, *text, *want; /* want: substring of the error */
} bad_cases[] = {
    { "unknown top-level key", "mode = \"enforce\";\nfoo = 1;\n",
        "t.conf:2: option 'foo': unknown option" },
    { "unknown key in section", "daemon = {\n  sockett = \"x\";\n};\n",
        "t.conf:2: option 'daemon.sockett': unknown option" },
    { "unknown section", "nosuch = { a = 1; };\n",
        "t.conf:1: option 'nosuch': unknown section" },
    { "section written as scalar", "daemon = 1;\n",
        "option 'daemon': is a section" },
    { "wrong type: string for int", "daemon = { log_level = \"2\"; };\n",
        "option 'daemon.log_level': must be an integer" },
    { "out of range int", "daemon = {\n log_level = 9;\n};\n",
        "t.conf:2: option 'daemon.log_level': 9 is out of range 0..3" },
    { "wrong type: int for bool", "events = { syslog = 1; };\n",
        "option 'events.syslog': must be true or false" },
    { "bad enum", "mode = \"enforcing\";\n",
        "option 'mode': \"enforcing\" is not one of \"enforce\" or "
        "\"monitor\"" },
    { "bad tls version", "submission_tls = { min_version = \"TLSv1.5\"; };\n",
        "option 'submission_tls.min_version'" },
    { "bad CIDR", "outbound = {\n internal_hosts = [ \"10.0.0.0/8\",\n"
        "   \"10.300.0.0/16\" ];\n};\n",
        "t.conf:3: option 'outbound.internal_hosts': \"10.300.0.0\" is not "
        "an IPv4 address" },
    { "CIDR host bits", "submission_tls = { exempt_hosts = "
        "[ \"192.0.2.1/24\" ]; };\n", "host bits set" },
    { "list of non-strings", "outbound = { internal_hosts = [ 1, 2 ]; };\n",
        "element 1 is not a string" },
    { "scalar where list expected",
        "outbound = { internal_hosts = \"10.0.0.0/8\"; };\n",
        "must be a list of strings" },
    { "bad sender entry", "tls_required = { keep_for_senders = "
        "[ \"nobody\" ]; };\n", "\"nobody\" is not \"user@domain\"" },
    { "bad socket", "daemon = { socket = \"/run/x.sock\"; };\n",
        "option 'daemon.socket': \"/run/x.sock\": must be" },
    { "relative unix socket", "daemon = { socket = \"unix:x.sock\"; };\n",
        "absolute path" },
    { "bad inet port", "daemon = { socket = \"inet:70000@127.0.0.1\"; };\n",
        "PORT 1..65535" },
    { "inet without host", "daemon = { socket = \"inet:8891\"; };\n",
        "without @HOST the milter would listen on every address" },
    { "bad octal mode", "daemon = { socket_mode = \"0999\"; };\n",
        "is not an octal mode" },
    { "relative pidfile", "daemon = { pidfile = \"run/x.pid\"; };\n",
        "is not an absolute path" },
    { "syntax error", "on_error = \"accept\";\nmode = = 2;\n",
        "t.conf:2: syntax error" },
    { "duplicate setting", "mode = \"enforce\";\nmode = \"monitor\";\n",
        "t.conf:2: syntax error" },
};

START_TEST(test_bad)
{
    struct pol_err err;
    struct pol_config *cfg = pol_config_load_string(bad_cases[_i].text,
        "t.conf", NULL, &err);

    ck_assert_msg(cfg == NULL, "%s: accepted", bad_cases[_i].label);
    ck_assert_msg(strstr(err.msg, bad_cases[_i].want) != NULL,
        "%s: error \"%s\" lacks \"%s\"", bad_cases[_i].label, err.msg,
        bad_cases[_i].want);
}
END_TEST

START_TEST(test_defaults)
{
    struct pol_err err;
    struct pol_config *cfg = pol_config_load_string("", "empty", NULL, &err);

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    ck_assert_int_eq(cfg->mode, POL_MODE_ENFORCE);
    ck_assert_int_eq(cfg->on_error, POL_TEMPFAIL);
    ck_assert_str_eq(cfg->daemon.socket, "unix:/run/outpolicy/outpolicyd.sock");
    ck_assert_int_eq(cfg->daemon.socket_mode, 0660);
    ck_assert_str_eq(cfg->daemon.user, "");
    ck_assert_int_eq(cfg->daemon.syslog_facility, LOG_MAIL);
    ck_assert_int_eq(cfg->submission_tls.min_version, 0x0303);
    ck_assert_int_eq(cfg->submission_tls.action, POL_REJECT);
    ck_assert(pol_addrlist_match(cfg->outbound.internal_hosts, "127.0.0.1"));
    ck_assert(pol_addrlist_match(cfg->outbound.internal_hosts, "::1"));
    ck_assert(!pol_addrlist_match(cfg->outbound.internal_hosts, "192.0.2.1"));
    ck_assert(cfg->outbound.authenticated);
    ck_assert(cfg->tls_required.strip);
    ck_assert_int_eq(cfg->events.on_error, POL_ACCEPT);
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_values)
{
    struct pol_err err;
    struct pol_config *cfg = pol_config_load_string(
        "mode = \"monitor\";\non_error = \"accept\";\n"
        "daemon = { socket = \"inet:8891@127.0.0.1\"; socket_mode = \"0600\";"
        " log_level = 3; syslog_facility = \"local3\"; };\n"
        "submission_tls = { min_version = \"TLSv1.3\"; action = \"warn\";"
        " exempt_hosts = [ \"2001:db8::/32\" ]; };\n"
        "tls_required = { keep_for_senders = [ \"@legacy.example\" ]; };\n",
        "v.conf", NULL, &err);

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    ck_assert_int_eq(cfg->mode, POL_MODE_MONITOR);
    ck_assert_int_eq(cfg->on_error, POL_ACCEPT);
    ck_assert_str_eq(pol_config_daemon(cfg)->socket, "inet:8891@127.0.0.1");
    ck_assert_int_eq(pol_config_daemon(cfg)->socket_mode, 0600);
    ck_assert_int_eq(cfg->daemon.syslog_facility, LOG_LOCAL3);
    ck_assert_int_eq(cfg->submission_tls.min_version, 0x0304);
    ck_assert_int_eq(cfg->submission_tls.action, POL_WARN);
    ck_assert(pol_addrlist_match(cfg->submission_tls.exempt_hosts,
        "2001:db8::25"));
    ck_assert(pol_senderlist_match(&cfg->tls_required.keep_for_senders,
        "x@legacy.example"));
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_shipped_file)
{
    struct pol_err err;
    struct pol_config *cfg = pol_config_load(TOP_SRCDIR "/conf/outpolicy.conf",
        NULL, &err);

    ck_assert_msg(cfg != NULL, "conf/outpolicy.conf: %s", err.msg);
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_missing_file)
{
    struct pol_err err;

    ck_assert_ptr_null(pol_config_load("/nonexistent/outpolicy.conf", NULL,
        &err));
    ck_assert_msg(strstr(err.msg, "/nonexistent/outpolicy.conf: cannot read")
        != NULL, "%s", err.msg);
}
END_TEST

START_TEST(test_refcount)
{
    struct pol_err err;
    struct pol_config *cfg = pol_config_load_string("", "r", NULL, &err);

    ck_assert_ptr_eq(pol_config_ref(cfg), cfg);
    pol_config_unref(cfg);
    ck_assert_str_eq(pol_config_file(cfg), "r"); /* still alive */
    pol_config_unref(cfg);
    pol_config_unref(NULL);
}
END_TEST

Suite *
suite_config(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_loop_test(tc, test_bad, 0,
        sizeof(bad_cases) / sizeof(bad_cases[0]));
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_shipped_file);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_refcount);
    suite_add_tcase(s, tc);
    return s;
}
