/*
 * tests/fuzz/fuzz_config.c - libFuzzer target: the config loader
 * (libconfig syntax + our schema validation) on arbitrary text.
 * Must never crash, leak or hang; a rejected input must carry a message.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct pol_err err;
    struct pol_config *cfg;
    char *text = malloc(size + 1);

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cfg = pol_config_load_string(text, "fuzz.conf", NULL, &err);
    if (cfg == NULL && err.msg[0] == '\0')
        abort(); /* every refusal must say why */
    pol_config_unref(cfg);
    free(text);
    return 0;
}
