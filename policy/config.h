/*
 * policy/config.h - the declarative config schema (config_schema.c) and
 * the loader that applies it (config.c).
 * Licence: BSD-2-Clause.
 */
#ifndef POL_CONFIG_H
#define POL_CONFIG_H

#include <libconfig.h>
#include <stddef.h>

#include "internal.h"

enum cf_type {
    CF_STR,        /* any string */
    CF_PATH,       /* "" or an absolute path */
    CF_INT,        /* integer in [min, max] */
    CF_BOOL,       /* true / false */
    CF_ENUM,       /* one of names[] */
    CF_OCTAL,      /* file mode as an octal string, e.g. "0660" */
    CF_SOCKET,     /* milter socket: unix:/path, inet:PORT@HOST */
    CF_ADDRLIST,   /* list of IP addresses / CIDR blocks */
    CF_SENDERLIST, /* list of "user@domain" / "@domain" */
    CF_HDRLIST,    /* list of header field names */
    CF_NSLIST,     /* list of "IP" / "IP@PORT" name servers */
    CF_IPLIST,     /* list of single IP addresses */
    CF_DOMAINLIST, /* list of domain names */
    CF_MAPSOCKET,  /* "" or a socket like CF_SOCKET */
    CF_CUSTOM,     /* parsed by cf_param.parse (lists of groups) */
};

struct cf_enum {
    const char *name;
    int value;
};

struct cf_param {
    const char *path; /* dotted: "submission_tls.min_version" */
    enum cf_type type;
    const char *def; /* default, in config syntax for scalars; lists:
                      * comma-separated */
    long min, max;   /* CF_INT range, CF_OCTAL upper bound */
    size_t off;      /* offset of the field in struct pol_config */
    const struct cf_enum *names; /* CF_ENUM */
    /* CF_CUSTOM: s is NULL when the option is absent */
    int (*parse)(const config_setting_t *s, struct pol_config *cfg,
        struct pol_err *err);
};

#define CF_FIELD(f) offsetof(struct pol_config, f)

/** The schema, terminated by an entry with path NULL. */
extern const struct cf_param pol_cf_schema[];

int pol_tlsmap_parse_rules(const config_setting_t *s, struct pol_config *cfg,
    struct pol_err *err);
const char *pol_tlsmap_check_default(const char *policy);
void pol_tlsmap_unconfigure(struct pol_config *cfg);

/** Error "FILE:LINE: option 'path': message" for setting s (may be NULL). */
void pol_cf_error(struct pol_err *err, const config_setting_t *s,
    const char *path, const char *fmt, ...) POL_PRINTF(4, 5);

#endif
