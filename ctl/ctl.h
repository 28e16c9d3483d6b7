/*
 * ctl/ctl.h - outpolicyctl commands.
 * Licence: BSD-2-Clause.
 */
#ifndef CTL_H
#define CTL_H

#ifndef CTL_DEFAULT_CONF
#define CTL_DEFAULT_CONF "/etc/outpolicy/outpolicy.conf"
#endif

int ctl_check_config(int argc, char **argv);
int ctl_keygen(int argc, char **argv);
int ctl_dkim_sign(int argc, char **argv);
int ctl_preflight(int argc, char **argv);

int ctl_arc_verify(int argc, char **argv);
int ctl_trace(int argc, char **argv);
int ctl_check_domain(int argc, char **argv);
int ctl_arc_seal(int argc, char **argv);

/* msgio.c */
struct pol_msg;
struct pol_verdict;
#include <stdio.h>
/** The message file, or stdin copied to a temporary file ("-"/NULL). */
FILE *ctl_open_message(const char *path);
/** Feed the whole message through the engine; 0, or 1 (reason printed). */
int ctl_run_message(struct pol_msg *m, FILE *in, int *crlf,
    struct pol_verdict *v, const char *tool);
/** Inserted fields (newest on top), then the message as read. */
void ctl_print_with_edits(const struct pol_msg *m, FILE *in, int crlf);

/** Make hooks' clock return ts (for --timestamp); ts < 0: no change. */
struct pol_hooks;
void ctl_fix_clock(struct pol_hooks *hooks, long long ts);

/** Log hook printing engine warnings on stderr. */
struct pol_hooks;
extern const struct pol_hooks ctl_hooks;

#endif
