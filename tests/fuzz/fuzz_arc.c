/*
 * tests/fuzz/fuzz_arc.c - libFuzzer target: ARC header parsing and chain
 * validation over a whole message (header fields, then the body), the
 * way the milter feeds it.  Keys come from a fixed record, so signature
 * checks run (and fail) without DNS.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static struct pol_config *cfg;

/* key - every selector has this 1024-bit RSA key */
static int
key(void *arg, const char *name, char *out, size_t len)
{
    (void)arg;
    if (strstr(name, "._domainkey.") == NULL)
        return 0;
    strncpy(out, "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDk"
        "JauN2IO5ZBmDPnoqyN3BWTkqOB0SfbmnT7RfUcyWq2ODo+bfp4DR5Pf0kljCnqbk2c"
        "KbYk9Y5bl6MfzzN0S1hI0WKbB0aZ2oe79BqDy7TW7hR/sXBqNFWh3gSk2KIjKJh3C1"
        "kcT/Pv/JsBglnUe2O8bbUcoVvhPc9XY0DiB3iwIDAQAB", len - 1);
    out[len - 1] = '\0';
    return 1;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    struct pol_client cl = { .addr = "127.0.0.1", .hdr_leadspc = 1 };
    struct pol_verdict v;
    struct pol_msg *m;
    char *text = malloc(size + 1), *p, *body;
    struct pol_err err;

    if (cfg == NULL)
        cfg = pol_config_load_string("events = { file = \"\"; };\n"
            "dkim = { enabled = false; };\nspf = { enabled = false; };\n"
            "dmarc = { enabled = false; };\n", "fuzz", NULL, &err);
    if (text == NULL || cfg == NULL || (m = pol_msg_new(cfg, &cl, "", ""))
        == NULL) {
        free(text);
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    pol_msg_set_outbound(m, "");
    pol_msg_set_arc_tool(m, key, NULL, NULL, NULL, 0);
    /* header fields: "Name:value" per line, continuation lines folded in
     * with CRLF; a blank line starts the body */
    body = strstr(text, "\n\n");
    if (body != NULL)
        *body = '\0', body += 2;
    for (p = text; p && *p;) {
        char *nl = strchr(p, '\n'), *colon;
        if (nl)
            *nl = '\0';
        if ((colon = strchr(p, ':')) != NULL) {
            *colon = '\0';
            if (pol_msg_header(m, p, colon + 1) != POL_OK)
                break;
        }
        p = nl ? nl + 1 : NULL;
    }
    if (pol_msg_eoh(m, &v) == POL_OK && (body == NULL
            || pol_msg_body(m, (unsigned char *)body, strlen(body)) == POL_OK))
        pol_msg_eom(m, &v);
    pol_msg_free(m);
    free(text);
    return 0;
}
