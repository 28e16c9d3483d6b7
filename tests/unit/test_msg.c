/*
 * tests/unit/test_msg.c - the engine through the message API: outbound
 * selection, submission TLS, TLS-Required, monitor mode, events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/internal.h"
#include "units.h"

static char evfile[64];
static time_t fixed_clock(void *arg) { (void)arg; return 1795000000; }

/* load - config text plus an events file in a temp dir */
static struct pol_config *
load(const char *extra)
{
    static const struct pol_hooks hooks = { NULL, NULL, fixed_clock, NULL };
    char text[2048];
    struct pol_err err;
    struct pol_config *cfg;
    int fd;

    snprintf(evfile, sizeof(evfile), "/tmp/outpolicy-unit.XXXXXX");
    fd = mkstemp(evfile);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(text, sizeof(text), "events = { file = \"%s\"; };\n"
        "outbound = { internal_hosts = [ \"10.0.0.0/8\" ]; };\n"
        "submission_tls = { exempt_hosts = [ \"10.9.9.9\" ]; };\n%s",
        evfile, extra);
    cfg = pol_config_load_string(text, "m.conf", &hooks, &err);
    ck_assert_msg(cfg != NULL, "%s", err.msg);
    ck_assert_int_eq(pol_config_activate(cfg, &err), POL_OK);
    return cfg;
}

/* events - the events file's content (static buffer) */
static const char *
events(void)
{
    static char buf[8192];
    FILE *f = fopen(evfile, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

static const struct {
    const char *label, *addr, *tls, *auth;
    bool outbound;
    enum pol_action want;
    const char *reply; /* prefix */
} cases[] = {
    { "internal plaintext refused", "10.1.1.1", "", "", true, POL_REJECT,
        "530 5.7.0 Outbound mail must be submitted over TLSv1.2 or newer "
        "(this session: no TLS; use STARTTLS)" },
    { "internal TLSv1.1 refused", "10.1.1.1", "TLSv1.1", "", true,
        POL_REJECT, "530 5.7.0 Outbound mail must be submitted over TLSv1.2 "
        "or newer (this session: TLSv1.1)" },
    { "internal TLSv1 refused", "10.1.1.1", "TLSv1", "", true, POL_REJECT,
        "530 5.7.0" },
    { "unknown version fails closed", "10.1.1.1", "QUIC", "", true,
        POL_REJECT, "530 5.7.0 Outbound mail must be submitted over TLSv1.2 "
        "or newer (this session: unrecognised TLS version \"QUIC\")" },
    { "internal TLSv1.2 accepted", "10.1.1.1", "TLSv1.2", "", true,
        POL_ACCEPT, "" },
    { "internal TLSv1.3 accepted", "10.1.1.1", "TLSv1.3", "", true,
        POL_ACCEPT, "" },
    { "exempt host plaintext accepted", "10.9.9.9", "", "", true,
        POL_ACCEPT, "" },
    { "external unauthenticated not outbound", "192.0.2.7", "", "", false,
        POL_ACCEPT, "" },
    { "external authenticated is outbound", "192.0.2.7", "", "alice", true,
        POL_REJECT, "530 5.7.0" },
    { "external authenticated with TLS accepted", "192.0.2.7", "TLSv1.3",
        "alice", true, POL_ACCEPT, "" },
};

START_TEST(test_envfrom)
{
    struct pol_config *cfg = load("");
    struct pol_client cl = { 0 };
    struct pol_verdict v;
    struct pol_msg *m;

    snprintf(cl.addr, sizeof(cl.addr), "%s", cases[_i].addr);
    snprintf(cl.tls_version, sizeof(cl.tls_version), "%s", cases[_i].tls);
    m = pol_msg_new(cfg, &cl, cases[_i].auth, "QID1");
    ck_assert_int_eq(pol_msg_envfrom(m, "a@example.com", &v), POL_OK);
    ck_assert_msg(pol_msg_is_outbound(m) == cases[_i].outbound, "%s",
        cases[_i].label);
    ck_assert_msg(v.action == cases[_i].want, "%s: action %s",
        cases[_i].label, pol_action_name(v.action));
    ck_assert_msg(strncmp(v.reply, cases[_i].reply, strlen(cases[_i].reply))
        == 0, "%s: reply \"%s\"", cases[_i].label, v.reply);
    pol_msg_free(m);
    pol_config_unref(cfg);
    unlink(evfile);
}
END_TEST

/* run - a whole message through the engine */
static struct pol_msg *
run(struct pol_config *cfg, const char *tls, const char *sender,
    const char *const *hdrs, struct pol_verdict *v)
{
    struct pol_client cl = { .addr = "10.1.1.1" };
    struct pol_msg *m;

    snprintf(cl.tls_version, sizeof(cl.tls_version), "%s", tls);
    snprintf(cl.tls_cipher, sizeof(cl.tls_cipher), "TLS_AES_256_GCM_SHA384");
    m = pol_msg_new(cfg, &cl, "", "");
    ck_assert_int_eq(pol_msg_envfrom(m, sender, v), POL_OK);
    ck_assert_int_eq(pol_msg_rcpt(m, "b@dest.example"), POL_OK);
    ck_assert_int_eq(pol_msg_rcpt(m, "c@other.example"), POL_OK);
    for (; *hdrs; hdrs += 2)
        ck_assert_int_eq(pol_msg_header(m, hdrs[0], hdrs[1]), POL_OK);
    pol_msg_set_queue_id(m, "4ABCD1234");
    ck_assert_int_eq(pol_msg_eom(m, v), POL_OK);
    ck_assert_int_eq(pol_msg_finish(m, v), POL_OK);
    return m;
}

static const char *const hdrs_tlsreq[] = {
    "From", "Alice <a@example.com>", "Message-ID", " <m1@example.com>",
    "TLS-Required", "No", "tls-required", "no", NULL,
};

START_TEST(test_tls_required_removed)
{
    struct pol_config *cfg = load("");
    struct pol_verdict v;
    struct pol_msg *m = run(cfg, "TLSv1.3", "a@example.com", hdrs_tlsreq, &v);
    const struct pol_edit *e = pol_msg_edits(m);

    ck_assert_int_eq(v.action, POL_ACCEPT);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->kind, POL_EDIT_DELETE);
    ck_assert_str_eq(e->name, "TLS-Required");
    ck_assert_int_eq(e->index, 2); /* last first */
    ck_assert_ptr_nonnull(e->next);
    ck_assert_int_eq(e->next->index, 1);
    ck_assert_ptr_null(e->next->next);
    ck_assert_ptr_nonnull(strstr(events(), "\"tls_required\":\"removed\""));
    pol_msg_free(m);
    pol_config_unref(cfg);
    unlink(evfile);
}
END_TEST

START_TEST(test_tls_required_kept_for_sender)
{
    struct pol_config *cfg = load("tls_required = { keep_for_senders = "
        "[ \"@example.com\" ]; };\n");
    struct pol_verdict v;
    struct pol_msg *m = run(cfg, "TLSv1.3", "a@example.com", hdrs_tlsreq, &v);

    ck_assert_ptr_null(pol_msg_edits(m));
    ck_assert_ptr_nonnull(strstr(events(), "\"tls_required\":\"kept\""));
    pol_msg_free(m);
    pol_config_unref(cfg);
    unlink(evfile);
}
END_TEST

START_TEST(test_monitor_changes_nothing)
{
    struct pol_config *cfg = load("mode = \"monitor\";\n");
    struct pol_verdict v;
    struct pol_msg *m = run(cfg, "", "a@example.com", hdrs_tlsreq, &v);

    ck_assert_int_eq(v.action, POL_REJECT); /* what would have happened */
    ck_assert(!pol_msg_enforced(m));
    ck_assert_ptr_null(pol_msg_edits(m));
    ck_assert_ptr_nonnull(strstr(events(), "\"mode\":\"monitor\""));
    ck_assert_ptr_nonnull(strstr(events(), "\"applied\":false"));
    ck_assert_ptr_nonnull(strstr(events(), "\"outcome\":\"success\""));
    pol_msg_free(m);
    pol_config_unref(cfg);
    unlink(evfile);
}
END_TEST

START_TEST(test_event_fields)
{
    struct pol_config *cfg = load("");
    struct pol_verdict v;
    struct pol_msg *m = run(cfg, "TLSv1.3", "a@example.com", hdrs_tlsreq, &v);
    const char *ev = events();

    ck_assert_msg(strncmp(ev, "{\"@timestamp\":\"2026-11-18T", 26) == 0,
        "%s", ev);
    ck_assert_int_eq(ev[strlen(ev) - 1], '\n');
    ck_assert_ptr_nonnull(strstr(ev, "\"action\":\"submission\""));
    ck_assert_ptr_nonnull(strstr(ev, "\"local_id\":\"4ABCD1234\""));
    ck_assert_ptr_nonnull(strstr(ev, "\"message_id\":\"<m1@example.com>\""));
    ck_assert_ptr_nonnull(strstr(ev,
        "\"from\":{\"address\":[\"a@example.com\"]}"));
    ck_assert_ptr_nonnull(strstr(ev,
        "\"to\":{\"address\":[\"b@dest.example\",\"c@other.example\"]}"));
    ck_assert_ptr_nonnull(strstr(ev, "\"source\":{\"ip\":\"10.1.1.1\"}"));
    ck_assert_ptr_nonnull(strstr(ev, "\"tls\":{\"established\":true,"
        "\"version\":\"1.3\",\"version_protocol\":\"tls\","
        "\"cipher\":\"TLS_AES_256_GCM_SHA384\"}"));
    ck_assert_ptr_nonnull(strstr(ev, "\"schema\":1"));
    ck_assert_ptr_null(strstr(ev, "\"user\""));
    pol_msg_free(m);
    pol_config_unref(cfg);
    unlink(evfile);
}
END_TEST

START_TEST(test_event_write_failure_tempfails)
{
    struct pol_err err;
    struct pol_config *cfg = pol_config_load_string(
        "events = { file = \"/dev/full\"; on_error = \"tempfail\"; };\n"
        "outbound = { internal_hosts = [ \"10.0.0.0/8\" ]; };\n",
        "f.conf", NULL, &err);
    struct pol_client cl = { .addr = "10.1.1.1", .tls_version = "TLSv1.3" };
    struct pol_verdict v;
    struct pol_msg *m;

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    ck_assert_int_eq(pol_config_activate(cfg, &err), POL_OK);
    m = pol_msg_new(cfg, &cl, "", "Q");
    ck_assert_int_eq(pol_msg_envfrom(m, "a@example.com", &v), POL_OK);
    ck_assert_int_eq(pol_msg_eom(m, &v), POL_OK);
    ck_assert_int_eq(v.action, POL_ACCEPT);
    ck_assert_int_eq(pol_msg_finish(m, &v), POL_OK);
    ck_assert_int_eq(v.action, POL_TEMPFAIL); /* never accepted unrecorded */
    ck_assert_str_eq(v.check, "events");
    ck_assert_str_eq(v.reply, "451 4.3.0 cannot record the message event");
    pol_msg_free(m);
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_refusal_survives_event_failure)
{
    struct pol_err err;
    struct pol_config *cfg = pol_config_load_string(
        "events = { file = \"/dev/full\"; on_error = \"tempfail\"; };\n"
        "on_error = \"accept\";\n"
        "outbound = { internal_hosts = [ \"10.0.0.0/8\" ]; };\n",
        "f.conf", NULL, &err);
    struct pol_client cl = { .addr = "10.1.1.1" }; /* no TLS: refused */
    struct pol_verdict v;
    struct pol_msg *m;

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    ck_assert_int_eq(pol_config_activate(cfg, &err), POL_OK);
    m = pol_msg_new(cfg, &cl, "", "");
    ck_assert_int_eq(pol_msg_envfrom(m, "a@example.com", &v), POL_OK);
    ck_assert_int_eq(v.action, POL_REJECT);
    ck_assert_int_eq(pol_msg_finish(m, &v), POL_OK);
    ck_assert_int_eq(v.action, POL_REJECT);
    ck_assert_ptr_nonnull(strstr(v.reply, "530 5.7.0"));
    pol_msg_free(m);
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_events_buffered)
{
    struct pol_config *cfg = load("");
    struct pol_verdict v;
    struct pol_msg *m1 = run(cfg, "TLSv1.3", "a@example.com", hdrs_tlsreq, &v);
    const char *ev;
    struct pol_msg *m2;

    /* the fixed clock never moves: the second message stays buffered */
    ck_assert_ptr_nonnull(strstr(events(), "\"local_id\":\"4ABCD1234\""));
    m2 = run(cfg, "TLSv1.3", "second@example.com", hdrs_tlsreq, &v);
    ck_assert_ptr_null(strstr(events(), "second@example.com"));
    pol_config_flush(cfg);
    ev = events();
    ck_assert_ptr_nonnull(strstr(ev, "second@example.com"));
    ck_assert_int_eq(ev[strlen(ev) - 1], '\n');
    pol_msg_free(m1);
    pol_msg_free(m2);
    pol_config_unref(cfg);
    unlink(evfile);
}
END_TEST

Suite *
suite_msg(void)
{
    Suite *s = suite_create("msg");
    TCase *tc = tcase_create("msg");

    tcase_add_loop_test(tc, test_envfrom, 0,
        sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_tls_required_removed);
    tcase_add_test(tc, test_tls_required_kept_for_sender);
    tcase_add_test(tc, test_monitor_changes_nothing);
    tcase_add_test(tc, test_event_fields);
    tcase_add_test(tc, test_event_write_failure_tempfails);
    tcase_add_test(tc, test_refusal_survives_event_failure);
    tcase_add_test(tc, test_events_buffered);
    suite_add_tcase(s, tc);
    return s;
}
