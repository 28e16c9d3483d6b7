/*
 * tests/unit/test_dkim.c - key table, signing table and DKIM signing
 * through the message API (libopendkim), including the RFC 8463 body hash.
 * Signatures are verified independently in tests/integration/test_dkim.sh
 * (dkimpy); here we check what the engine decides and emits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/internal.h"
#include "policy/keys.h"
#include "units.h"

static char dir[64];
static char rsa[128], ed[128], rsa8463[128], ed8463[128];
static time_t clock_8463(void *a) { (void)a; return 1528637909; }
static const struct pol_hooks hooks = { NULL, NULL, clock_8463, NULL };

/* shared - ../shared/testdata path */
static const char *
shared(const char *rel)
{
    static char p[512];
    const char *base = getenv("OUTPOLICY_SHARED");

    snprintf(p, sizeof(p), "%s/testdata/%s", base ? base
        : TOP_SRCDIR "/../shared", rel);
    return p;
}

/* write_file - content into dir/name with mode */
static const char *
write_file(const char *name, const void *data, size_t n, mode_t mode)
{
    static char p[128];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
    chmod(p, mode);
    return p;
}

/* ed25519_from_seed - RFC 8463's seed file as a PKCS#8 PEM key */
static void
ed25519_from_seed(const char *seedfile, const char *out)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "(printf '302e020100300506032b657004220420' "
        "| xxd -r -p; base64 -d '%s') | openssl pkey -inform DER -out '%s' "
        "&& chmod 600 '%s'", seedfile, out, out);
    ck_assert_int_eq(system(cmd), 0);
}

static void
setup(void)
{
    char txt[4096], cmd[1024];
    struct pol_err err;

    snprintf(dir, sizeof(dir), "/tmp/outpolicy-dkim.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(rsa, sizeof(rsa), "%s/rsa.pem", dir);
    snprintf(ed, sizeof(ed), "%s/ed.pem", dir);
    snprintf(rsa8463, sizeof(rsa8463), "%s/rsa8463.pem", dir);
    snprintf(ed8463, sizeof(ed8463), "%s/ed8463.pem", dir);
    ck_assert_int_eq(pol_keygen(POL_KEYGEN_RSA, 2048, rsa, txt, sizeof(txt),
        &err), POL_OK);
    ck_assert_int_eq(pol_keygen(POL_KEYGEN_ED25519, 0, ed, txt, sizeof(txt),
        &err), POL_OK);
    ck_assert_ptr_nonnull(strstr(txt, "v=DKIM1; k=ed25519; p="));
    ed25519_from_seed(shared("dkim-rfc8463/brisbane.ed25519.seed"), ed8463);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 600 '%s'",
        shared("dkim-rfc8463/test.rsa.pem"), rsa8463, rsa8463);
    ck_assert_int_eq(system(cmd), 0);
}

static void
teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* conf - a config with keys rsa/ed and the given dkim section body */
static struct pol_config *
conf(const char *dkim_extra, const char *other, struct pol_err *err)
{
    char text[4096];

    snprintf(text, sizeof(text),
        "events = { file = \"\"; };\n"
        "keys = (\n"
        "  { id = \"r\"; domain = \"example.com\"; selector = \"s1\";"
        " file = \"%s\"; },\n"
        "  { id = \"e\"; domain = \"example.com\"; selector = \"e1\";"
        " file = \"%s\"; algorithm = \"ed25519-sha256\"; },\n"
        "  { id = \"fr\"; domain = \"football.example.com\";"
        " selector = \"test\"; file = \"%s\"; },\n"
        "  { id = \"fe\"; domain = \"football.example.com\";"
        " selector = \"brisbane\"; file = \"%s\";"
        " algorithm = \"ed25519-sha256\"; }\n"
        ");\n"
        "dkim = {\n  signing = (\n"
        "    { from = \"example.com\"; keys = [ \"r\", \"e\" ]; },\n"
        "    { from = \"*.example.com\"; keys = [ \"r\" ]; },\n"
        "    { from = \"football.example.com\"; keys = [ \"fe\", \"fr\" ]; }\n"
        "  );\n%s};\n%s", rsa, ed, rsa8463, ed8463, dkim_extra, other);
    return pol_config_load_string(text, "k.conf", &hooks, err);
}

START_TEST(test_good_config)
{
    struct pol_err err;
    struct pol_config *cfg = conf("", "", &err);

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    ck_assert_uint_eq(cfg->keys.n, 4);
    ck_assert_int_eq(pol_keys_find(&cfg->keys, "r")->bits, 2048);
    ck_assert_int_eq(pol_keys_find(&cfg->keys, "fr")->bits, 1024);
    ck_assert_str_eq(pol_dkim_match(cfg, "example.com")->pattern,
        "example.com");
    ck_assert_str_eq(pol_dkim_match(cfg, "EXAMPLE.com")->pattern,
        "example.com");
    ck_assert_str_eq(pol_dkim_match(cfg, "mail.example.com")->pattern,
        "*.example.com");
    ck_assert_str_eq(pol_dkim_match(cfg, "football.example.com")->pattern,
        "football.example.com");
    ck_assert_ptr_null(pol_dkim_match(cfg, "example.org"));
    ck_assert_ptr_null(pol_dkim_match(cfg, "badexample.com"));
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_key_file_errors)
{
    struct pol_err err;
    char text[1024];
    static const char junk[] = "not a key\n";
    const char *p;

    p = write_file("open.pem", "x", 1, 0644);
    snprintf(text, sizeof(text), "keys = ( { id = \"a\"; domain = \"x.test\";"
        " selector = \"s\"; file = \"%s\"; } );\n", p);
    ck_assert_ptr_null(pol_config_load_string(text, "k.conf", NULL, &err));
    ck_assert_msg(strstr(err.msg, "k.conf:1: option 'keys': key file")
        && strstr(err.msg, "accessible by group or others (mode 0644); fix: "
        "chmod 0600"), "%s", err.msg);

    p = write_file("junk.pem", junk, sizeof(junk) - 1, 0600);
    snprintf(text, sizeof(text), "keys = ( { id = \"a\"; domain = \"x.test\";"
        " selector = \"s\"; file = \"%s\"; } );\n", p);
    ck_assert_ptr_null(pol_config_load_string(text, "k.conf", NULL, &err));
    ck_assert_msg(strstr(err.msg, "is not a PEM private key") != NULL, "%s",
        err.msg);

    snprintf(text, sizeof(text), "keys = ( { id = \"a\"; domain = \"x.test\";"
        " selector = \"s\"; file = \"%s\"; algorithm = \"rsa-sha256\"; } );\n",
        ed);
    ck_assert_ptr_null(pol_config_load_string(text, "k.conf", NULL, &err));
    ck_assert_msg(strstr(err.msg, "holds a Ed25519 key") != NULL, "%s",
        err.msg);

    snprintf(text, sizeof(text), "keys = ( { id = \"a\"; domain = \"x.test\";"
        " selector = \"s\"; file = \"%s/missing.pem\"; } );\n", dir);
    ck_assert_ptr_null(pol_config_load_string(text, "k.conf", NULL, &err));
    ck_assert_msg(strstr(err.msg, "missing.pem: No such file") != NULL, "%s",
        err.msg);
}
END_TEST

START_TEST(test_small_rsa_refused)
{
    struct pol_err err;
    char text[1024], small[128], txt[4096];

    snprintf(small, sizeof(small), "%s/small.pem", dir);
    ck_assert_int_eq(pol_keygen(POL_KEYGEN_RSA, 768, small, txt, sizeof(txt),
        &err), POL_OK);
    snprintf(text, sizeof(text), "keys = ( { id = \"a\"; domain = \"x.test\";"
        " selector = \"s\"; file = \"%s\"; } );\n", small);
    ck_assert_ptr_null(pol_config_load_string(text, "k.conf", NULL, &err));
    ck_assert_msg(strstr(err.msg, "is RSA-768; receivers ignore RSA keys "
        "under 1024 bits") != NULL, "%s", err.msg);
}
END_TEST

static const struct {
    const char *label, *signing, *want;
} rule_cases[] = {
    { "unknown key id", "( { from = \"a.test\"; keys = [ \"nope\" ]; } )",
        "no key with id \"nope\"" },
    { "catch-all refused", "( { from = \"*\"; keys = [ \"r\" ]; } )",
        "a catch-all would sign every domain" },
    { "bare TLD wildcard refused", "( { from = \"*.com\"; keys = [ \"r\" ]; } )",
        "a catch-all would sign every domain" },
    { "misaligned key", "( { from = \"example.org\"; keys = [ \"r\" ]; } )",
        "signs as d=example.com, which does not align" },
    { "duplicate from", "( { from = \"example.com\"; keys = [ \"r\" ]; },"
        " { from = \"Example.COM\"; keys = [ \"e\" ]; } )",
        "is listed twice (first at line" },
    { "empty keys", "( { from = \"example.com\"; keys = [ ]; } )",
        "needs keys = [" },
    { "unknown member", "( { from = \"example.com\"; keys = [ \"r\" ];"
        " key = \"r\"; } )", "unknown member \"key\"" },
};

START_TEST(test_rule_errors)
{
    struct pol_err err;
    char text[2048];

    snprintf(text, sizeof(text), "keys = ( { id = \"r\"; domain = "
        "\"example.com\"; selector = \"s1\"; file = \"%s\"; },\n"
        "{ id = \"e\"; domain = \"example.com\"; selector = \"e1\"; "
        "file = \"%s\"; algorithm = \"ed25519-sha256\"; } );\n"
        "dkim = {\n signing = %s;\n};\n", rsa, ed, rule_cases[_i].signing);
    ck_assert_msg(pol_config_load_string(text, "k.conf", NULL, &err) == NULL,
        "%s: accepted", rule_cases[_i].label);
    ck_assert_msg(strstr(err.msg, rule_cases[_i].want) != NULL
        && strstr(err.msg, "k.conf:") == err.msg, "%s: %s",
        rule_cases[_i].label, err.msg);
}
END_TEST

/* sign - run a message through the engine; returns the message */
static struct pol_msg *
sign(struct pol_config *cfg, const char *const *hdrs, const char *body,
    struct pol_verdict *v)
{
    struct pol_client cl = { .addr = "10.0.0.1", .hdr_leadspc = 0 };
    struct pol_msg *m = pol_msg_new(cfg, &cl, "", "Q1");

    pol_msg_set_outbound(m, "joe@example.com");
    for (; *hdrs; hdrs += 2)
        ck_assert_int_eq(pol_msg_header(m, hdrs[0], hdrs[1]), POL_OK);
    ck_assert_int_eq(pol_msg_eoh(m, v), POL_OK);
    if (body != NULL)
        ck_assert_int_eq(pol_msg_body(m, (const unsigned char *)body,
            strlen(body)), POL_OK);
    ck_assert_int_eq(pol_msg_eom(m, v), POL_OK);
    ck_assert_int_eq(pol_msg_finish(m, v), POL_OK);
    return m;
}

/* count_sigs - DKIM-Signature inserts; copies the first into first */
static int
count_sigs(const struct pol_msg *m, const char **first)
{
    int n = 0;

    for (const struct pol_edit *e = pol_msg_edits(m); e; e = e->next)
        if (e->kind == POL_EDIT_INSERT
            && strcmp(e->name, "DKIM-Signature") == 0) {
            if (n++ == 0 && first)
                *first = e->value;
            ck_assert_int_eq(e->index, 0);
        }
    return n;
}

/* RFC 6376 A.1 / RFC 8463 A.3 message, as the MTA hands it over */
static const char *const hdrs_8463[] = {
    "From", "Joe SixPack <joe@football.example.com>",
    "To", "Suzie Q <suzie@shopping.example.net>",
    "Subject", "Is dinner ready?",
    "Date", "Fri, 11 Jul 2003 21:00:37 -0700 (PDT)",
    "Message-ID", "<20030712040037.46341.5F8J@football.example.com>",
    NULL,
};
static const char body_8463[] = "Hi.\r\n\r\nWe lost the game.  Are you "
    "hungry yet?\r\n\r\nJoe.\r\n\r\n";

START_TEST(test_rfc8463_body_hash_dual)
{
    struct pol_err err;
    struct pol_config *cfg = conf("", "", &err);
    struct pol_verdict v;
    struct pol_msg *m;
    const char *sig = NULL;

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    m = sign(cfg, hdrs_8463, body_8463, &v);
    ck_assert_int_eq(v.action, POL_ACCEPT);
    ck_assert_int_eq(count_sigs(m, &sig), 2);
    ck_assert_msg(strstr(sig, "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=")
        != NULL, "%s", sig);
    ck_assert_ptr_nonnull(strstr(sig, "a=ed25519-sha256"));
    ck_assert_ptr_nonnull(strstr(sig, "d=football.example.com"));
    ck_assert_ptr_nonnull(strstr(sig, "t=1528637909"));
    ck_assert_ptr_nonnull(strstr(sig, "c=relaxed/relaxed"));
    ck_assert_ptr_null(strchr(sig, '\r')); /* milter folding is LF only */
    pol_msg_free(m);
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_options_in_signature)
{
    struct pol_err err;
    struct pol_config *cfg = conf("  canonicalization = \"simple/simple\";\n"
        "  expire = 3600;\n  oversign_headers = [ \"From\" ];\n", "", &err);
    struct pol_verdict v;
    struct pol_msg *m;
    const char *sig = NULL;

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    m = sign(cfg, hdrs_8463, body_8463, &v);
    ck_assert_int_eq(count_sigs(m, &sig), 2);
    ck_assert_ptr_nonnull(strstr(sig, "c=simple/simple"));
    ck_assert_ptr_nonnull(strstr(sig, "x=1528641509"));
    ck_assert_msg(strstr(sig, "h=From:To:Subject:Date:Message-ID:From;")
        != NULL || strstr(sig, ":From;") != NULL, "%s", sig);
    pol_msg_free(m);
    pol_config_unref(cfg);
}
END_TEST

static const struct {
    const char *label;
    const char *const hdrs[8];
    const char *extra;
    enum pol_action want;
    int nsig;
    const char *result, *reply;
} cases[] = {
    { "subdomain signs with wildcard rule",
        { "From", "a@mail.example.com", NULL }, "", POL_ACCEPT, 1, "signed",
        "" },
    { "no key: warn by default",
        { "From", "a@example.org", NULL }, "", POL_WARN, 0, "no_key",
        "No DKIM key for example.org" },
    { "no key: reject when configured",
        { "From", "a@example.org", NULL }, "  on_no_key = \"reject\";\n",
        POL_REJECT, 0, "no_key", "550 5.7.1 No DKIM key for example.org" },
    { "no key: accept silently",
        { "From", "a@example.org", NULL }, "  on_no_key = \"accept\";\n",
        POL_ACCEPT, 0, "no_key", "" },
    { "two From fields rejected",
        { "From", "a@example.com", "From", "b@example.com", NULL }, "",
        POL_REJECT, 0, "bad_from", "550 5.7.1 Message has 2 From: headers" },
    { "two From fields signed when allowed",
        { "From", "a@example.com", "From", "b@example.com", NULL },
        "  on_multiple_from = \"sign\";\n", POL_ACCEPT, 2, "signed", "" },
    { "no From rejected", { "Subject", "x", NULL }, "", POL_REJECT, 0,
        "bad_from", "550 5.7.1 Message has no From: header" },
    { "unparseable From tempfails when configured",
        { "From", "Joe <joe@example.com", NULL },
        "  on_bad_from = \"tempfail\";\n", POL_TEMPFAIL, 0, "bad_from",
        "451 4.7.1 From: header cannot be parsed" },
    { "our own signature present: not signed twice",
        { "DKIM-Signature", "v=1; a=rsa-sha256; d=example.com; s=s1; b=x",
            "From", "a@example.com", NULL }, "", POL_ACCEPT, 1, "signed", "" },
    { "both our signatures present",
        { "DKIM-Signature", "v=1; d=example.com;\r\n\ts = s1; b=x",
            "DKIM-Signature", "v=1; d=EXAMPLE.com; s=e1; b=y",
            "From", "a@example.com", NULL }, "", POL_ACCEPT, 0,
        "already_signed", "" },
    { "someone else's signature does not stop us",
        { "DKIM-Signature", "v=1; d=example.net; s=s1; b=x",
            "From", "a@example.com", NULL }, "", POL_ACCEPT, 2, "signed", "" },
    { "disabled", { "From", "a@example.com", NULL },
        "  enabled = false;\n", POL_ACCEPT, 0, "disabled", "" },
};

START_TEST(test_decisions)
{
    struct pol_err err;
    struct pol_config *cfg = conf(cases[_i].extra, "", &err);
    struct pol_verdict v;
    struct pol_msg *m;

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    m = sign(cfg, cases[_i].hdrs, "body\r\n", &v);
    ck_assert_msg(v.action == cases[_i].want, "%s: action %s (%s)",
        cases[_i].label, pol_action_name(v.action), v.reply);
    ck_assert_msg(count_sigs(m, NULL) == cases[_i].nsig, "%s: %d sigs",
        cases[_i].label, count_sigs(m, NULL));
    ck_assert_msg(strncmp(v.reply, cases[_i].reply, strlen(cases[_i].reply))
        == 0, "%s: reply %s", cases[_i].label, v.reply);
    pol_msg_free(m);
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_monitor_signs_nothing)
{
    struct pol_err err;
    struct pol_config *cfg = conf("", "mode = \"monitor\";\n", &err);
    struct pol_verdict v;
    struct pol_msg *m;

    ck_assert_msg(cfg != NULL, "%s", err.msg);
    m = sign(cfg, hdrs_8463, body_8463, &v);
    ck_assert_int_eq(count_sigs(m, NULL), 0);
    pol_msg_free(m);
    pol_config_unref(cfg);
}
END_TEST

START_TEST(test_header_block_bounded)
{
    struct pol_err err;
    struct pol_config *cfg = conf("", "", &err);
    struct pol_client cl = { .addr = "10.0.0.1" };
    struct pol_msg *m = pol_msg_new(cfg, &cl, "", "Q");
    char *big = malloc(100001);
    enum pol_status st = POL_OK;

    memset(big, 'a', 100000);
    big[100000] = '\0';
    pol_msg_set_outbound(m, "");
    for (int i = 0; i < 20 && st == POL_OK; i++)
        st = pol_msg_header(m, "X-Big", big);
    ck_assert_int_eq(st, POL_EPERM);
    ck_assert_ptr_nonnull(strstr(pol_msg_error(m), "552 5.3.4"));
    free(big);
    pol_msg_free(m);
    pol_config_unref(cfg);
}
END_TEST

Suite *
suite_dkim(void)
{
    Suite *s = suite_create("dkim");
    TCase *tc = tcase_create("dkim");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_good_config);
    tcase_add_test(tc, test_key_file_errors);
    tcase_add_test(tc, test_small_rsa_refused);
    tcase_add_loop_test(tc, test_rule_errors, 0,
        sizeof(rule_cases) / sizeof(rule_cases[0]));
    tcase_add_test(tc, test_rfc8463_body_hash_dual);
    tcase_add_test(tc, test_options_in_signature);
    tcase_add_loop_test(tc, test_decisions, 0,
        sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_monitor_signs_nothing);
    tcase_add_test(tc, test_header_block_bounded);
    suite_add_tcase(s, tc);
    return s;
}
