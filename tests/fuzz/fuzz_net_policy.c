/* fuzz_net_policy.c: libFuzzer target for the network policy's file parser and checks
 * (user/netpol/policy_file.c): any input is refused with "fuzz.yaml:LINE: ..." or accepted, never a
 * crash; every accepted rule prints in kcachectl's words that parse back to the same rule. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "netpol/policy_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_pol_spec s;
	char err[512];

	if (size > 65536)
		return 0;
	if (kc_pol_parse_buf(&s, "fuzz.yaml", (const char *)data, size, 64, err, sizeof(err))) {
		if (strncmp(err, "fuzz.yaml:", 10))
			__builtin_trap(); /* every refusal names file:line */
		return 0;
	}
	if (kc_pol_spec_finish(&s, "fuzz.yaml", 11211, NULL, 0, 64, err, sizeof(err)) == 0) {
		for (uint32_t i = 0; i < s.n_rules; i++) {
			char t[KC_POL_TEXT_MAX], *argv[16], *save = NULL;
			struct kc_pol_rule_spec r;
			int argc = 0;

			kc_pol_rule_text(&s.rules[i], t, sizeof(t));
			for (char *w = strtok_r(t, " ", &save); w && argc < 16;
			     w = strtok_r(NULL, " ", &save))
				argv[argc++] = w;
			if (kc_pol_parse_words(&r, argc, argv, err, sizeof(err)) ||
			    r.action != s.rules[i].action || r.lo != s.rules[i].lo ||
			    r.hi != s.rules[i].hi || r.proto != s.rules[i].proto ||
			    r.rate != s.rules[i].rate || r.burst != s.rules[i].burst ||
			    memcmp(&r.pfx, &s.rules[i].pfx, sizeof(r.pfx)))
				__builtin_trap(); /* the words must give the rule back */
		}
	}
	kc_pol_spec_free(&s);
	return 0;
}
