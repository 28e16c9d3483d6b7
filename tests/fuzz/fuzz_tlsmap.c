/*
 * tests/fuzz/fuzz_tlsmap.c - libFuzzer target: the socketmap request
 * stream as the server reads it (netstrings, several per buffer) and the
 * answers to each request.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static struct pol_config *cfg;

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *buf = (const char *)data, *req;
    size_t rlen, used, n;
    char out[1024];
    struct pol_err err;

    if (cfg == NULL)
        cfg = pol_config_load_string("events = { file = \"\"; };\n"
            "tls_policy = { destinations = ( { match = \".a.example\"; "
            "policy = \"may\"; }, { match = \"[mx.b.example]:465\"; "
            "policy = \"encrypt protocols=>=TLSv1.3\"; } ); };\n", "fuzz",
            NULL, &err);
    if (cfg == NULL)
        abort();
    while (size > 0
        && pol_netstring_parse(buf, size, 1100, &req, &rlen, &used) == 1) {
        n = pol_tlsmap_answer(cfg, req, rlen, out, sizeof(out));
        if (n == 0 || out[n - 1] != ',')
            abort(); /* every answer is a complete netstring */
        buf += used;
        size -= used;
    }
    return 0;
}
