/*
 * Unit tests for net/pool.c: jobs run on workers and complete on the loop
 * in order; a full queue fails fast; what was accepted runs, even when the
 * pool is freed with jobs still queued.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "net/pool.h"
#include "util/err.h"

struct gate {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	bool		 open;
	int		 worked;
	int		 done;
	int		 order[64];
};

static struct gate	g;

static void
work_wait(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g.mtx);
	while (!g.open)
		pthread_cond_wait(&g.cond, &g.mtx);
	g.worked++;
	pthread_mutex_unlock(&g.mtx);
}

static void
on_done(void *arg)
{
	if (g.done < 64)
		g.order[g.done] = (int)(intptr_t)arg;
	g.done++;
}

static void
gate_open(void)
{
	pthread_mutex_lock(&g.mtx);
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.mtx);
}

static int
setup(void **state)
{
	(void)state;
	pthread_mutex_init(&g.mtx, NULL);
	pthread_cond_init(&g.cond, NULL);
	g.open = false;
	g.worked = g.done = 0;
	return evthread_use_pthreads();
}

static int
teardown(void **state)
{
	(void)state;
	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.mtx);
	return 0;
}

static void
test_full_queue_fails_fast(void **state)
{
	struct event_base	*base = event_base_new();
	struct pool		*p;

	(void)state;
	assert_non_null(base);
	assert_non_null(p = pool_new(base, 1));
	pool_set_max_pending(p, 4);
	for (intptr_t i = 0; i < 4; i++)
		assert_int_equal(pool_submit(p, work_wait, on_done,
		    (void *)i), 0);
	/* The worker is blocked: the fifth is refused at once. */
	assert_int_equal(pool_submit(p, work_wait, on_done, (void *)99),
	    SP_ERR_LIMIT);
	assert_int_equal(pool_pending(p), 4);
	gate_open();
	/* Completions are activated from the workers; poll the loop. */
	for (int n = 0; g.done < 4 && n < 10000; n++) {
		struct timespec	ts = { 0, 1000 * 1000 };

		(void)event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ts, NULL);
	}
	assert_int_equal(g.done, 4);
	assert_int_equal(g.worked, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(g.order[i], i);	/* oldest first */
	/* Room again. */
	assert_int_equal(pool_pending(p), 0);
	assert_int_equal(pool_submit(p, work_wait, on_done, (void *)4), 0);
	pool_free(p);		/* runs it and its completion */
	assert_int_equal(g.done, 5);
	event_base_free(base);
}

static void
test_free_runs_what_was_accepted(void **state)
{
	struct event_base	*base = event_base_new();
	struct pool		*p;

	(void)state;
	assert_non_null(base);
	assert_non_null(p = pool_new(base, 2));
	for (intptr_t i = 0; i < 10; i++)
		assert_int_equal(pool_submit(p, work_wait, on_done,
		    (void *)i), 0);
	gate_open();
	pool_free(p);
	assert_int_equal(g.worked, 10);
	assert_int_equal(g.done, 10);
	assert_null(pool_new(base, 0));
	assert_null(pool_new(base, POOL_THREADS_MAX + 1));
	event_base_free(base);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_full_queue_fails_fast),
		T(test_free_runs_what_was_accepted),
	};

	return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
