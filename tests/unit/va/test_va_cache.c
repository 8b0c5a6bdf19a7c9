#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "va/va_int.h"

static struct va_resp *
resp(const char *body, time_t refresh_at, time_t expires)
{
	struct va_resp	*r;

	assert_non_null(r = va_resp_new((const unsigned char *)body,
	    strlen(body), refresh_at, expires));
	return r;
}

static void
test_put_get(void **state)
{
	struct va_cache	*c;
	struct va_resp	*r, *got;
	bool		 refresh;

	(void)state;
	assert_int_equal(va_cache_new(0, &c), 0);
	r = resp("good-0a", 100, 200);
	assert_int_equal(va_cache_put(c, 1, "0a", OCSP_HASH_SHA1, r,
	    va_cache_gen(c)), 0);
	va_resp_unref(r);
	assert_int_equal(va_cache_count(c), 1);

	assert_non_null(got = va_cache_get1(c, 1, "0a", OCSP_HASH_SHA1, 50,
	    &refresh));
	assert_false(refresh);
	assert_memory_equal(got->der, "good-0a", 7);
	/* Other hash, issuer or serial: not this response. */
	assert_null(va_cache_get1(c, 1, "0a", OCSP_HASH_SHA256, 50, NULL));
	assert_null(va_cache_get1(c, 2, "0a", OCSP_HASH_SHA1, 50, NULL));
	assert_null(va_cache_get1(c, 1, "0b", OCSP_HASH_SHA1, 50, NULL));
	assert_null(va_cache_get1(c, 1, "0a", OCSP_HASH_NONE, 50, NULL));

	/* Replaced while a reference is out: the old bytes stay valid. */
	r = resp("revoked-0a", 100, 200);
	assert_int_equal(va_cache_put(c, 1, "0a", OCSP_HASH_SHA1, r,
	    va_cache_gen(c)), 0);
	va_resp_unref(r);
	assert_memory_equal(got->der, "good-0a", 7);
	va_resp_unref(got);
	assert_non_null(got = va_cache_get1(c, 1, "0a", OCSP_HASH_SHA1, 50,
	    NULL));
	assert_memory_equal(got->der, "revoked-0a", 10);
	va_resp_unref(got);
	assert_int_equal(va_cache_count(c), 1);
	assert_int_equal(va_cache_put(c, 1, "0a", OCSP_HASH__MAX, r, 1),
	    SP_ERR_INVALID);
	va_cache_free(c);
}

static void
test_refresh_and_expiry(void **state)
{
	struct va_cache	*c;
	struct va_resp	*r, *got;
	bool		 refresh;
	int		 claims = 0;

	(void)state;
	assert_int_equal(va_cache_new(16, &c), 0);
	r = resp("x", 100, 200);
	assert_int_equal(va_cache_put(c, 7, "01", OCSP_HASH_SHA256, r,
	    va_cache_gen(c)), 0);
	va_resp_unref(r);
	/* Past refresh_at: served, and exactly one caller re-signs. */
	for (int i = 0; i < 5; i++) {
		assert_non_null(got = va_cache_get1(c, 7, "01",
		    OCSP_HASH_SHA256, 150, &refresh));
		claims += refresh;
		va_resp_unref(got);
	}
	assert_int_equal(claims, 1);
	/* Expired: never served, and gone. */
	assert_null(va_cache_get1(c, 7, "01", OCSP_HASH_SHA256, 200, NULL));
	assert_null(va_cache_get1(c, 7, "01", OCSP_HASH_SHA256, 10, NULL));
	va_cache_free(c);
}

/* A response signed from a status read before a change is not cached. */
static void
test_stale_put_refused(void **state)
{
	struct va_cache	*c;
	struct va_resp	*r;
	uint64_t	 g;

	(void)state;
	assert_int_equal(va_cache_new(0, &c), 0);
	g = va_cache_gen(c);
	va_cache_invalidate(c, 1, "0a");
	r = resp("good (stale)", 100, 200);
	assert_int_equal(va_cache_put(c, 1, "0a", OCSP_HASH_SHA1, r, g),
	    SP_ERR_STATE);
	assert_null(va_cache_get1(c, 1, "0a", OCSP_HASH_SHA1, 50, NULL));
	/* Read after the change: cached. */
	assert_int_equal(va_cache_put(c, 1, "0a", OCSP_HASH_SHA1, r,
	    va_cache_gen(c)), 0);
	va_resp_unref(r);
	/* Invalidation drops every hash variant. */
	r = resp("sha256", 100, 200);
	assert_int_equal(va_cache_put(c, 1, "0a", OCSP_HASH_SHA256, r,
	    va_cache_gen(c)), 0);
	va_resp_unref(r);
	va_cache_invalidate(c, 1, "0a");
	assert_null(va_cache_get1(c, 1, "0a", OCSP_HASH_SHA1, 50, NULL));
	assert_null(va_cache_get1(c, 1, "0a", OCSP_HASH_SHA256, 50, NULL));
	assert_int_equal(va_cache_count(c), 0);
	va_cache_free(c);
}

static void
test_eviction_and_issuer(void **state)
{
	struct va_cache	*c;
	char		 serial[16];
	size_t		 n;

	(void)state;
	/* 64 shards of 1: at most 64 entries whatever is put. */
	assert_int_equal(va_cache_new(64, &c), 0);
	for (int i = 0; i < 1000; i++) {
		struct va_resp	*r = resp("r", 100, 200);

		snprintf(serial, sizeof(serial), "%04x", i);
		assert_int_equal(va_cache_put(c, 1 + i % 2, serial,
		    OCSP_HASH_SHA1, r, va_cache_gen(c)), 0);
		va_resp_unref(r);
	}
	n = va_cache_count(c);
	assert_true(n > 0 && n <= 64);
	va_cache_invalidate_issuer(c, 1);
	va_cache_invalidate_issuer(c, 2);
	assert_int_equal(va_cache_count(c), 0);
	va_cache_free(c);
}

struct worker {
	struct va_cache	*c;
	int		 id;
	long		 hits;
	long		 puts;
};

static void *
hammer(void *arg)
{
	struct worker	*w = arg;
	char		 serial[16];

	for (int i = 0; i < 20000; i++) {
		struct va_resp	*r;
		bool		 refresh;
		int		 k = (i * 7 + w->id) % 300;

		snprintf(serial, sizeof(serial), "%02x", k);
		if ((r = va_cache_get1(w->c, 1, serial, OCSP_HASH_SHA1, 150,
		    &refresh)) != NULL) {
			if (r->len != 2 || memcmp(r->der, "ok", 2) != 0)
				abort();
			w->hits++;
			va_resp_unref(r);
		} else if (i % 3 == 0) {
			uint64_t	g = va_cache_gen(w->c);

			r = va_resp_new((const unsigned char *)"ok", 2, 100,
			    200);
			if (r == NULL)
				abort();
			/* Refused (SP_ERR_STATE) if it raced a change. */
			w->puts += va_cache_put(w->c, 1, serial,
			    OCSP_HASH_SHA1, r, g) == 0;
			va_resp_unref(r);
		}
		if (i % 97 == 0)
			va_cache_invalidate(w->c, 1, serial);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct va_cache	*c;
	struct worker	 w[4];
	pthread_t	 t[4];
	long		 hits = 0;

	(void)state;
	assert_int_equal(va_cache_new(1024, &c), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ c, i, 0, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]),
		    0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		hits += w[i].hits;
	}
	assert_true(hits > 0);
	assert_true(va_cache_count(c) <= 1024);
	va_cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_refresh_and_expiry),
		cmocka_unit_test(test_stale_put_refused),
		cmocka_unit_test(test_eviction_and_issuer),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests_name("va_cache", tests, NULL, NULL);
}
