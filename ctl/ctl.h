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

/** Log hook printing engine warnings on stderr. */
struct pol_hooks;
extern const struct pol_hooks ctl_hooks;

#endif
