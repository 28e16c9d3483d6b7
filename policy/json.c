/*
 * policy/json.c - minimal streaming JSON writer for event lines.
 *
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 are
 * written as U+FFFD so a SIEM parser never sees an invalid document.
 * Out of memory is sticky (j->oom) and checked once by the caller.
 * Not thread-safe: one writer per event.
 * Licence: BSD-2-Clause.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define JSON_MAX_DEPTH ((int)(sizeof(((struct pol_json *)0)->need_comma)))

void
pol_json_init(struct pol_json *j)
{
    memset(j, 0, sizeof(*j));
}

void
pol_json_free(struct pol_json *j)
{
    free(j->buf);
    pol_json_init(j);
}

/* put - append n bytes */
static void
put(struct pol_json *j, const char *s, size_t n)
{
    if (j->oom)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 512;
        char *nb;
        while (cap < j->len + n + 1)
            cap *= 2;
        if ((nb = realloc(j->buf, cap)) == NULL) {
            j->oom = true;
            return;
        }
        j->buf = nb;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

/* utf8_len - length of a valid UTF-8 sequence at s, or 0 */
static size_t
utf8_len(const unsigned char *s)
{
    size_t n, i;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* put_string - a quoted, escaped JSON string */
static void
put_string(struct pol_json *j, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    char esc[8];

    put(j, "\"", 1);
    while (*s != '\0') {
        size_t n;
        if (*s == '"' || *s == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*s;
            put(j, esc, 2);
            s++;
        } else if (*s < 0x20 || *s == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", *s);
            put(j, esc, 6);
            s++;
        } else if ((n = utf8_len(s)) == 0) {
            put(j, "\xef\xbf\xbd", 3);
            s++;
        } else {
            put(j, (const char *)s, n);
            s += n;
        }
    }
    put(j, "\"", 1);
}

/* member - comma and key before a value */
static void
member(struct pol_json *j, const char *key)
{
    if (j->depth > 0 && j->depth <= JSON_MAX_DEPTH) {
        if (j->need_comma[j->depth - 1])
            put(j, ",", 1);
        j->need_comma[j->depth - 1] = true;
    }
    if (key != NULL) {
        put_string(j, key);
        put(j, ":", 1);
    }
}

/* open - start an object or array */
static void
open_(struct pol_json *j, const char *key, const char *brace)
{
    member(j, key);
    put(j, brace, 1);
    j->depth++;
    if (j->depth <= JSON_MAX_DEPTH)
        j->need_comma[j->depth - 1] = false;
    else
        j->oom = true; /* caller bug: too deep; refuse to emit garbage */
}

void
pol_json_obj_begin(struct pol_json *j, const char *key)
{
    open_(j, key, "{");
}

void
pol_json_arr_begin(struct pol_json *j, const char *key)
{
    open_(j, key, "[");
}

void
pol_json_obj_end(struct pol_json *j)
{
    j->depth--;
    put(j, "}", 1);
}

void
pol_json_arr_end(struct pol_json *j)
{
    j->depth--;
    put(j, "]", 1);
}

void
pol_json_str(struct pol_json *j, const char *key, const char *val)
{
    member(j, key);
    put_string(j, val != NULL ? val : "");
}

void
pol_json_int(struct pol_json *j, const char *key, long long val)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", val);

    member(j, key);
    put(j, num, (size_t)n);
}

void
pol_json_bool(struct pol_json *j, const char *key, bool val)
{
    member(j, key);
    put(j, val ? "true" : "false", val ? 4 : 5);
}
