/*
 * ctl/keygen.c - outpolicyctl keygen: a DKIM key pair and its TXT record.
 *
 * The record is printed in zone-file form, the p= value split into
 * strings of at most 255 characters (RFC 1035 character-strings).
 * Licence: BSD-2-Clause.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl/ctl.h"
#include "policy/policy.h"

#define TXT_CHUNK 255

/* print_txt - NAME IN TXT ( "..." "..." ) */
static void
print_txt(const char *sel, const char *dom, const char *txt)
{
    size_t n = strlen(txt);

    printf("%s._domainkey.%s. IN TXT (", sel, dom);
    for (size_t o = 0; o < n; o += TXT_CHUNK)
        printf("\n    \"%.*s\"", (int)(n - o < TXT_CHUNK ? n - o : TXT_CHUNK),
            txt + o);
    printf(" )\n");
}

int
ctl_keygen(int argc, char **argv)
{
    static const struct option lopts[] = {
        { "domain", required_argument, NULL, 'd' },
        { "selector", required_argument, NULL, 's' },
        { "algorithm", required_argument, NULL, 'a' },
        { "bits", required_argument, NULL, 'b' },
        { "out", required_argument, NULL, 'o' },
        { NULL, 0, NULL, 0 },
    };
    const char *dom = NULL, *sel = NULL, *out = NULL;
    char deflt[512], txt[4096];
    int alg = POL_KEYGEN_RSA, bits = 2048, ch;
    struct pol_err err = { "" };

    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:s:a:b:o:", lopts, NULL)) != -1) {
        switch (ch) {
        case 'd': dom = optarg; break;
        case 's': sel = optarg; break;
        case 'o': out = optarg; break;
        case 'b': bits = atoi(optarg); break;
        case 'a':
            if (strcmp(optarg, "rsa") == 0 || strcmp(optarg, "rsa-sha256") == 0)
                alg = POL_KEYGEN_RSA;
            else if (strcmp(optarg, "ed25519") == 0
                || strcmp(optarg, "ed25519-sha256") == 0)
                alg = POL_KEYGEN_ED25519;
            else {
                fprintf(stderr, "keygen: --algorithm is rsa or ed25519\n");
                return EX_USAGE;
            }
            break;
        default:
            return EX_USAGE;
        }
    }
    if (dom == NULL || sel == NULL || optind != argc) {
        fprintf(stderr, "usage: outpolicyctl keygen --domain D --selector S "
            "[--algorithm rsa|ed25519] [--bits N] [--out FILE]\n");
        return EX_USAGE;
    }
    if (alg == POL_KEYGEN_RSA && (bits < 1024 || bits > 8192)) {
        fprintf(stderr, "keygen: --bits must be 1024..8192 (2048 is the "
            "usual choice)\n");
        return EX_USAGE;
    }
    if (out == NULL) {
        snprintf(deflt, sizeof(deflt), "%s.%s.pem", dom, sel);
        out = deflt;
    }
    if (pol_keygen(alg, bits, out, txt, sizeof(txt), &err) != POL_OK) {
        fprintf(stderr, "keygen: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "keygen: private key written to %s (mode 0600); "
        "publish this record:\n", out);
    print_txt(sel, dom, txt);
    return 0;
}
