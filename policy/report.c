/*
 * policy/report.c - the "submission" event: one JSON line per outbound
 * message, field names after the Elastic Common Schema (docs/events.md).
 * Thread-safe: builds into a local buffer, writes with one call.
 * Licence: BSD-2-Clause.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "keys.h"
#include "msg.h"

/* put_email - the email.* object */
static void
put_email(struct pol_json *j, const struct pol_msg *m)
{
    pol_json_obj_begin(j, "email");
    pol_json_str(j, "direction", "outbound");
    if (*m->queue_id)
        pol_json_str(j, "local_id", m->queue_id);
    if (*m->message_id)
        pol_json_str(j, "message_id", m->message_id);
    pol_json_obj_begin(j, "from");
    pol_json_arr_begin(j, "address");
    for (int i = 0; i < m->nfrom; i++)
        pol_json_str(j, NULL, m->from[i]);
    pol_json_arr_end(j);
    pol_json_obj_end(j);
    pol_json_obj_begin(j, "to");
    pol_json_arr_begin(j, "address");
    for (const struct pol_rcpt *r = m->rcpts; r; r = r->next)
        pol_json_str(j, NULL, r->addr);
    pol_json_arr_end(j);
    pol_json_obj_end(j);
    pol_json_obj_end(j);
}

/* put_tls - the tls.* object (submission leg) */
static void
put_tls(struct pol_json *j, const struct pol_msg *m)
{
    int v = pol_tls_version_parse(m->client.tls_version);
    char vs[16];

    pol_json_obj_begin(j, "tls");
    pol_json_bool(j, "established", v != 0);
    if (v > 0) {
        pol_json_str(j, "version",
            pol_tls_version_short(v, vs, sizeof(vs)));
        pol_json_str(j, "version_protocol", v == 0x0300 ? "ssl" : "tls");
    } else if (v < 0)
        pol_json_str(j, "version", m->client.tls_version);
    if (*m->client.tls_cipher)
        pol_json_str(j, "cipher", m->client.tls_cipher);
    pol_json_obj_end(j);
}

/* put_dkim - signatures made (or why none) */
static void
put_dkim(struct pol_json *j, const struct pol_msg *m)
{
    pol_json_obj_begin(j, "dkim");
    pol_json_str(j, "result", m->dkim_result);
    pol_json_arr_begin(j, "signatures");
    for (int i = 0; i < m->signed_count; i++) {
        const struct pol_key *k = m->signer_keys[i];
        pol_json_obj_begin(j, NULL);
        pol_json_str(j, "domain", k->domain);
        pol_json_str(j, "selector", k->selector);
        pol_json_str(j, "algorithm", pol_alg_name(k->alg));
        pol_json_obj_end(j);
    }
    pol_json_arr_end(j);
    pol_json_obj_end(j);
}

/* put_spf - egress authorisation per egress IP / include */
static void
put_spf(struct pol_json *j, const struct pol_msg *m)
{
    const struct pol_spf_outcome *o = &m->spf;

    pol_json_obj_begin(j, "spf");
    pol_json_str(j, "status", m->spf_status);
    if (o->n > 0) {
        pol_json_str(j, "domain", o->domain);
        pol_json_str(j, "result", pol_spf_result_name(o->overall));
        pol_json_arr_begin(j, "egress");
        for (int i = 0; i < o->n; i++) {
            pol_json_obj_begin(j, NULL);
            pol_json_str(j, o->item[i].is_include ? "include" : "ip",
                o->item[i].egress);
            pol_json_str(j, "result",
                pol_spf_result_name(o->item[i].result));
            if (o->item[i].is_include) {
                pol_json_bool(j, "reached",
                    o->item[i].result == POL_SPF_PASS);
                pol_json_int(j, "lookups", o->item[i].lookups);
            }
            pol_json_obj_end(j);
        }
        pol_json_arr_end(j);
        if (o->reason[0])
            pol_json_str(j, "reason", o->reason);
    }
    pol_json_obj_end(j);
}

/* put_dmarc - the policy found and the predicted result */
static void
put_dmarc(struct pol_json *j, const struct pol_msg *m)
{
    const struct pol_dmarc_record *r = &m->dmarc.rec;

    pol_json_obj_begin(j, "dmarc");
    pol_json_str(j, "status", m->dmarc.status);
    if (strcmp(m->dmarc.status, "found") == 0) {
        pol_json_str(j, "record_domain", m->dmarc.at);
        pol_json_str(j, "policy", pol_dmarc_policy_name(m->dmarc.subdomain
                ? r->sp : r->p));
        pol_json_str(j, "p", pol_dmarc_policy_name(r->p));
        pol_json_str(j, "sp", pol_dmarc_policy_name(r->sp));
        pol_json_str(j, "adkim", r->adkim_strict ? "s" : "r");
        pol_json_str(j, "aspf", r->aspf_strict ? "s" : "r");
        pol_json_int(j, "pct", r->pct);
    }
    if (strcmp(m->dmarc.status, "skipped") != 0
        && strcmp(m->dmarc.status, "not_checked") != 0) {
        pol_json_bool(j, "spf_aligned", m->dmarc.spf_aligned);
        pol_json_bool(j, "dkim_aligned", m->dmarc.dkim_aligned);
    }
    pol_json_str(j, "predicted", m->dmarc.predicted);
    pol_json_obj_end(j);
}

/* put_arc - the incoming chain's result and the set we added */
static void
put_arc(struct pol_json *j, const struct pol_msg *m)
{
    const char *reason, *cv;
    int n, added;

    if (!m->cfg->arc.enabled)
        return;
    cv = pol_msg_arc_result(m, &n, &reason, &added);
    pol_json_obj_begin(j, "arc");
    pol_json_str(j, "cv", cv);
    pol_json_int(j, "instances", n);
    if (*reason)
        pol_json_str(j, "reason", reason);
    pol_json_int(j, "sealed_instance", added);
    if (m->arc_not_sealed != NULL)
        pol_json_str(j, "not_sealed", m->arc_not_sealed);
    pol_json_obj_end(j);
}

/* put_outpolicy - our own fields */
static void
put_outpolicy(struct pol_json *j, const struct pol_msg *m,
    const struct pol_verdict *v, const char *stage)
{
    const struct pol_config *cfg = m->cfg;

    pol_json_obj_begin(j, "outpolicy");
    pol_json_int(j, "schema", POL_SCHEMA_VERSION);
    pol_json_str(j, "mode", cfg->mode == POL_MODE_MONITOR
            ? "monitor" : "enforce");
    pol_json_str(j, "stage", stage);
    pol_json_obj_begin(j, "envelope");
    pol_json_str(j, "from", m->sender);
    pol_json_obj_end(j);
    if (m->nfrom < 0)
        pol_json_str(j, "from_error", "From: does not parse");
    pol_json_obj_begin(j, "verdict");
    pol_json_str(j, "action", pol_action_name(v->action));
    pol_json_str(j, "check", v->check ? v->check : "");
    pol_json_str(j, "reason", v->reply);
    pol_json_bool(j, "applied", cfg->mode == POL_MODE_ENFORCE);
    pol_json_obj_end(j);
    pol_json_str(j, "tls_required", m->tls_required);
    put_dkim(j, m);
    put_spf(j, m);
    put_dmarc(j, m);
    put_arc(j, m);
    pol_json_obj_end(j);
}

/* destination_event - one recipient domain of the message */
static enum pol_status
destination_event(struct pol_msg *m, const struct pol_verdict *v,
    const char *domain, const char *ts)
{
    struct pol_json j;
    const char *rule, *nexthop = *m->cfg->tls_policy.nexthop
        ? m->cfg->tls_policy.nexthop : domain;
    const char *policy = pol_tlsmap_decide(m->cfg, nexthop, &rule);
    enum pol_status st;
    int n = 0;

    pol_json_init(&j);
    pol_event_open(&j, ts, "destination", NULL);
    pol_json_obj_begin(&j, "email");
    if (*m->queue_id)
        pol_json_str(&j, "local_id", m->queue_id);
    if (*m->message_id)
        pol_json_str(&j, "message_id", m->message_id);
    pol_json_obj_begin(&j, "to");
    pol_json_arr_begin(&j, "address");
    for (const struct pol_rcpt *r = m->rcpts; r; r = r->next)
        if (strcasecmp(pol_addr_domain(r->addr), domain) == 0) {
            pol_json_str(&j, NULL, r->addr);
            n++;
        }
    pol_json_arr_end(&j);
    pol_json_obj_end(&j);
    pol_json_obj_end(&j);
    pol_json_obj_begin(&j, "destination");
    pol_json_str(&j, "domain", domain);
    pol_json_obj_end(&j);
    pol_json_obj_begin(&j, "outpolicy");
    pol_json_int(&j, "schema", POL_SCHEMA_VERSION);
    pol_json_obj_begin(&j, "envelope");
    pol_json_str(&j, "from", m->sender);
    pol_json_obj_end(&j);
    pol_json_int(&j, "recipient_count", n);
    pol_json_obj_begin(&j, "tls_policy");
    pol_json_str(&j, "nexthop", nexthop);
    pol_json_str(&j, "policy", policy);
    pol_json_str(&j, "rule", rule);
    pol_json_obj_end(&j);
    /* the same shape as in the submission event (one index mapping) */
    pol_json_obj_begin(&j, "verdict");
    pol_json_str(&j, "action", pol_action_name(v->action));
    pol_json_obj_end(&j);
    put_dkim(&j, m);
    pol_json_obj_end(&j);
    pol_json_obj_end(&j);
    st = j.oom ? POL_ETEMP : pol_events_write(m->cfg, j.buf, j.len);
    pol_json_free(&j);
    return st;
}

/* destination_events - one per distinct recipient domain, for messages
 * that are accepted (a refused message goes nowhere) */
static enum pol_status
destination_events(struct pol_msg *m, const struct pol_verdict *v,
    const char *ts)
{
    for (const struct pol_rcpt *r = m->rcpts; r; r = r->next) {
        const char *d = pol_addr_domain(r->addr);
        const struct pol_rcpt *q;
        for (q = m->rcpts; q != r; q = q->next)
            if (strcasecmp(pol_addr_domain(q->addr), d) == 0)
                break;
        if (q == r && destination_event(m, v, d, ts) != POL_OK)
            return POL_ETEMP;
    }
    return POL_OK;
}

enum pol_status
pol_report_submission(struct pol_msg *m, const struct pol_verdict *v,
    const char *stage)
{
    struct pol_json j;
    char ts[64];
    enum pol_status st;

    if (m->event_written)
        return POL_OK;
    m->event_written = true;
    pol_json_init(&j);
    pol_event_timestamp(m->cfg, ts, sizeof(ts));
    pol_event_open(&j, ts, "submission", v->action >= POL_TEMPFAIL
            && m->cfg->mode == POL_MODE_ENFORCE ? "failure" : "success");
    put_email(&j, m);
    pol_json_obj_begin(&j, "source");
    pol_json_str(&j, "ip", m->client.addr);
    pol_json_obj_end(&j);
    if (*m->auth_user) {
        pol_json_obj_begin(&j, "user");
        pol_json_str(&j, "name", m->auth_user);
        pol_json_obj_end(&j);
    }
    put_tls(&j, m);
    put_outpolicy(&j, m, v, stage);
    pol_json_obj_end(&j);
    if (j.oom) {
        pol_json_free(&j);
        pol_msg_seterr(m, "451 4.3.0 out of memory writing event");
        return POL_ETEMP;
    }
    st = pol_events_write(m->cfg, j.buf, j.len);
    pol_json_free(&j);
    if (st == POL_OK && (v->action < POL_TEMPFAIL
            || m->cfg->mode != POL_MODE_ENFORCE))
        st = destination_events(m, v, ts);
    if (st != POL_OK)
        pol_msg_seterr(m, "451 4.3.0 cannot record the message event");
    return st;
}

char *
pol_msg_preflight_json(const struct pol_msg *m, const struct pol_verdict *v)
{
    struct pol_json j;

    pol_json_init(&j);
    pol_json_obj_begin(&j, NULL);
    pol_json_str(&j, "mail_from", m->sender);
    pol_json_str(&j, "from", m->nfrom > 0 ? m->from[0] : "");
    pol_json_str(&j, "org_domain", m->nfrom > 0 ? pol_org_domain(m->cfg,
        pol_addr_domain(m->from[0])) : "");
    put_spf(&j, m);
    put_dkim(&j, m);
    put_dmarc(&j, m);
    pol_json_obj_begin(&j, "verdict");
    pol_json_str(&j, "action", pol_action_name(v->action));
    pol_json_str(&j, "check", v->check ? v->check : "");
    pol_json_str(&j, "reason", v->reply);
    pol_json_obj_end(&j);
    pol_json_obj_end(&j);
    if (j.oom) {
        pol_json_free(&j);
        return NULL;
    }
    return j.buf;
}
