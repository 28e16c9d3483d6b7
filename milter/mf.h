/*
 * milter/mf.h - libmilter glue: shared declarations of milter/.
 * Licence: BSD-2-Clause.
 */
#ifndef MF_H
#define MF_H

#include <stdbool.h>

#include "policy/policy.h"

#define MF_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* log.c */
void mf_log_init(const char *ident, int facility, bool to_stderr);
void mf_log_set_level(int level);
/** Log "QID: text" (qid may be NULL); prio is a syslog priority. */
void mf_log(int prio, const char *qid, const char *fmt, ...) MF_PRINTF(3, 4);
/** Same, with ": strerror(errno)" appended. */
void mf_log_errno(int prio, const char *fmt, ...) MF_PRINTF(2, 3);
/** Hooks for the policy engine (log lines, events to syslog). */
extern const struct pol_hooks mf_hooks;

/* tlsmapd.c: the TLS policy socketmap server */
#include <sys/types.h>
/** Bind tls_policy.socket (before the privilege drop); 0 also when off. */
int mf_tlsmap_open(const char *spec, unsigned mode, const char *group,
    uid_t uid, gid_t gid, char *why, size_t len);
int mf_tlsmap_start(void);
void mf_tlsmap_stop(void);
/** Remove the socket file on a failed start. */
void mf_tlsmap_abandon(void);

/* callbacks.c */
extern struct smfiDesc mf_desc;
/** Current config with a new reference (caller unrefs). */
struct pol_config *mf_config_get(void);
/** Install cfg (takes over its reference); returns the old one. */
struct pol_config *mf_config_swap(struct pol_config *cfg);
/** Number of SMTP sessions in progress. */
int mf_sessions_active(void);
/** Whether to agree to no-reply protocol steps (unix sockets only). */
void mf_set_noreply(bool on);

#endif
