/*
 * tests/unit/units.h - the unit suites (Check), one per policy/ module.
 */
#ifndef UNITS_H
#define UNITS_H

#include <check.h>

Suite *suite_addrlist(void);
Suite *suite_addr(void);
Suite *suite_tlsver(void);
Suite *suite_json(void);
Suite *suite_config(void);
Suite *suite_msg(void);
Suite *suite_dkim(void);
Suite *suite_dmarc(void);
Suite *suite_canon(void);
Suite *suite_tlsmap(void);
Suite *suite_maillog(void);

#endif
