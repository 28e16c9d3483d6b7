/*
 * policy/msg.c - the message record: what the MTA tells us, stage by
 * stage, and the engine's answer at each stage.
 *
 * Everything a message allocates comes from its arena and goes with
 * pol_msg_free().  Headers are not stored: only the few values policy
 * needs (Message-ID, From addresses, TLS-Required count) are kept, so
 * memory does not grow with the message.  One thread at a time.
 * Licence: BSD-2-Clause.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arc.h"
#include "dns.h"
#include "keys.h"
#include "msg.h"

#define MSG_MAX_VALUE 998 /* longest header value we keep */

/* dup - arena copy of s, NULL -> "" */
static const char *
dup(struct pol_msg *m, const char *s, size_t max)
{
    size_t n;

    if (s == NULL)
        return "";
    n = strnlen(s, max);
    return pol_arena_strndup(m->arena, s, n);
}

struct pol_msg *
pol_msg_new(struct pol_config *cfg, const struct pol_client *client,
    const char *auth_user, const char *queue_id)
{
    struct pol_arena *a = pol_arena_new();
    struct pol_msg *m;

    if (a == NULL)
        return NULL;
    if ((m = pol_arena_alloc(a, sizeof(*m))) == NULL) {
        pol_arena_free(a);
        return NULL;
    }
    m->arena = a;
    m->client = *client;
    m->auth_user = dup(m, auth_user, 256);
    m->queue_id = dup(m, queue_id, 64);
    m->sender = "";
    m->stage = "mail";
    m->message_id = "";
    m->tls_required = "absent";
    m->rcpt_tail = &m->rcpts;
    m->edit_tail = &m->edits;
    m->hdr_tail = &m->hdrs;
    m->dkim_result = "none";
    m->spf_status = "not_checked";
    m->dmarc.status = "not_checked";
    m->dmarc.predicted = "none";
    if (m->auth_user == NULL || m->queue_id == NULL) {
        pol_arena_free(a);
        return NULL;
    }
    m->cfg = pol_config_ref(cfg);
    pol_verdict_init(&m->verdict);
    return m;
}

void
pol_msg_free(struct pol_msg *m)
{
    if (m == NULL)
        return;
    pol_dkim_free(m);
    pol_arc_free(m);
    pol_config_unref(m->cfg);
    pol_arena_free(m->arena);
}

void
pol_msg_seterr(struct pol_msg *m, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m->error, sizeof(m->error), fmt, ap);
    va_end(ap);
}

const char *
pol_msg_error(const struct pol_msg *m)
{
    return m->error[0] ? m->error : "451 4.3.0 outpolicy internal error";
}

enum pol_action
pol_msg_error_action(const struct pol_msg *m)
{
    return (enum pol_action)m->cfg->on_error;
}

void
pol_msg_set_arc_tool(struct pol_msg *m,
    int (*fn)(void *, const char *, char *, size_t), void *arg,
    const char *results, const char *headers, int standardize)
{
    m->arc_fn = fn;
    m->arc_arg = arg;
    m->arc_results = results ? pol_arena_strdup(m->arena, results) : NULL;
    m->arc_headers = headers ? pol_arena_strdup(m->arena, headers) : NULL;
    m->arc_standardize = standardize != 0;
}

void
pol_msg_set_outbound(struct pol_msg *m, const char *sender)
{
    const char *s = dup(m, sender, 1024);

    m->sender = s != NULL ? s : "";
    m->outbound = true;
}

int
pol_msg_is_outbound(const struct pol_msg *m)
{
    return m->outbound;
}

int
pol_msg_enforced(const struct pol_msg *m)
{
    return m->cfg->mode == POL_MODE_ENFORCE;
}

void
pol_msg_set_queue_id(struct pol_msg *m, const char *queue_id)
{
    const char *q;

    if (queue_id != NULL && *queue_id != '\0'
        && strcmp(queue_id, m->queue_id) != 0
        && (q = dup(m, queue_id, 64)) != NULL)
        m->queue_id = q;
}

/* addr_chars_ok - no control characters or DEL in an envelope address */
static bool
addr_chars_ok(const char *a)
{
    for (; a != NULL && *a; a++)
        if ((unsigned char)*a < 0x20 || (unsigned char)*a == 0x7f)
            return false;
    return true;
}

enum pol_status
pol_msg_envfrom(struct pol_msg *m, const char *sender, struct pol_verdict *v)
{
    const struct pol_config *cfg = m->cfg;
    enum pol_status st;

    pol_verdict_init(v);
    if (!addr_chars_ok(sender)) {
        pol_msg_seterr(m, "553 5.1.7 Control characters in the sender "
            "address");
        return POL_EPERM;
    }
    if ((m->sender = dup(m, sender, 1024)) == NULL) {
        pol_msg_seterr(m, "451 4.3.0 out of memory");
        return POL_ETEMP;
    }
    m->outbound = pol_addrlist_match(cfg->outbound.internal_hosts,
                      m->client.addr)
        || (cfg->outbound.authenticated && *m->auth_user != '\0');
    if (!m->outbound)
        return POL_OK;
    st = pol_engine_run(m, POL_AT_ENVFROM, v);
    m->verdict = *v;
    return st;
}

enum pol_status
pol_msg_rcpt(struct pol_msg *m, const char *rcpt)
{
    struct pol_rcpt *r;

    if (!addr_chars_ok(rcpt)) {
        pol_msg_seterr(m, "553 5.1.3 Control characters in the recipient "
            "address");
        return POL_EPERM;
    }
    r = pol_arena_alloc(m->arena, sizeof(*r));

    if (r == NULL || (r->addr = dup(m, rcpt, 1024)) == NULL) {
        pol_msg_seterr(m, "451 4.3.0 out of memory");
        return POL_ETEMP;
    }
    *m->rcpt_tail = r;
    m->rcpt_tail = &r->next;
    m->nrcpt++;
    return POL_OK;
}

/* header_from - remember the addresses of the first From: field */
static enum pol_status
header_from(struct pol_msg *m, const char *value)
{
    if (++m->from_fields > 1)
        return POL_OK;
    m->nfrom = pol_addr_parse_list(m->arena, value, m->from, MSG_MAX_FROM);
    if (m->nfrom > MSG_MAX_FROM)
        m->nfrom = MSG_MAX_FROM;
    return POL_OK;
}

/* tag_value - value of tag t= in a DKIM tag list, whitespace removed */
static const char *
tag_value(struct pol_msg *m, const char *list, const char *tag)
{
    size_t tl = strlen(tag);

    for (const char *p = list; p != NULL && *p; ) {
        p += strspn(p, " \t\r\n;");
        if (strncasecmp(p, tag, tl) == 0) {
            const char *q = p + tl;
            q += strspn(q, " \t\r\n");
            if (*q == '=') {
                char buf[256];
                size_t n = 0;
                for (q++; *q && *q != ';' && n + 1 < sizeof(buf); q++)
                    if (!strchr(" \t\r\n", *q))
                        buf[n++] = *q;
                buf[n] = '\0';
                return pol_arena_strdup(m->arena, buf);
            }
        }
        p = strchr(p, ';');
    }
    return NULL;
}

/* keep_header - store "Name: value" for the signers (bounded) */
static enum pol_status
keep_header(struct pol_msg *m, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    struct pol_hdr *h;
    char *line;

    if (m->hdr_bytes + nl + vl + 2 > MSG_MAX_HEADER_BYTES) {
        pol_msg_seterr(m, "552 5.3.4 Message header block over %d bytes; "
            "not signed", MSG_MAX_HEADER_BYTES);
        return POL_EPERM;
    }
    if ((h = pol_arena_alloc(m->arena, sizeof(*h))) == NULL
        || (line = pol_arena_alloc(m->arena, nl + 2 * vl + 3)) == NULL) {
        pol_msg_seterr(m, "451 4.3.0 out of memory");
        return POL_ETEMP;
    }
    /* With SMFIP_HDR_LEADSPC the value carries its own leading space.
     * The MTA folds with a bare LF; the message on the wire has CRLF, and
     * c=simple hashes exactly that, so the stored field gets CRLF. */
    h->len = (size_t)sprintf(line, "%s:%s", name,
        m->client.hdr_leadspc ? "" : " ");
    for (const char *c = value; *c; c++) {
        if (*c == '\n' && (c == value || c[-1] != '\r'))
            line[h->len++] = '\r';
        line[h->len++] = *c;
    }
    line[h->len] = '\0';
    h->line = line;
    h->name = pol_arena_strndup(m->arena, line, nl);
    h->value = line + nl + 1;
    if (h->name == NULL) {
        pol_msg_seterr(m, "451 4.3.0 out of memory");
        return POL_ETEMP;
    }
    m->hdr_bytes += h->len;
    *m->hdr_tail = h;
    m->hdr_tail = &h->next;
    return POL_OK;
}

enum pol_status
pol_msg_header(struct pol_msg *m, const char *name, const char *value)
{
    enum pol_status st;

    m->header_count++;
    m->stage = "header";
    if (((m->cfg->dkim.enabled && m->cfg->dkim.lib != NULL)
            || m->cfg->arc.enabled)
        && (st = keep_header(m, name, value)) != POL_OK)
        return st;
    if (strcasecmp(name, "DKIM-Signature") == 0
        && m->nexisting < MSG_MAX_EXISTING) {
        const char *d = tag_value(m, value, "d"), *s = tag_value(m, value,
            "s");
        if (d != NULL && s != NULL) {
            m->existing[m->nexisting].d = d;
            m->existing[m->nexisting++].s = s;
        }
    }
    if (strcasecmp(name, "From") == 0)
        return header_from(m, value);
    if (strcasecmp(name, "TLS-Required") == 0)
        m->tls_required_fields++;
    else if (strcasecmp(name, "Message-ID") == 0 && *m->message_id == '\0') {
        const char *v = value + strspn(value, " \t\r\n");
        if ((m->message_id = dup(m, v, MSG_MAX_VALUE)) == NULL) {
            pol_msg_seterr(m, "451 4.3.0 out of memory");
            return POL_ETEMP;
        }
    }
    return POL_OK;
}

enum pol_status
pol_msg_eoh(struct pol_msg *m, struct pol_verdict *v)
{
    enum pol_status st;

    *v = m->verdict;
    m->stage = "eoh";
    if (!m->outbound)
        return POL_OK;
    if ((st = pol_dkim_eoh(m, v)) != POL_OK
        || (st = pol_engine_run(m, POL_AT_EOH, v)) != POL_OK
        || (st = pol_arc_eoh(m)) != POL_OK)
        return st;
    m->verdict = *v;
    return POL_OK;
}

enum pol_status
pol_msg_body(struct pol_msg *m, const unsigned char *chunk, size_t len)
{
    pol_arc_body(m, chunk, len);
    return pol_dkim_body(m, chunk, len);
}

enum pol_status
pol_msg_add_edit(struct pol_msg *m, enum pol_edit_kind kind,
    const char *name, const char *value, int index)
{
    struct pol_edit *e = pol_arena_alloc(m->arena, sizeof(*e));

    if (e == NULL || (e->name = pol_arena_strdup(m->arena, name)) == NULL
        || (value != NULL
            && (e->value = pol_arena_strdup(m->arena, value)) == NULL)) {
        pol_msg_seterr(m, "451 4.3.0 out of memory");
        return POL_ETEMP;
    }
    e->kind = kind;
    e->index = index;
    *m->edit_tail = e;
    m->edit_tail = &e->next;
    return POL_OK;
}

const struct pol_edit *
pol_msg_edits(const struct pol_msg *m)
{
    return m->edits;
}

/* arc_results - our ARC-Authentication-Results: what this hop found */
static enum pol_status
arc_results(struct pol_msg *m)
{
    char buf[1024], *p = buf, *end = buf + sizeof(buf);
    const char *reason;

    buf[0] = '\0';
    if (m->spf.n > 0)
        p += snprintf(p, (size_t)(end - p), "spf=%s smtp.mailfrom=%s; ",
            pol_spf_result_name(m->spf.overall), m->spf.domain);
    for (int i = 0; i < m->signed_count && m->cfg->mode == POL_MODE_ENFORCE
         && p < end; i++)
        p += snprintf(p, (size_t)(end - p), "dkim=pass header.d=%s "
            "header.s=%s; ", m->signer_keys[i]->domain,
            m->signer_keys[i]->selector);
    if (p < end)
        p += snprintf(p, (size_t)(end - p), "arc=%s",
            pol_arc_cv(m, &reason));
    if (*m->auth_user && p < end)
        snprintf(p, (size_t)(end - p), "; auth=pass smtp.auth=%s",
            m->auth_user);
    if ((m->arc_results = pol_arena_strdup(m->arena, buf)) == NULL) {
        pol_msg_seterr(m, "451 4.3.0 out of memory");
        return POL_ETEMP;
    }
    return POL_OK;
}

enum pol_status
pol_msg_eom(struct pol_msg *m, struct pol_verdict *v)
{
    enum pol_status st;

    *v = m->verdict;
    if (!m->outbound)
        return POL_OK;
    m->stage = "eom";
    if ((st = pol_engine_run(m, POL_AT_EOM, v)) != POL_OK
        || (st = pol_dkim_eom(m)) != POL_OK)
        return st;
    if (m->arc_fn == NULL && m->cfg->dns.resolver == NULL)
        pol_arc_free(m); /* a tool without DNS: no ARC at all */
    else if ((st = pol_arc_validate(m, m->arc_fn ? m->arc_fn
                       : pol_dns_txt_lookup, m->arc_fn ? m->arc_arg
                       : m->cfg->dns.resolver)) != POL_OK
        || (m->arc != NULL && m->arc_results == NULL
            && (st = arc_results(m)) != POL_OK)
        || (st = pol_arc_seal(m)) != POL_OK)
        return st;
    m->verdict = *v;
    return POL_OK;
}

enum pol_status
pol_msg_finish(struct pol_msg *m, struct pol_verdict *v)
{
    if (!m->outbound)
        return POL_OK;
    if (pol_report_submission(m, v, m->stage) == POL_OK)
        return POL_OK;
    /* events.on_error = tempfail: a message we cannot record is deferred
     * (never accepted, and a refusal stays a refusal) */
    pol_verdict_set(v, POL_TEMPFAIL, "events", "%s", pol_msg_error(m));
    m->verdict = *v;
    return POL_OK;
}
