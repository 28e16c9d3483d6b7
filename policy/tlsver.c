/*
 * policy/tlsver.c - TLS protocol version names as MTAs report them.
 *
 * Postfix's {tls_version} macro carries OpenSSL's names: "TLSv1.3",
 * "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3".  Versions are compared as
 * wire numbers (0x0303 = TLS 1.2).  Pure functions; thread-safe.
 * Licence: BSD-2-Clause.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

int
pol_tls_version_parse(const char *s)
{
    int minor = 0;

    if (s == NULL || *s == '\0')
        return 0;
    if (strcasecmp(s, "SSLv3") == 0)
        return 0x0300;
    if (strncasecmp(s, "TLSv1", 5) != 0)
        return -1;
    s += 5;
    if (*s == '\0')
        return 0x0301;
    /* "TLSv1.N": N is the minor of TLS 1.N, wire minor N + 1. */
    if (*s != '.' || !isdigit((unsigned char)s[1]))
        return -1;
    for (s++; isdigit((unsigned char)*s); s++) {
        minor = minor * 10 + (*s - '0');
        if (minor > 250)
            return -1;
    }
    if (*s != '\0')
        return -1;
    return 0x0301 + minor;
}

const char *
pol_tls_version_short(int v, char *buf, size_t len)
{
    if (v <= 0)
        snprintf(buf, len, "%s", "");
    else if (v == 0x0300)
        snprintf(buf, len, "3.0");
    else
        snprintf(buf, len, "1.%d", v - 0x0301);
    return buf;
}
