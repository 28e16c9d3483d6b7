/*
 * tests/fuzz/fuzz_addr.c - libFuzzer target: the RFC 5322 address-list
 * parser used on From: values.  Every address it returns must contain
 * "@" with a non-empty domain.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct pol_arena *a = pol_arena_new();
    const char *out[8];
    char *text = malloc(size + 1);
    int n;

    if (a == NULL || text == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    n = pol_addr_parse_list(a, text, out, 8);
    for (int i = 0; i < n && i < 8; i++)
        if (*pol_addr_domain(out[i]) == '\0')
            abort();
    free(text);
    pol_arena_free(a);
    return 0;
}
