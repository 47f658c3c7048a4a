/* fuzz_audit_policy.c: libFuzzer target for the audit policy parser and compiler
 * (user/audit/audit_policy.c): any input is refused with a message or compiled, never a crash. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "audit/audit_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct kc_audit_policy *p;

	if (size > 65536)
		return 0;
	p = kc_audit_policy_parse("fuzz.yaml", (const char *)data, size, err, sizeof(err));
	if (p) {
		(void)kc_audit_policy_match(p, KC_LPM_PATH, "/etc/shadow");
		kc_audit_policy_free(p);
	} else if (!memchr(err, ':', sizeof(err))) {
		__builtin_trap(); /* every refusal names file:line */
	}
	return 0;
}
