/*
 * The issuer index: which of the VA's issuers a CertID names, without the
 * database. Built from the issuer certificates (the CertID hashes are
 * computed here, for every hash we answer with), then only read; the
 * responder builds a new one when the issuers change and swaps it in.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "util/util.h"
#include "va/va_int.h"

struct va_index_entry {
	int64_t				 id;
	char				 name[VA_ISSUER_NAME_MAX + 1];
	X509				*cert;
	struct ocsp_issuer_hashes	 h;
};

struct va_index {
	size_t			 n, cap;
	struct va_index_entry	*e;
};

int
va_index_new(struct va_index **out)
{
	*out = calloc(1, sizeof(**out));
	return *out == NULL ? SP_ERR_ALLOC : 0;
}

void
va_index_free(struct va_index *ix)
{
	if (ix == NULL)
		return;
	for (size_t i = 0; i < ix->n; i++)
		X509_free(ix->e[i].cert);
	free(ix->e);
	free(ix);
}

int
va_index_add(struct va_index *ix, int64_t id, const char *name, X509 *cert,
    struct sp_err *err)
{
	struct va_index_entry	*e;
	int			 r;

	if (id < 0 || name == NULL || !sp_name_valid(name, VA_ISSUER_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "bad issuer for the "
		    "index");
	for (size_t i = 0; i < ix->n; i++)
		if (ix->e[i].id == id || strcmp(ix->e[i].name, name) == 0)
			return sp_err_set(err, SP_ERR_EXISTS, "issuer %s twice "
			    "in the index", name);
	if (ix->n == VA_INDEX_MAX)
		return sp_err_set(err, SP_ERR_LIMIT, "more than %d issuers",
		    VA_INDEX_MAX);
	if (ix->n == ix->cap) {
		size_t	 cap = ix->cap ? ix->cap * 2 : 8;

		if ((e = reallocarray(ix->e, cap, sizeof(*e))) == NULL)
			return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		ix->e = e;
		ix->cap = cap;
	}
	e = &ix->e[ix->n];
	memset(e, 0, sizeof(*e));
	if ((r = ocsp_issuer_hashes(cert, &e->h, err)) != 0)
		return r;
	if (X509_up_ref(cert) != 1)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	e->id = id;
	e->cert = cert;
	snprintf(e->name, sizeof(e->name), "%s", name);
	ix->n++;
	return 0;
}

int64_t
va_index_find(const struct va_index *ix, const struct ocsp_certid *id)
{
	for (size_t i = 0; i < ix->n; i++)
		if (ocsp_certid_matches(id, &ix->e[i].h))
			return ix->e[i].id;
	return -1;
}

int64_t
va_index_find_name(const struct va_index *ix, const char *name)
{
	for (size_t i = 0; i < ix->n; i++)
		if (strcmp(ix->e[i].name, name) == 0)
			return ix->e[i].id;
	return -1;
}

X509 *
va_index_cert(const struct va_index *ix, int64_t id)
{
	for (size_t i = 0; i < ix->n; i++)
		if (ix->e[i].id == id)
			return ix->e[i].cert;
	return NULL;
}

size_t
va_index_count(const struct va_index *ix)
{
	return ix->n;
}

struct load {
	struct va_index	*ix;
	struct sp_err	*err;
	int		 r;
};

static int
load_row(const struct store_row *row, void *arg)
{
	struct load		*ld = arg;
	const unsigned char	*p;
	size_t			 len;
	X509			*x;

	p = store_row_blob(row, 2, &len);
	if (p == NULL || len == 0 || len > LONG_MAX ||
	    (x = d2i_X509(NULL, &p, (long)len)) == NULL) {
		ld->r = sp_err_set(ld->err, SP_ERR_DB, "issuer %s: a stored "
		    "certificate that does not parse", store_row_text(row, 1));
		return ld->r;
	}
	ld->r = va_index_add(ld->ix, store_row_int(row, 0),
	    store_row_text(row, 1), x, ld->err);
	X509_free(x);
	return ld->r;
}

int
va_index_load(struct store *st, struct store_txn *tx, struct va_index **out,
    struct sp_err *err)
{
	struct load	ld = { NULL, err, 0 };
	int		r;

	*out = NULL;
	if (va_index_new(&ld.ix) != 0)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = store_select(st, tx, load_row, &ld, err, "SELECT id, name, cert "
	    "FROM va_issuers ORDER BY id LIMIT ?", "i",
	    (int64_t)VA_INDEX_MAX + 1);
	if (r == 0 && ld.r != 0)
		r = ld.r;
	if (r != 0) {
		va_index_free(ld.ix);
		return r;
	}
	*out = ld.ix;
	return 0;
}
