/*
 * milter/callbacks.c - the libmilter callbacks (mlfi_*): collect what the
 * MTA says into the policy engine's message record and apply the engine's
 * verdicts and header edits.  No policy is decided here.
 *
 * Owns the current config pointer (swapped by SIGHUP in main.c) and the
 * per-connection state.  libmilter runs one thread per connection; the
 * config pointer is guarded by a mutex, each message holds its own
 * reference, so a reload never changes a message in flight.
 * Licence: BSD-2-Clause.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <libmilter/mfapi.h>

#include "mf.h"

struct mf_conn {
    struct pol_client client;
    struct pol_msg *msg;
    unsigned long pflags;  /* protocol flags agreed with the MTA */
    enum pol_status held;  /* a failure in a no-reply step, not yet told */
};

/* steps that never refuse a message: the MTA need not wait for a reply to
 * them (one round trip less each; headers and body chunks are many); and
 * no DATA or unknown commands at all (no callback here) */
#define MF_NOREPLY (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_HDR \
                    | SMFIP_NR_BODY | SMFIP_NODATA | SMFIP_NOUNKNOWN)

/* Agree to MF_NOREPLY?  Only on a unix socket.  Over TCP, without DATA
 * Postfix writes the DATA-stage macros in one small packet and the first
 * header in another with nothing to wait for in between, and it does not
 * set TCP_NODELAY on its milter connections: Nagle holds the header until
 * our delayed ACK, 40 ms per message (measured through Postfix, one SMTP
 * session: 22 msgs/s instead of 276).  The no-reply steps alone did not
 * stall over TCP, but gained nothing measurable there either, so TCP keeps
 * the plain protocol.  Set once at start-up, before any session. */
static bool noreply_ok;

void
mf_set_noreply(bool on)
{
    noreply_ok = on;
}

static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pol_config *cfg_current;
static atomic_int sessions;

struct pol_config *
mf_config_get(void)
{
    struct pol_config *cfg;

    pthread_mutex_lock(&cfg_lock);
    cfg = cfg_current ? pol_config_ref(cfg_current) : NULL;
    pthread_mutex_unlock(&cfg_lock);
    return cfg;
}

struct pol_config *
mf_config_swap(struct pol_config *cfg)
{
    struct pol_config *old;

    pthread_mutex_lock(&cfg_lock);
    old = cfg_current;
    cfg_current = cfg;
    pthread_mutex_unlock(&cfg_lock);
    return old;
}

int
mf_sessions_active(void)
{
    return atomic_load(&sessions);
}

/* macro - a macro's value, "" when the MTA did not send it */
static const char *
macro(SMFICTX *ctx, const char *name)
{
    const char *v = smfi_getsymval(ctx, (char *)name);

    return v != NULL ? v : "";
}

/* copy - bounded copy of a macro into a client field */
static void
copy(char *dst, size_t len, const char *src)
{
    if (*src != '\0')
        snprintf(dst, len, "%s", src);
}

/* mf_reply - set the SMTP reply of a verdict; libmilter needs '%' doubled */
static void
mf_reply(SMFICTX *ctx, const char *reply)
{
    char rcode[4], xcode[16], text[512];
    const char *t;
    size_t n = 0;

    if (pol_reply_split(reply, rcode, xcode, &t) != 0)
        return;
    for (; *t && n + 2 < sizeof(text); t++) {
        if (*t == '\r' || *t == '\n')
            continue;
        if (*t == '%')
            text[n++] = '%';
        text[n++] = *t;
    }
    text[n] = '\0';
    smfi_setreply(ctx, rcode, xcode, text);
}

/* mf_action - the milter status for a verdict, with its reply */
static sfsistat
mf_action(SMFICTX *ctx, const struct pol_verdict *v)
{
    switch (v->action) {
    case POL_REJECT:
        mf_reply(ctx, v->reply);
        return SMFIS_REJECT;
    case POL_TEMPFAIL:
        mf_reply(ctx, v->reply);
        return SMFIS_TEMPFAIL;
    case POL_QUARANTINE:
        smfi_quarantine(ctx, (char *)(v->check ? v->check : "outpolicy"));
        return SMFIS_CONTINUE;
    default:
        return SMFIS_CONTINUE;
    }
}

/* mf_failed - a stage returned an error: malformed input is refused,
 * anything else gets the configured on_error; the event records it */
static sfsistat
mf_failed(SMFICTX *ctx, struct mf_conn *c, enum pol_status st)
{
    const char *qid = macro(ctx, "i");
    struct pol_verdict v = { .action = POL_REJECT, .check = "input" };

    if (st != POL_EPERM) {
        v.action = pol_msg_error_action(c->msg) == POL_ACCEPT ? POL_ACCEPT
                                                              : POL_TEMPFAIL;
        v.check = "error";
    }
    if (!pol_msg_enforced(c->msg))
        v.action = POL_ACCEPT; /* monitor mode changes nothing */
    snprintf(v.reply, sizeof(v.reply), "%s", pol_msg_error(c->msg));
    mf_log(st == POL_EPERM ? LOG_NOTICE : LOG_ERR, qid, "%s \"%s\" "
        "action=%s", st == POL_EPERM ? "refused" : "error", v.reply,
        pol_action_name(v.action));
    pol_msg_finish(c->msg, &v);
    if (v.action == POL_ACCEPT)
        return SMFIS_ACCEPT;
    mf_reply(ctx, v.reply);
    return v.action == POL_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

/* mf_log_verdict - one line per decided message */
static void
mf_log_verdict(struct mf_conn *c, const char *qid, const struct pol_verdict *v,
    bool applied)
{
    if (v->action == POL_ACCEPT) {
        mf_log(LOG_INFO, qid, "verdict action=accept client=%s",
            c->client.addr);
        return;
    }
    mf_log(LOG_NOTICE, qid, "verdict action=%s check=%s applied=%s "
        "client=%s reason=\"%s\"", pol_action_name(v->action),
        v->check ? v->check : "-", applied ? "yes" : "no (monitor mode)",
        c->client.addr, v->reply);
}

/* conn_get - the session state, created at negotiation or connect */
static struct mf_conn *
conn_get(SMFICTX *ctx)
{
    struct mf_conn *c = smfi_getpriv(ctx);

    if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL) {
        atomic_fetch_add(&sessions, 1);
        smfi_setpriv(ctx, c);
    }
    return c;
}

/* ok - the answer to a step that went well: none if the MTA agreed to
 * send it without waiting for one */
static sfsistat
ok(const struct mf_conn *c, unsigned long nr_bit)
{
    return (c->pflags & nr_bit) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* hold - a header or body chunk failed; without a reply to give (no-reply
 * step) the failure is kept and answered at the next step that replies
 * (end of headers, end of message), and the rest of the message is only
 * read.  With a reply, it is answered now. */
static sfsistat
hold(SMFICTX *ctx, struct mf_conn *c, enum pol_status st,
    unsigned long nr_bit)
{
    if (!(c->pflags & nr_bit))
        return mf_failed(ctx, c, st);
    if (c->held == POL_OK)
        c->held = st;
    return SMFIS_NOREPLY;
}

/* held - answer the failure kept by hold() (c->held is set) */
static sfsistat
held(SMFICTX *ctx, struct mf_conn *c)
{
    enum pol_status st = c->held;

    c->held = POL_OK;
    return mf_failed(ctx, c, st);
}

static sfsistat
mlfi_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
    struct mf_conn *c = conn_get(ctx);

    if (c == NULL)
        return SMFIS_TEMPFAIL;
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr,
            c->client.addr, sizeof(c->client.addr));
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr,
            c->client.addr, sizeof(c->client.addr));
    copy(c->client.name, sizeof(c->client.name), hostname ? hostname : "");
    return ok(c, SMFIP_NR_CONN);
}

/* read_tls - TLS macros (sent at HELO after STARTTLS, and at MAIL) */
static void
read_tls(SMFICTX *ctx, struct mf_conn *c)
{
    const char *v = macro(ctx, "{tls_version}");

    if (*v == '\0')
        return;
    copy(c->client.tls_version, sizeof(c->client.tls_version), v);
    copy(c->client.tls_cipher, sizeof(c->client.tls_cipher),
        macro(ctx, "{cipher}"));
    c->client.tls_bits = atoi(macro(ctx, "{cipher_bits}"));
}

static sfsistat
mlfi_helo(SMFICTX *ctx, char *helo)
{
    struct mf_conn *c = smfi_getpriv(ctx);

    if (c == NULL)
        return SMFIS_TEMPFAIL;
    copy(c->client.helo, sizeof(c->client.helo), helo ? helo : "");
    /* a second EHLO after STARTTLS starts over: forget the old TLS state */
    c->client.tls_version[0] = c->client.tls_cipher[0] = '\0';
    read_tls(ctx, c);
    return ok(c, SMFIP_NR_HELO);
}

/* strip_angles - "<a@b>" -> "a@b" into buf */
static const char *
strip_angles(const char *s, char *buf, size_t len)
{
    size_t n;

    if (s == NULL)
        return "";
    if (*s == '<')
        s++;
    n = strcspn(s, ">");
    if (n >= len)
        n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* mf_early - apply a verdict reached before end of message: a refusal in
 * enforce mode ends the transaction now (with its event); anything else
 * is logged and the message goes on */
static sfsistat
mf_early(SMFICTX *ctx, struct mf_conn *c, const char *qid,
    struct pol_verdict *v)
{
    if (v->action < POL_TEMPFAIL || !pol_msg_enforced(c->msg))
        return SMFIS_CONTINUE; /* logged once, at end of message */
    pol_msg_finish(c->msg, v);
    mf_log_verdict(c, qid, v, true);
    return mf_action(ctx, v);
}

static sfsistat
mlfi_envfrom(SMFICTX *ctx, char **argv)
{
    struct mf_conn *c = smfi_getpriv(ctx);
    struct pol_config *cfg = mf_config_get();
    const char *qid = macro(ctx, "i");
    struct pol_verdict v;
    enum pol_status st;
    char sender[1024];

    if (c == NULL || cfg == NULL) {
        pol_config_unref(cfg);
        return SMFIS_TEMPFAIL;
    }
    pol_msg_free(c->msg);
    c->held = POL_OK;
    read_tls(ctx, c);
    c->msg = pol_msg_new(cfg, &c->client, macro(ctx, "{auth_authen}"), qid);
    pol_config_unref(cfg);
    if (c->msg == NULL)
        return SMFIS_TEMPFAIL;
    st = pol_msg_envfrom(c->msg, strip_angles(argv[0], sender,
        sizeof(sender)), &v);
    if (st != POL_OK)
        return mf_failed(ctx, c, st);
    if (!pol_msg_is_outbound(c->msg)) {
        mf_log(LOG_DEBUG, qid, "not outbound client=%s", c->client.addr);
        return SMFIS_ACCEPT; /* not ours: no further callbacks */
    }
    return mf_early(ctx, c, qid, &v);
}

static sfsistat
mlfi_envrcpt(SMFICTX *ctx, char **argv)
{
    struct mf_conn *c = smfi_getpriv(ctx);
    char rcpt[1024];
    enum pol_status st;

    if (c == NULL || c->msg == NULL)
        return SMFIS_TEMPFAIL;
    st = pol_msg_rcpt(c->msg, strip_angles(argv[0], rcpt,
        sizeof(rcpt)));

    if (st != POL_OK)
        return mf_failed(ctx, c, st);
    return SMFIS_CONTINUE;
}

static sfsistat
mlfi_header(SMFICTX *ctx, char *name, char *value)
{
    struct mf_conn *c = smfi_getpriv(ctx);
    enum pol_status st;

    if (c == NULL)
        return SMFIS_TEMPFAIL;
    if (c->msg == NULL) /* no reply: the end of headers tempfails */
        return (c->pflags & SMFIP_NR_HDR) ? SMFIS_NOREPLY : SMFIS_TEMPFAIL;
    if (c->held != POL_OK) /* a failure kept for the end of headers */
        return SMFIS_NOREPLY;
    if ((st = pol_msg_header(c->msg, name, value)) != POL_OK)
        return hold(ctx, c, st, SMFIP_NR_HDR);
    return ok(c, SMFIP_NR_HDR);
}

static sfsistat
mlfi_eoh(SMFICTX *ctx)
{
    struct mf_conn *c = smfi_getpriv(ctx);
    struct pol_verdict v;
    enum pol_status st;

    if (c == NULL || c->msg == NULL)
        return SMFIS_TEMPFAIL;
    if (c->held != POL_OK)
        return held(ctx, c);
    if ((st = pol_msg_eoh(c->msg, &v)) != POL_OK)
        return mf_failed(ctx, c, st);
    return mf_early(ctx, c, macro(ctx, "i"), &v);
}

static sfsistat
mlfi_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    struct mf_conn *c = smfi_getpriv(ctx);
    enum pol_status st;

    if (c == NULL)
        return SMFIS_TEMPFAIL;
    if (c->msg == NULL) /* no reply: the end of message tempfails */
        return (c->pflags & SMFIP_NR_BODY) ? SMFIS_NOREPLY : SMFIS_TEMPFAIL;
    if (c->held != POL_OK) /* a failure kept for the end of message */
        return SMFIS_NOREPLY;
    if ((st = pol_msg_body(c->msg, chunk, len)) != POL_OK)
        return hold(ctx, c, st, SMFIP_NR_BODY);
    return ok(c, SMFIP_NR_BODY);
}

/* apply_edits - header edits from the engine */
static int
apply_edits(SMFICTX *ctx, const struct pol_edit *e)
{
    for (; e != NULL; e = e->next) {
        int r = MI_FAILURE;
        switch (e->kind) {
        case POL_EDIT_DELETE:
            r = smfi_chgheader(ctx, (char *)e->name, e->index, NULL);
            break;
        case POL_EDIT_INSERT:
            r = smfi_insheader(ctx, e->index, (char *)e->name,
                (char *)e->value);
            break;
        case POL_EDIT_ADD:
            r = smfi_addheader(ctx, (char *)e->name, (char *)e->value);
            break;
        }
        if (r != MI_SUCCESS)
            return -1;
    }
    return 0;
}

static sfsistat
mlfi_eom(SMFICTX *ctx)
{
    struct mf_conn *c = smfi_getpriv(ctx);
    const char *qid = macro(ctx, "i");
    struct pol_verdict v;
    enum pol_status ps;
    sfsistat st;

    if (c == NULL || c->msg == NULL)
        return SMFIS_TEMPFAIL;
    pol_msg_set_queue_id(c->msg, qid);
    if (c->held != POL_OK)
        st = held(ctx, c);
    else if ((ps = pol_msg_eom(c->msg, &v)) != POL_OK)
        st = mf_failed(ctx, c, ps);
    else {
        bool enforced = pol_msg_enforced(c->msg) != 0;
        if (enforced && v.action < POL_TEMPFAIL
            && apply_edits(ctx, pol_msg_edits(c->msg)) != 0)
            pol_verdict_set(&v, POL_TEMPFAIL, "milter",
                "451 4.3.0 cannot apply header edits");
        pol_msg_finish(c->msg, &v);
        mf_log_verdict(c, qid, &v, enforced);
        st = enforced ? mf_action(ctx, &v) : SMFIS_CONTINUE;
    }
    pol_msg_free(c->msg);
    c->msg = NULL;
    return st;
}

static sfsistat
mlfi_abort(SMFICTX *ctx)
{
    struct mf_conn *c = smfi_getpriv(ctx);

    if (c != NULL) {
        pol_msg_free(c->msg);
        c->msg = NULL;
        c->held = POL_OK;
    }
    return SMFIS_CONTINUE;
}

static sfsistat
mlfi_close(SMFICTX *ctx)
{
    struct mf_conn *c = smfi_getpriv(ctx);

    if (c != NULL) {
        pol_msg_free(c->msg);
        free(c);
        smfi_setpriv(ctx, NULL);
        atomic_fetch_sub(&sessions, 1);
    }
    return SMFIS_CONTINUE;
}

static sfsistat
mlfi_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
    struct mf_conn *c = conn_get(ctx);

    (void)f2, (void)f3;
    if (c == NULL)
        return SMFIS_TEMPFAIL;
    *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE
                    | SMFIF_SETSYMLIST);
    /* header values with their leading space when the MTA can, so that
     * c=simple header signatures hash what is sent; on a unix socket the
     * shortcuts of MF_NOREPLY (libmilter stands in for the no-reply steps
     * when the MTA cannot do without replies) */
    *pf1 = f1 & (SMFIP_HDR_LEADSPC | (noreply_ok ? MF_NOREPLY : 0));
    c->pflags = *pf1;
    c->client.hdr_leadspc = (f1 & SMFIP_HDR_LEADSPC) != 0;
    *pf2 = *pf3 = 0;
    if (f0 & SMFIF_SETSYMLIST) {
        smfi_setsymlist(ctx, SMFIM_HELO,
            "{tls_version} {cipher} {cipher_bits}");
        smfi_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen} {auth_type} "
            "{tls_version} {cipher} {cipher_bits}");
        smfi_setsymlist(ctx, SMFIM_EOM, "i");
    }
    return SMFIS_CONTINUE;
}

struct smfiDesc mf_desc = {
    .xxfi_name = "outpolicyd",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE,
    .xxfi_connect = mlfi_connect,
    .xxfi_helo = mlfi_helo,
    .xxfi_envfrom = mlfi_envfrom,
    .xxfi_envrcpt = mlfi_envrcpt,
    .xxfi_header = mlfi_header,
    .xxfi_eoh = mlfi_eoh,
    .xxfi_body = mlfi_body,
    .xxfi_eom = mlfi_eom,
    .xxfi_abort = mlfi_abort,
    .xxfi_close = mlfi_close,
    .xxfi_negotiate = mlfi_negotiate,
};
