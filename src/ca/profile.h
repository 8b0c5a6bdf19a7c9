/*
 * Certificate profiles: what a CA puts into a certificate and what it
 * accepts from a request. Stored as JSON documents; the built-in ones
 * (ROOTCA, SUBCA, ENDUSER, TLS_SERVER, TLS_CLIENT, OCSPSIGNER) cannot be
 * edited but can be cloned.
 */
#ifndef SP_CA_PROFILE_H
#define SP_CA_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "crypto/key.h"
#include "crypto/x509.h"
#include "util/err.h"

#define PROFILE_NAME_MAX	64
#define PROFILE_MAX_EKU		8

/* Allowed subjectAltName types (bits). */
enum {
	SAN_DNS = 1 << 0,
	SAN_IP = 1 << 1,
	SAN_EMAIL = 1 << 2,
	SAN_URI = 1 << 3,
};

struct profile {
	char		 name[PROFILE_NAME_MAX + 1];
	bool		 builtin;
	int		 validity_days;		/* maximum */
	unsigned int	 key_algs;		/* bit (1 << enum key_alg) */
	unsigned int	 key_usage;		/* bit (1 << RFC 5280 bit) */
	bool		 key_usage_critical;
	int		 eku[PROFILE_MAX_EKU];	/* NIDs */
	size_t		 neku;
	bool		 ca;
	int		 path_len;		/* -1: unlimited */
	unsigned int	 san_types;		/* SAN_* allowed from the CSR */
	bool		 san_required;
	char		*crl_dp[CERT_MAX_URLS];
	size_t		 ncrl_dp;
	char		*ocsp_url;
	bool		 ocsp_nocheck;
	int		 subject_max_attrs;	/* CSR subject values */
	int		 subject_max_len;	/* its RFC 4514 bytes */
};

void	profile_free(struct profile *p);

/* Parses a stored JSON document; strict: unknown keys are errors. */
int	profile_from_json(const char *name, const json_t *doc, bool builtin,
	    struct profile **out, struct sp_err *err) SP_WUR;
/* The JSON document for p (new reference). */
json_t	*profile_to_json(const struct profile *p);

/*
 * Applies "key=value" (keys as in the JSON document; lists are comma
 * separated, an empty value clears a list; booleans true/false).
 */
int	profile_set(struct profile *p, const char *assignment,
	    struct sp_err *err) SP_WUR;

/* Deep copy under a new name (not built-in). */
int	profile_clone(const struct profile *src, const char *name,
	    struct profile **out, struct sp_err *err) SP_WUR;

/* The built-in profiles: count and the i-th as a new object. */
size_t	profile_builtin_count(void);
int	profile_builtin(size_t i, struct profile **out, struct sp_err *err)
	    SP_WUR;

/*
 * Checks a verified CSR and a requested validity (days, 0: the profile's)
 * against the profile. SP_ERR_POLICY with a message that names the rule
 * (SP_ERR_INVALID if a subject value or SAN name is not text, see
 * dn_check_values() and csr_get_sans()). The subject may have at most
 * subject_max_attrs attribute values and print (dn_print()) in at most
 * subject_max_len bytes; the defaults are the limits of dn_parse().
 * *sans receives the subjectAltName to copy (may be NULL; caller frees).
 */
int	profile_check(const struct profile *p, const X509_REQ *req, int days,
	    GENERAL_NAMES **sans, struct sp_err *err) SP_WUR;
/* The same for a request from csr_decode(). */
int	profile_check_csr(const struct profile *p, const struct csr *c,
	    int days, GENERAL_NAMES **sans, struct sp_err *err) SP_WUR;

#endif
