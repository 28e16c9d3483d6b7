/*
 * tests/fuzz/fuzz_maillog.c - libFuzzer target: the Postfix log line
 * parser of outpolicyctl trace, one line per input.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct pol_logline l;
    char *line = malloc(size + 1);

    if (line == NULL)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    if (pol_logline_parse(line, &l) == 0 && l.kind == POL_LOG_DELIVERY
        && (l.qid[0] == '\0' || l.status[0] == '\0'))
        abort(); /* a delivery always has a queue ID and a status */
    free(line);
    return 0;
}
