/*
 * Unit test for sp_harden_process() (S5): after it, this process has a
 * core file limit of 0 and is not dumpable. A file of its own, as the
 * change is process-wide.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/util.h"

static void
test_harden_process(void **state)
{
	struct sp_err	err = { 0 };
	struct rlimit	rl;

	(void)state;
	assert_int_equal(sp_harden_process(&err), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_int_equal(rl.rlim_cur, 0);
	assert_int_equal(rl.rlim_max, 0);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	/* Idempotent: a second call (every command calls it) is fine. */
	assert_int_equal(sp_harden_process(&err), 0);
	assert_int_equal(err.code, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_harden_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
