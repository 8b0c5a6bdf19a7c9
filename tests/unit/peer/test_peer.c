/*
 * Unit tests for peer/peer.c: the settings row and its audit record
 * (escaped JSON, never truncated, an upsert), and the certificate
 * fingerprint, which must fail rather than yield a shared all-zero key
 * when the digest cannot be computed (X509_digest is interposed here).
 */
#include <sys/stat.h>

#include <dlfcn.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "peer/peer_int.h"
#include "store/store.h"
#include "util/err.h"
#include "util/log.h"

/* --- X509_digest, failing on demand -------------------------------------- */

static int	digest_fails;

int
X509_digest(const X509 *x, const EVP_MD *md, unsigned char *out,
    unsigned int *len)
{
	static int (*real)(const X509 *, const EVP_MD *, unsigned char *,
	    unsigned int *);

	if (digest_fails)
		return 0;
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "X509_digest");
	assert_non_null(real);
	return real(x, md, out, len);
}

/* --- fixture: a store in a temporary directory ---------------------------- */

struct fixture {
	char		 dir[64];
	char		 path[128];
	struct store	*st;
	struct peer	*p;
};

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	struct fixture	*fx;
	struct sp_err	 err = { 0 };

	log_init(LOG_LVL_ERROR);
	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sp_test_peer.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
	if (store_open(fx->path, &fx->st, &err) != 0 ||
	    (fx->p = calloc(1, sizeof(*fx->p))) == NULL) {
		fprintf(stderr, "open: %s\n", err.msg);
		store_close(fx->st);
		nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(fx);
		return -1;
	}
	/* peer_setting_put() needs only the store. */
	fx->p->st = fx->st;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 r;

	free(fx->p);
	store_close(fx->st);
	r = nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return r == 0 ? 0 : -1;
}

/* --- settings ------------------------------------------------------------- */

static int
value_row(const struct store_row *row, void *arg)
{
	snprintf(arg, 1024, "%s", store_row_text(row, 0));
	return 0;
}

static int
newest_audit(const struct store_audit_row *row, void *arg)
{
	json_t		**out = arg;
	json_error_t	  je;

	if (*out == NULL && strcmp(row->event, "peer.setting") == 0)
		*out = json_loads(row->details, 0, &je);
	return 0;
}

static void
put_and_check(struct fixture *fx, const char *key, const char *value)
{
	struct sp_err	 err = { 0 };
	char		 got[1024] = "";
	json_t		*d = NULL;

	assert_int_equal(peer_setting_put(fx->p, key, value, "tester", &err),
	    0);
	assert_int_equal(store_select(fx->st, NULL, value_row, got, &err,
	    "SELECT value FROM settings WHERE key = ?", "s", key), 0);
	assert_string_equal(got, value);
	assert_int_equal(store_audit_foreach(fx->st, NULL, 1, newest_audit, &d), 0);
	assert_non_null(d);		/* the details are valid JSON */
	assert_string_equal(json_string_value(json_object_get(d, "key")), key);
	assert_string_equal(json_string_value(json_object_get(d, "value")),
	    value);
	assert_int_equal(json_object_size(d), 2);
	json_decref(d);
}

static void
test_setting_audit_escaped(void **state)
{
	struct fixture	*fx = *state;

	put_and_check(fx, "peer.incoming_keybinding", "kb\"x\\y\",\"evil\":\"1");
}

static void
test_setting_audit_not_truncated(void **state)
{
	struct fixture	*fx = *state;
	char		 v[600];

	memset(v, 'v', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	put_and_check(fx, "peer.incoming_keybinding", v);
}

static int
count_row(const struct store_row *row, void *arg)
{
	(void)row;
	(*(int *)arg)++;
	return 0;
}

static void
test_setting_upsert(void **state)
{
	struct fixture		*fx = *state;
	struct sp_err		 err = { 0 };
	struct store_audit_report rep;
	int			 n = 0;

	put_and_check(fx, "peer.incoming_enabled", "1");
	put_and_check(fx, "peer.incoming_enabled", "0");
	put_and_check(fx, "peer.outgoing_enabled", "1");
	assert_int_equal(store_select(fx->st, NULL, count_row, &n, &err,
	    "SELECT key FROM settings WHERE key LIKE 'peer.%'", ""), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_audit_verify(fx->st, NULL, &rep, &err), 0);
	assert_int_equal(rep.bad_seq, 0);
}

/* --- fingerprint ---------------------------------------------------------- */

static X509 *
mkcert(void)
{
	X509		*x = X509_new();
	EVP_PKEY	*k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(x);
	assert_non_null(k);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)"fp.example", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	EVP_PKEY_free(k);
	return x;
}

static void
test_fingerprint(void **state)
{
	X509		*x = mkcert();
	unsigned char	 md[32];
	unsigned int	 len = 0;
	char		 fp[65], want[65];

	(void)state;
	assert_int_equal(X509_digest(x, EVP_sha256(), md, &len), 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	assert_int_equal(peer_fingerprint(x, fp), 0);
	assert_string_equal(fp, want);
	X509_free(x);
}

static void
test_fingerprint_failure_is_an_error(void **state)
{
	X509	*x = mkcert();
	char	 fp[65];

	(void)state;
	memset(fp, 'x', sizeof(fp));
	digest_fails = 1;
	assert_int_not_equal(peer_fingerprint(x, fp), 0);
	digest_fails = 0;
	/* Nothing usable as a cache key is left behind. */
	assert_string_equal(fp, "");
	X509_free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_setting_audit_escaped,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_setting_audit_not_truncated,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_setting_upsert, setup,
		    teardown),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_fingerprint_failure_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
