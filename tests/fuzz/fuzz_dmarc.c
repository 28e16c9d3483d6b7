/*
 * tests/fuzz/fuzz_dmarc.c - libFuzzer target: the DMARC record parser
 * (pol_dmarc_parse, RFC 7489 6.3) on arbitrary TXT text.
 *
 * Checked besides memory safety: a parsed record has p and sp among
 * none/quarantine/reject, pct in 0..100 and a NUL-terminated rua; a refused
 * one has a non-empty reason; parsing the same text twice gives the same
 * answer; and the reason respects a short buffer (the input's first byte
 * picks a why size of 1..16, in a heap block of exactly that size so
 * ASan sees any overrun).
 */
#include <stdlib.h>
#include <string.h>

#include "policy/spf.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* valid_policy - one of POL_DMARC_NONE / QUARANTINE / REJECT */
static int
valid_policy(int p)
{
    return p == POL_DMARC_NONE || p == POL_DMARC_QUARANTINE
        || p == POL_DMARC_REJECT;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct pol_dmarc_record r, again;
    char why[200], *text, *small;
    size_t smalllen = size > 0 ? (size_t)(data[0] % 16) + 1 : 1;
    int rc;

    if ((text = malloc(size + 1)) == NULL
        || (small = malloc(smalllen)) == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';          /* TXT text up to the first NUL, as dns.c */
    why[0] = '\0';
    rc = pol_dmarc_parse(text, &r, why, sizeof(why));
    if (rc == 0) {
        if (!valid_policy(r.p) || !valid_policy(r.sp) || r.pct < 0
            || r.pct > 100 || memchr(r.rua, '\0', sizeof(r.rua)) == NULL)
            abort();
        if (!r.has_sp && r.sp != r.p)
            abort();            /* sp defaults to p */
    } else if (rc != -1 || why[0] == '\0' || memchr(why, '\0',
                   sizeof(why)) == NULL)
        abort();
    if (pol_dmarc_parse(text, &again, small, smalllen) != rc
        || (rc == 0 && memcmp(&r, &again, sizeof(r)) != 0))
        abort();
    if (rc != 0 && memchr(small, '\0', smalllen) == NULL)
        abort();
    free(small);
    free(text);
    return 0;
}
