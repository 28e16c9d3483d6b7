/*
 * policy/tlsmap.h - Postfix TLS policy answers over the socketmap
 * protocol (tlsmap.c): netstring codec, destination matching, events.
 * Internal to libpolicy, public parts in policy.h.
 * Licence: BSD-2-Clause.
 */
#ifndef POL_TLSMAP_H
#define POL_TLSMAP_H

#include "internal.h"

struct pol_tls_rule {
    char *match;  /* "example.com", ".example.com", "[host]:port" */
    char *policy; /* Postfix TLS policy, e.g. "may" */
    int line;
};

#endif
