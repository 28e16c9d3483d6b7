/*
 * tests/unit/main.c - runs every unit suite; Check prints the summary
 * ("100%: Checks: N, Failures: 0, Errors: 0") and we exit non-zero on any
 * failure.
 */
#include <stdlib.h>

#include "units.h"

int
main(void)
{
    SRunner *sr = srunner_create(suite_addrlist());
    int failed;

    srunner_add_suite(sr, suite_addr());
    srunner_add_suite(sr, suite_tlsver());
    srunner_add_suite(sr, suite_json());
    srunner_add_suite(sr, suite_config());
    srunner_add_suite(sr, suite_msg());
    srunner_add_suite(sr, suite_dkim());
    srunner_add_suite(sr, suite_dmarc());
    srunner_add_suite(sr, suite_canon());
    srunner_add_suite(sr, suite_tlsmap());
    srunner_add_suite(sr, suite_maillog());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
