#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "crypto/key.h"

#define PIN	"1234-secret"

struct fixture {
	EVP_PKEY	*p256;
	unsigned char	*wrapped;
	size_t		 wlen;
};

static int
setup(void **state)
{
	struct fixture	*f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	if (key_generate(KEY_EC_P256, &f->p256, NULL) != 0 ||
	    key_wrap(f->p256, PIN, &f->wrapped, &f->wlen, NULL) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	EVP_PKEY_free(f->p256);
	free(f->wrapped);
	free(f);
	return 0;
}

static void
test_alg_names(void **state)
{
	(void)state;
	for (int i = 0; i < KEY__MAX; i++) {
		assert_non_null(key_alg_name(i));
		assert_int_equal(key_alg_parse(key_alg_name(i)), i);
	}
	assert_string_equal(key_alg_name(KEY_EC_P384), "ec-p384");
	assert_null(key_alg_name(KEY__MAX));
	assert_int_equal(key_alg_parse("rsa1024"), -1);
	assert_int_equal(key_alg_parse("EC-P256"), -1);
	assert_int_equal(key_alg_parse(""), -1);
	assert_int_equal(key_alg_parse(NULL), -1);
	assert_string_equal(key_alg_md(KEY_EC_P256), "SHA256");
	assert_string_equal(key_alg_md(KEY_RSA4096), "SHA256");
	assert_string_equal(key_alg_md(KEY_EC_P384), "SHA384");
	assert_null(key_alg_md(KEY_ED25519));
}

/* Every algorithm generates, and private and public keys map back to it. */
static void
test_generate(void **state)
{
	const unsigned char	*p;
	unsigned char		*spki;
	EVP_PKEY		*pk, *pub;
	size_t			 len;

	(void)state;
	/* The only RSA-4096 generation in the unit tests. */
	for (int i = 0; i < KEY__MAX; i++) {
		assert_int_equal(key_generate(i, &pk, NULL), 0);
		assert_int_equal(key_alg_of(pk), i);
		assert_int_equal(key_spki_der(pk, &spki, &len, NULL), 0);
		p = spki;
		assert_non_null(pub = d2i_PUBKEY(NULL, &p, (long)len));
		assert_ptr_equal(p, spki + len);
		assert_int_equal(key_alg_of(pub), i);
		assert_int_equal(EVP_PKEY_eq(pk, pub), 1);
		EVP_PKEY_free(pub);
		free(spki);
		EVP_PKEY_free(pk);
	}
}

static void
test_generate_bad(void **state)
{
	struct sp_err	 err = { 0 };
	EVP_PKEY	*pk = (EVP_PKEY *)(uintptr_t)1;

	(void)state;
	assert_int_equal(key_generate(KEY__MAX, &pk, &err), SP_ERR_INVALID);
	assert_null(pk);
	assert_int_equal(key_alg_of(NULL), -1);
}

static void
test_alg_of_unsupported(void **state)
{
	EVP_PKEY	*pk;

	(void)state;
	assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
	    (size_t)1024));
	assert_int_equal(key_alg_of(pk), -1);
	EVP_PKEY_free(pk);
	assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
	    "brainpoolP256r1"));
	assert_int_equal(key_alg_of(pk), -1);
	EVP_PKEY_free(pk);
	assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
	    "secp256k1"));
	assert_int_equal(key_alg_of(pk), -1);
	EVP_PKEY_free(pk);
	assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED448"));
	assert_int_equal(key_alg_of(pk), -1);
	EVP_PKEY_free(pk);
	assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "X25519"));
	assert_int_equal(key_alg_of(pk), -1);
	EVP_PKEY_free(pk);
}

static void
test_wrap_round_trip(void **state)
{
	struct fixture	*f = *state;
	unsigned char	*der;
	EVP_PKEY	*pk, *back;
	size_t		 len;
	static const enum key_alg algs[] = { KEY_ED25519, KEY_EC_P384,
	    KEY_RSA2048 };

	assert_int_equal(key_unwrap(f->wrapped, f->wlen, PIN, &back, NULL),
	    0);
	assert_int_equal(EVP_PKEY_eq(f->p256, back), 1);
	EVP_PKEY_free(back);

	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		assert_int_equal(key_generate(algs[i], &pk, NULL), 0);
		assert_int_equal(key_wrap(pk, "\xc3\xa5\xc3\xa4\xc3\xb6!",
		    &der, &len, NULL), 0);
		assert_int_equal(key_unwrap(der, len,
		    "\xc3\xa5\xc3\xa4\xc3\xb6!", &back, NULL), 0);
		assert_int_equal(EVP_PKEY_eq(pk, back), 1);
		assert_int_equal(key_alg_of(back), algs[i]);
		EVP_PKEY_free(back);
		EVP_PKEY_free(pk);
		free(der);
	}
}

/* The blob is PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC. */
static void
test_wrap_format(void **state)
{
	struct fixture		*f = *state;
	const unsigned char	*p = f->wrapped;
	const X509_ALGOR	*alg;
	const ASN1_OCTET_STRING	*data;
	X509_SIG		*sig;
	PBE2PARAM		*pbe2;
	PBKDF2PARAM		*kdf;

	assert_non_null(sig = d2i_X509_SIG(NULL, &p, (long)f->wlen));
	X509_SIG_get0(sig, &alg, &data);
	assert_int_equal(OBJ_obj2nid(alg->algorithm), NID_pbes2);
	assert_non_null(pbe2 = ASN1_TYPE_unpack_sequence(
	    ASN1_ITEM_rptr(PBE2PARAM), alg->parameter));
	assert_int_equal(OBJ_obj2nid(pbe2->encryption->algorithm),
	    NID_aes_256_cbc);
	assert_int_equal(OBJ_obj2nid(pbe2->keyfunc->algorithm),
	    NID_id_pbkdf2);
	assert_non_null(kdf = ASN1_TYPE_unpack_sequence(
	    ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter));
	assert_non_null(kdf->prf);
	assert_int_equal(OBJ_obj2nid(kdf->prf->algorithm),
	    NID_hmacWithSHA256);
	assert_true(ASN1_INTEGER_get(kdf->iter) >= 20000);
	assert_int_equal(kdf->salt->type, V_ASN1_OCTET_STRING);
	assert_int_equal(kdf->salt->value.octet_string->length, 16);
	PBKDF2PARAM_free(kdf);
	PBE2PARAM_free(pbe2);
	X509_SIG_free(sig);
}

static void
test_wrong_pin(void **state)
{
	struct fixture	*f = *state;
	struct sp_err	 err = { 0 };
	EVP_PKEY	*pk = (EVP_PKEY *)(uintptr_t)1;
	char		 pin[32];

	assert_int_equal(key_unwrap(f->wrapped, f->wlen, "1234-secreT", &pk,
	    &err), SP_ERR_PIN);
	assert_null(pk);
	assert_int_equal(err.code, SP_ERR_PIN);
	/*
	 * Some wrong PINs yield valid CBC padding by chance (1 in 256); the
	 * result must still be SP_ERR_PIN, never "invalid".
	 */
	for (int i = 0; i < 16; i++) {
		snprintf(pin, sizeof(pin), "wrong-%d", i);
		assert_int_equal(key_unwrap(f->wrapped, f->wlen, pin, &pk,
		    NULL), SP_ERR_PIN);
	}
}

static void
test_garbage(void **state)
{
	struct fixture		*f = *state;
	struct sp_err		 err = { 0 };
	static const unsigned char junk[] = "hello, world";
	unsigned char		*buf;
	EVP_PKEY		*pk = (EVP_PKEY *)(uintptr_t)1;
	size_t			 len;

	/* Every truncation of the DER is malformed, not a wrong PIN. */
	for (size_t n = 0; n < f->wlen; n++) {
		sp_err_clear(&err);
		assert_int_equal(key_unwrap(f->wrapped, n, PIN, &pk, &err),
		    SP_ERR_INVALID);
		assert_null(pk);
		assert_int_equal(err.code, SP_ERR_INVALID);
	}
	assert_int_equal(key_unwrap(junk, sizeof(junk), PIN, &pk, NULL),
	    SP_ERR_INVALID);
	assert_int_equal(key_unwrap(NULL, 0, PIN, &pk, NULL),
	    SP_ERR_INVALID);

	/* Trailing bytes. */
	assert_non_null(buf = malloc(f->wlen + 1));
	memcpy(buf, f->wrapped, f->wlen);
	buf[f->wlen] = 0;
	assert_int_equal(key_unwrap(buf, f->wlen + 1, PIN, &pk, NULL),
	    SP_ERR_INVALID);

	/* A flipped ciphertext byte cannot be told from a wrong PIN. */
	memcpy(buf, f->wrapped, f->wlen);
	buf[f->wlen - 1] ^= 0x01;
	assert_int_equal(key_unwrap(buf, f->wlen, PIN, &pk, NULL),
	    SP_ERR_PIN);
	free(buf);

	/* A SubjectPublicKeyInfo is DER, but not a wrapped key. */
	assert_int_equal(key_spki_der(f->p256, &buf, &len, NULL), 0);
	assert_int_equal(key_unwrap(buf, len, PIN, &pk, NULL),
	    SP_ERR_INVALID);
	free(buf);
}

/* Encrypts f->p256 with old-style PKCS#12 PBE, or PBES2 with 1 round. */
static X509_SIG *
encrypt_other(const EVP_PKEY *pk, int pbe_nid)
{
	PKCS8_PRIV_KEY_INFO	*p8inf;
	X509_SIG		*sig;

	assert_non_null(p8inf = EVP_PKEY2PKCS8(pk));
	sig = PKCS8_encrypt_ex(pbe_nid, pbe_nid == -1 ?
	    EVP_aes_256_cbc() : NULL, PIN, (int)strlen(PIN), NULL, 0, 1,
	    p8inf, NULL, NULL);
	assert_non_null(sig);
	PKCS8_PRIV_KEY_INFO_free(p8inf);
	return sig;
}

static void
check_unwrap_sig(const X509_SIG *sig, int want)
{
	unsigned char	*der = NULL;
	EVP_PKEY	*pk = NULL;
	int		 n;

	assert_true((n = i2d_X509_SIG(sig, &der)) > 0);
	assert_int_equal(key_unwrap(der, (size_t)n, PIN, &pk, NULL), want);
	EVP_PKEY_free(pk);
	OPENSSL_free(der);
}

static void
test_bad_params(void **state)
{
	struct fixture		*f = *state;
	X509_SIG		*sig;
	X509_ALGOR		*alg;
	PBE2PARAM		*pbe2;
	PBKDF2PARAM		*kdf;

	/* Legacy PKCS#12 PBE is refused even with the right PIN. */
	sig = encrypt_other(f->p256, NID_pbe_WithSHA1And3_Key_TripleDES_CBC);
	check_unwrap_sig(sig, SP_ERR_INVALID);
	X509_SIG_free(sig);

	/* PBES2 with other parameters than ours still opens. */
	sig = encrypt_other(f->p256, -1);
	check_unwrap_sig(sig, 0);

	/* A huge iteration count is refused before any work. */
	X509_SIG_getm(sig, &alg, NULL);
	assert_non_null(pbe2 = ASN1_TYPE_unpack_sequence(
	    ASN1_ITEM_rptr(PBE2PARAM), alg->parameter));
	assert_non_null(kdf = ASN1_TYPE_unpack_sequence(
	    ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter));
	assert_true(ASN1_INTEGER_set(kdf->iter, 0x7fffffff));
	ASN1_TYPE_free(pbe2->keyfunc->parameter);
	pbe2->keyfunc->parameter = NULL;
	assert_non_null(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
	    kdf, &pbe2->keyfunc->parameter));
	ASN1_TYPE_free(alg->parameter);
	alg->parameter = NULL;
	assert_non_null(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBE2PARAM),
	    pbe2, &alg->parameter));
	check_unwrap_sig(sig, SP_ERR_INVALID);
	PBKDF2PARAM_free(kdf);
	PBE2PARAM_free(pbe2);
	X509_SIG_free(sig);
}

static void
test_pin_limits(void **state)
{
	struct fixture	*f = *state;
	struct sp_err	 err = { 0 };
	unsigned char	*der = (unsigned char *)(uintptr_t)1;
	char		*v = (char *)(uintptr_t)1;
	char		 longpin[KEY_PIN_MAX + 2];
	EVP_PKEY	*pk;
	size_t		 len;

	assert_int_equal(key_pin_hash("123", &v, &err), SP_ERR_INVALID);
	assert_null(v);
	assert_non_null(strstr(err.msg, "PIN"));
	assert_int_equal(key_pin_hash(NULL, &v, NULL), SP_ERR_INVALID);
	assert_int_equal(key_wrap(f->p256, "123", &der, &len, NULL),
	    SP_ERR_INVALID);
	assert_null(der);
	assert_int_equal(key_unwrap(f->wrapped, f->wlen, "", &pk, NULL),
	    SP_ERR_INVALID);

	memset(longpin, 'x', sizeof(longpin) - 1);
	longpin[KEY_PIN_MAX + 1] = '\0';
	assert_int_equal(key_pin_hash(longpin, &v, NULL), SP_ERR_INVALID);
	longpin[KEY_PIN_MAX] = '\0';
	assert_int_equal(key_pin_hash(longpin, &v, NULL), 0);
	assert_true(key_pin_verify(longpin, v));
	free(v);
	assert_int_equal(key_pin_hash("1234", &v, NULL), 0);
	assert_true(key_pin_verify("1234", v));
	assert_false(key_pin_verify("123", v));
	free(v);
}

static void
test_pin_hash(void **state)
{
	char	*v1, *v2;

	(void)state;
	assert_int_equal(key_pin_hash(PIN, &v1, NULL), 0);
	assert_int_equal(key_pin_hash(PIN, &v2, NULL), 0);
	/* "pbkdf2-sha256$ITER$SALTHEX$HASHHEX", fresh salt each time. */
	assert_int_equal(strncmp(v1, "pbkdf2-sha256$20000$", 20), 0);
	assert_int_equal(strlen(v1), 20 + 32 + 1 + 64);
	assert_int_equal(v1[20 + 32], '$');
	assert_string_not_equal(v1, v2);

	assert_true(key_pin_verify(PIN, v1));
	assert_true(key_pin_verify(PIN, v2));
	assert_false(key_pin_verify("1234-secreT", v1));
	assert_false(key_pin_verify("1234-secret ", v1));
	assert_false(key_pin_verify(NULL, v1));
	free(v1);
	free(v2);
}

static void
test_pin_verify_malformed(void **state)
{
	unsigned char	 salt[16], hash[32];
	char		 buf[256];
	char		*v;
	int		 n;

	(void)state;
	assert_int_equal(key_pin_hash(PIN, &v, NULL), 0);
	assert_false(key_pin_verify(PIN, NULL));
	assert_false(key_pin_verify(PIN, ""));
	/* Other algorithm, iteration counts, truncation, bad hex. */
	snprintf(buf, sizeof(buf), "pbkdf2-sha1%s", v + 13);
	assert_false(key_pin_verify(PIN, buf));
	snprintf(buf, sizeof(buf), "pbkdf2-sha256$0%s", v + 19);
	assert_false(key_pin_verify(PIN, buf));
	snprintf(buf, sizeof(buf), "pbkdf2-sha256$999999999%s", v + 19);
	assert_false(key_pin_verify(PIN, buf));
	snprintf(buf, sizeof(buf), "pbkdf2-sha256$$%s", v + 20);
	assert_false(key_pin_verify(PIN, buf));
	snprintf(buf, sizeof(buf), "%.*s", (int)strlen(v) - 2, v);
	assert_false(key_pin_verify(PIN, buf));
	snprintf(buf, sizeof(buf), "%s$", v);
	assert_false(key_pin_verify(PIN, buf));
	snprintf(buf, sizeof(buf), "%s", v);
	buf[25] = 'g';
	assert_false(key_pin_verify(PIN, buf));
	free(v);

	/* The count is read from the string, so old verifiers still work. */
	memcpy(salt, "0123456789abcdef", 16);
	assert_int_equal(PKCS5_PBKDF2_HMAC(PIN, (int)strlen(PIN), salt, 16,
	    1000, EVP_sha256(), sizeof(hash), hash), 1);
	n = snprintf(buf, sizeof(buf), "pbkdf2-sha256$1000$");
	for (size_t i = 0; i < 16; i++)
		n += snprintf(buf + n, sizeof(buf) - n, "%02x", salt[i]);
	buf[n++] = '$';
	for (size_t i = 0; i < sizeof(hash); i++)
		n += snprintf(buf + n, sizeof(buf) - n, "%02X", hash[i]);
	assert_true(key_pin_verify(PIN, buf));
	assert_false(key_pin_verify("1234-secreT", buf));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alg_names),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_generate_bad),
		cmocka_unit_test(test_alg_of_unsupported),
		cmocka_unit_test(test_wrap_round_trip),
		cmocka_unit_test(test_wrap_format),
		cmocka_unit_test(test_wrong_pin),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_pin_limits),
		cmocka_unit_test(test_pin_hash),
		cmocka_unit_test(test_pin_verify_malformed),
	};

	return cmocka_run_group_tests_name("key", tests, setup, teardown);
}
