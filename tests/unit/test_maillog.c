/*
 * tests/unit/test_maillog.c - the Postfix log line parser behind
 * outpolicyctl trace, on lines as Postfix 3.7 writes them (captured from
 * the integration harness; TLS and IPv6 lines in Postfix's format).
 */
#include <string.h>

#include "policy/policy.h"
#include "units.h"

START_TEST(test_delivery_sent)
{
    struct pol_logline l;

    ck_assert_int_eq(pol_logline_parse("Nov 26 22:51:59 mx postfix/smtp"
        "[24762]: 0FA42A74289: to=<rcpt@remote.test>, relay=127.0.0.1"
        "[127.0.0.1]:45392, delay=0.02, delays=0.01/0.01/0/0, dsn=2.0.0, "
        "status=sent (250 2.0.0 Ok)", &l), 0);
    ck_assert_int_eq(l.kind, POL_LOG_DELIVERY);
    ck_assert_str_eq(l.ts, "Nov 26 22:51:59");
    ck_assert_str_eq(l.prog, "postfix/smtp");
    ck_assert_str_eq(l.service, "smtp");
    ck_assert_int_eq(l.pid, 24762);
    ck_assert_str_eq(l.qid, "0FA42A74289");
    ck_assert_str_eq(l.to, "rcpt@remote.test");
    ck_assert_str_eq(l.relay_host, "127.0.0.1");
    ck_assert_str_eq(l.relay_ip, "127.0.0.1");
    ck_assert_int_eq(l.relay_port, 45392);
    ck_assert_double_eq_tol(l.delay, 0.02, 1e-9);
    ck_assert_double_eq_tol(l.delays[0], 0.01, 1e-9);
    ck_assert_double_eq_tol(l.delays[1], 0.01, 1e-9);
    ck_assert_str_eq(l.dsn, "2.0.0");
    ck_assert_str_eq(l.status, "sent");
    ck_assert_str_eq(l.reason, "250 2.0.0 Ok");
}
END_TEST

START_TEST(test_deferred_ipv6_multi_instance)
{
    struct pol_logline l;

    ck_assert_int_eq(pol_logline_parse("2026-11-26T23:01:02.123456+00:00 "
        "gw postfix-out/smtp[311]: 4XyZ1k2Lm3zAB: to=<bob@example.net>, "
        "orig_to=<b@example.net>, relay=mx.example.net[2001:db8::25]:25, "
        "delay=301, delays=0.1/0/300/0.9, dsn=4.7.5, status=deferred "
        "(TLS is required, but was not offered by host mx.example.net"
        "[2001:db8::25])", &l), 0);
    ck_assert_int_eq(l.kind, POL_LOG_DELIVERY);
    ck_assert_str_eq(l.ts, "2026-11-26T23:01:02.123456+00:00");
    ck_assert_str_eq(l.prog, "postfix-out/smtp");
    ck_assert_str_eq(l.qid, "4XyZ1k2Lm3zAB"); /* long queue ID */
    ck_assert_str_eq(l.orig_to, "b@example.net");
    ck_assert_str_eq(l.relay_host, "mx.example.net");
    ck_assert_str_eq(l.relay_ip, "2001:db8::25");
    ck_assert_int_eq(l.relay_port, 25);
    ck_assert_str_eq(l.status, "deferred");
    ck_assert_ptr_nonnull(strstr(l.reason, "TLS is required"));
}
END_TEST

START_TEST(test_tls_line)
{
    struct pol_logline l;

    ck_assert_int_eq(pol_logline_parse("Nov 26 23:01:02 mx postfix/smtp"
        "[4242]: Untrusted TLS connection established to mx.tls13.test"
        "[127.0.0.1]:2525: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 "
        "(256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 "
        "bits) server-digest SHA256", &l), 0);
    ck_assert_int_eq(l.kind, POL_LOG_TLS);
    ck_assert_str_eq(l.tls_trust, "Untrusted");
    ck_assert_str_eq(l.tls_version, "TLSv1.3");
    ck_assert_str_eq(l.tls_cipher, "TLS_AES_256_GCM_SHA384");
    ck_assert_str_eq(l.relay, "mx.tls13.test[127.0.0.1]:2525");
    ck_assert_int_eq(l.pid, 4242);
}
END_TEST

static const struct {
    const char *label, *line;
    int rc;
    enum pol_logkind kind;
} kind_cases[] = {
    { "qmgr from", "Nov 26 22:51:59 mx postfix/qmgr[24750]: 0FA42A74289: "
        "from=<case-1@example.com>, size=662, nrcpt=1 (queue active)", 0,
        POL_LOG_FROM },
    { "cleanup message-id", "Nov 26 22:51:59 mx postfix/cleanup[24760]: "
        "0FA42A74289: message-id=<case-1.23470@example.com>", 0,
        POL_LOG_MSGID },
    { "expired", "Nov 26 22:51:59 mx postfix/qmgr[24750]: 0FA42A74289: "
        "from=<a@example.com>, status=expired, returned to sender", 0,
        POL_LOG_EXPIRED },
    { "removed", "Nov 26 22:51:59 mx postfix/qmgr[24750]: 0FA42A74289: "
        "removed", 0, POL_LOG_REMOVED },
    { "bounced, bare (journalctl -o cat)", "0FA42A74289: "
        "to=<nobody@example.org>, relay=mx.example.org[192.0.2.7]:25, "
        "delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host "
        "mx.example.org[192.0.2.7] said: 550 5.1.1 no such user (in reply "
        "to RCPT TO command))", 0, POL_LOG_DELIVERY },
    { "smtpd connect: other", "Nov 26 22:51:59 mx postfix/smtpd[24757]: "
        "connect from unknown[127.0.0.2]", 0, POL_LOG_OTHER },
    { "server TLS line: other", "Nov 26 22:51:59 mx postfix/smtpd[24757]: "
        "Anonymous TLS connection established from unknown[127.0.0.2]: "
        "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)", 0,
        POL_LOG_OTHER },
    { "truncated header", "Nov 26 22:51:59 mx", -1, POL_LOG_OTHER },
    { "no program", "Nov 26 22:51:59 mx something without pid", -1,
        POL_LOG_OTHER },
    { "empty", "", 0, POL_LOG_OTHER },
    { "delivery without status", "Nov 26 22:51:59 mx postfix/smtp[1]: "
        "0FA42A74289: to=<a@b.example>, relay=none", -1, POL_LOG_OTHER },
};

START_TEST(test_kinds)
{
    struct pol_logline l;
    int rc = pol_logline_parse(kind_cases[_i].line, &l);

    ck_assert_msg(rc == kind_cases[_i].rc, "%s: rc %d", kind_cases[_i].label,
        rc);
    if (rc == 0)
        ck_assert_msg(l.kind == kind_cases[_i].kind, "%s: kind %d",
            kind_cases[_i].label, l.kind);
}
END_TEST

Suite *
suite_maillog(void)
{
    Suite *s = suite_create("maillog");
    TCase *tc = tcase_create("maillog");

    tcase_add_test(tc, test_delivery_sent);
    tcase_add_test(tc, test_deferred_ipv6_multi_instance);
    tcase_add_test(tc, test_tls_line);
    tcase_add_loop_test(tc, test_kinds, 0,
        sizeof(kind_cases) / sizeof(kind_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}
