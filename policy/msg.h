/*
 * policy/msg.h - the per-message record and the check registry.
 * Internal to libpolicy.  A struct pol_msg belongs to one thread at a time.
 * Licence: BSD-2-Clause.
 */
#ifndef POL_MSG_H
#define POL_MSG_H

#include "internal.h"
#include "spf.h"

#define MSG_MAX_FROM 16 /* From: addresses kept for events and alignment */
#define MSG_MAX_HEADER_BYTES (1024 * 1024) /* header block kept for signing */
#define MSG_MAX_EXISTING 16 /* existing DKIM-Signature d=/s= remembered */
#define MSG_MAX_SIGNERS 4   /* == POL_DKIM_MAX_KEYS */

/** A header field: "Name: value" as signed (folding as the MTA gave it),
 * and its name and value (value after the colon). */
struct pol_hdr {
    const char *line;
    size_t len;
    const char *name, *value;
    struct pol_hdr *next;
};

struct pol_rcpt {
    const char *addr;
    struct pol_rcpt *next;
};

struct pol_msg {
    struct pol_arena *arena;
    struct pol_config *cfg; /* our reference */
    struct pol_client client;
    const char *auth_user;  /* "" when not authenticated */
    const char *queue_id;   /* "" until known */
    const char *sender;     /* MAIL FROM, "" = null sender */
    bool outbound;
    struct pol_rcpt *rcpts, **rcpt_tail;
    size_t nrcpt;
    const char *message_id;
    const char *from[MSG_MAX_FROM];
    int nfrom;              /* -1 when From: did not parse */
    int from_fields;        /* number of From: fields */
    int tls_required_fields;
    const char *tls_required; /* "absent" / "removed" / "kept" */
    size_t header_count;
    struct pol_hdr *hdrs, **hdr_tail; /* kept only when DKIM may sign */
    size_t hdr_bytes;
    struct {
        const char *d, *s;
    } existing[MSG_MAX_EXISTING]; /* DKIM-Signatures already present */
    int nexisting;
    void *signers[MSG_MAX_SIGNERS]; /* DKIM * (dkim.c) */
    const struct pol_key *signer_keys[MSG_MAX_SIGNERS];
    int nsigners;
    int signed_count;         /* signatures made at end of message */
    const char *dkim_result;  /* signed / no_key / already_signed / ... */
    struct pol_arc *arc;      /* ARC state (arc.c), NULL when off */
    const char *arc_results;  /* our AAR results ("spf=pass ...") */
    const char *arc_headers;  /* h= override (outpolicyctl arc-seal) */
    bool arc_standardize;     /* suite format (outpolicyctl arc-seal) */
    int arc_added;            /* instance we sealed, 0 = none */
    const char *arc_not_sealed; /* why not, when a key applied */
    int (*arc_fn)(void *, const char *, char *, size_t); /* key look-up */
    void *arc_arg;            /* NULL fn: DNS through cfg->dns.resolver */
    struct pol_spf_outcome spf; /* spf.n == 0: not checked */
    const char *spf_status;   /* checked / disabled / not_configured / ... */
    struct {
        const char *status;   /* found / none / temperror / skipped */
        const char *at;       /* where the record was found */
        bool subdomain;       /* found at the org domain: sp= applies */
        struct pol_dmarc_record rec;
        bool spf_aligned, dkim_aligned;
        const char *predicted; /* pass / fail / none */
    } dmarc;
    struct pol_edit *edits, **edit_tail;
    struct pol_verdict verdict; /* accumulated over the stages */
    bool event_written;
    const char *stage;        /* last stage seen: mail / eoh / eom */
    char error[256];
};

/** A policy check, in the spirit of a const vtable. */
struct pol_check {
    const char *name;
    enum pol_stage stage;
    enum pol_status (*eval)(struct pol_msg *m, const struct pol_config *cfg,
        struct pol_verdict *v);
};

/** NULL-terminated registry (checks.c). */
extern const struct pol_check *const pol_checks[];

/** Run every check registered for stage; v accumulates. */
enum pol_status pol_engine_run(struct pol_msg *m, enum pol_stage stage,
    struct pol_verdict *v);

/** Queue a header edit; POL_ETEMP when out of memory. */
enum pol_status pol_msg_add_edit(struct pol_msg *m, enum pol_edit_kind kind,
    const char *name, const char *value, int index);

/** Set the message's error text (printf). */
void pol_msg_seterr(struct pol_msg *m, const char *fmt, ...) POL_PRINTF(2, 3);

/** Write the submission event for this message (once). */
enum pol_status pol_report_submission(struct pol_msg *m,
    const struct pol_verdict *v, const char *stage);

#endif
