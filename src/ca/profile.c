#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "ca/profile.h"
#include "crypto/dn.h"
#include "util/util.h"

enum ptype { PT_INT, PT_BOOL, PT_LIST, PT_STR };

/*
 * Upper bounds an operator may raise subject_max_attrs and
 * subject_max_len to; the defaults are dn_parse()'s limits.
 */
#define SUBJECT_MAX_ATTRS	256
#define SUBJECT_MAX_LEN		16384

/* One row per document key: the table is the schema. */
static const struct pkey {
	const char	*name;
	enum ptype	 type;
	long long	 min, max;
} pkeys[] = {
	{ "validity_days", PT_INT, 1, 36500 },
	{ "key_algs", PT_LIST, 0, 0 },
	{ "key_usage", PT_LIST, 0, 0 },
	{ "key_usage_critical", PT_BOOL, 0, 0 },
	{ "ext_key_usage", PT_LIST, 0, 0 },
	{ "ca", PT_BOOL, 0, 0 },
	{ "path_len", PT_INT, -1, 16 },
	{ "san_types", PT_LIST, 0, 0 },
	{ "san_required", PT_BOOL, 0, 0 },
	{ "crl_dp", PT_LIST, 0, 0 },
	{ "ocsp_url", PT_STR, 0, 0 },
	{ "ocsp_nocheck", PT_BOOL, 0, 0 },
	{ "subject_max_attrs", PT_INT, 1, SUBJECT_MAX_ATTRS },
	{ "subject_max_len", PT_INT, 1, SUBJECT_MAX_LEN },
};
#define NPKEYS	(sizeof(pkeys) / sizeof(pkeys[0]))

/* RFC 5280 4.2.1.3 bit numbers. */
static const char *const ku_names[] = {
	"digitalSignature", "nonRepudiation", "keyEncipherment",
	"dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign",
	"encipherOnly", "decipherOnly",
};
#define NKU	(sizeof(ku_names) / sizeof(ku_names[0]))

static const struct {
	const char	*name;
	int		 nid;
} eku_names[] = {
	{ "serverAuth", NID_server_auth },
	{ "clientAuth", NID_client_auth },
	{ "codeSigning", NID_code_sign },
	{ "emailProtection", NID_email_protect },
	{ "timeStamping", NID_time_stamp },
	{ "OCSPSigning", NID_OCSP_sign },
};
#define NEKU	(sizeof(eku_names) / sizeof(eku_names[0]))

static const char *const san_names[] = { "dns", "ip", "email", "uri" };
#define NSAN	(sizeof(san_names) / sizeof(san_names[0]))

#define URL_MAX	512

void
profile_free(struct profile *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->ncrl_dp; i++)
		free(p->crl_dp[i]);
	free(p->ocsp_url);
	free(p);
}

static const struct pkey *
pkey_find(const char *name)
{
	for (size_t i = 0; i < NPKEYS; i++)
		if (strcmp(pkeys[i].name, name) == 0)
			return &pkeys[i];
	return NULL;
}

static int
name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static bool
url_valid(const char *u)
{
	size_t	n = strlen(u);

	if (n == 0 || n > URL_MAX || (strncmp(u, "http://", 7) != 0 &&
	    strncmp(u, "https://", 8) != 0 && strncmp(u, "ldap://", 7) != 0))
		return false;
	for (; *u != '\0'; u++)
		if ((unsigned char)*u <= 0x20 || (unsigned char)*u >= 0x7f)
			return false;
	return true;
}

/* Parses one list-valued key into p. */
static int
parse_list(struct profile *p, const char *key, const json_t *arr,
    struct sp_err *err)
{
	size_t		 i;
	const json_t	*v;

	json_array_foreach(arr, i, v) {
		const char	*s = json_string_value(v);
		int		 k;

		if (s == NULL)
			return sp_err_set(err, SP_ERR_INVALID, "profile %s: %s: "
			    "entries must be strings", p->name, key);
		if (strcmp(key, "key_algs") == 0) {
			if ((k = key_alg_parse(s)) < 0)
				goto bad;
			p->key_algs |= 1u << k;
		} else if (strcmp(key, "key_usage") == 0) {
			if ((k = name_index(ku_names, NKU, s)) < 0)
				goto bad;
			p->key_usage |= 1u << k;
		} else if (strcmp(key, "ext_key_usage") == 0) {
			size_t e;

			for (e = 0; e < NEKU; e++)
				if (strcmp(eku_names[e].name, s) == 0)
					break;
			if (e == NEKU)
				goto bad;
			if (p->neku == PROFILE_MAX_EKU)
				return sp_err_set(err, SP_ERR_INVALID, "profile "
				    "%s: too many ext_key_usage", p->name);
			p->eku[p->neku++] = eku_names[e].nid;
		} else if (strcmp(key, "san_types") == 0) {
			if ((k = name_index(san_names, NSAN, s)) < 0)
				goto bad;
			p->san_types |= 1u << k;
		} else if (strcmp(key, "crl_dp") == 0) {
			if (!url_valid(s))
				goto bad;
			if (p->ncrl_dp == CERT_MAX_URLS)
				return sp_err_set(err, SP_ERR_INVALID, "profile "
				    "%s: too many crl_dp URLs", p->name);
			if ((p->crl_dp[p->ncrl_dp] = strdup(s)) == NULL)
				return sp_err_set(err, SP_ERR_ALLOC, "oom");
			p->ncrl_dp++;
		}
		continue;
 bad:
		return sp_err_set(err, SP_ERR_INVALID, "profile %s: %s: \"%.64s\" "
		    "is not a valid value", p->name, key, s);
	}
	return 0;
}

int
profile_from_json(const char *name, const json_t *doc, bool builtin,
    struct profile **out, struct sp_err *err)
{
	struct profile	*p = NULL;
	const char	*key;
	json_t		*v;
	int		 r = SP_ERR_INVALID;

	*out = NULL;
	if (!sp_name_valid(name, PROFILE_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "profile name must be 1 "
		    "to %d characters of [A-Za-z0-9_.-], not \".\" or "
		    "\"..\"", PROFILE_NAME_MAX);
	if (!json_is_object(doc))
		return sp_err_set(err, SP_ERR_INVALID, "profile %s: not a JSON "
		    "object", name);
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	strcpy(p->name, name);	/* length checked above */
	p->builtin = builtin;
	p->validity_days = 365;
	p->path_len = -1;
	p->key_usage_critical = true;
	p->subject_max_attrs = DN_MAX_ATTRS;
	p->subject_max_len = DN_MAX_LEN;
	json_object_foreach((json_t *)(uintptr_t)doc, key, v) {
		const struct pkey *pk = pkey_find(key);

		if (pk == NULL) {
			sp_err_set(err, r, "profile %s: unknown key \"%.64s\"",
			    name, key);
			goto out;
		}
		switch (pk->type) {
		case PT_INT:
			if (!json_is_integer(v) ||
			    json_integer_value(v) < pk->min ||
			    json_integer_value(v) > pk->max) {
				sp_err_set(err, r, "profile %s: %s must be an "
				    "integer in %lld..%lld", name, key, pk->min,
				    pk->max);
				goto out;
			}
			if (strcmp(key, "validity_days") == 0)
				p->validity_days = (int)json_integer_value(v);
			else if (strcmp(key, "subject_max_attrs") == 0)
				p->subject_max_attrs =
				    (int)json_integer_value(v);
			else if (strcmp(key, "subject_max_len") == 0)
				p->subject_max_len = (int)json_integer_value(v);
			else
				p->path_len = (int)json_integer_value(v);
			break;
		case PT_BOOL:
			if (!json_is_boolean(v)) {
				sp_err_set(err, r, "profile %s: %s must be true "
				    "or false", name, key);
				goto out;
			}
			if (strcmp(key, "key_usage_critical") == 0)
				p->key_usage_critical = json_is_true(v);
			else if (strcmp(key, "ca") == 0)
				p->ca = json_is_true(v);
			else if (strcmp(key, "san_required") == 0)
				p->san_required = json_is_true(v);
			else
				p->ocsp_nocheck = json_is_true(v);
			break;
		case PT_LIST:
			if (!json_is_array(v)) {
				sp_err_set(err, r, "profile %s: %s must be a "
				    "list", name, key);
				goto out;
			}
			if ((r = parse_list(p, key, v, err)) != 0)
				goto out;
			r = SP_ERR_INVALID;
			break;
		case PT_STR:
			if (!json_is_string(v) || (json_string_length(v) > 0 &&
			    !url_valid(json_string_value(v)))) {
				sp_err_set(err, r, "profile %s: %s must be an "
				    "http(s) URL", name, key);
				goto out;
			}
			if (json_string_length(v) > 0 && (p->ocsp_url =
			    strdup(json_string_value(v))) == NULL) {
				r = sp_err_set(err, SP_ERR_ALLOC, "oom");
				goto out;
			}
			break;
		}
	}
	if (p->key_algs == 0) {
		sp_err_set(err, r, "profile %s: key_algs must allow at least "
		    "one key algorithm", name);
		goto out;
	}
	if (p->ca && !(p->key_usage & (1u << 5))) {
		sp_err_set(err, r, "profile %s: RFC 5280 4.2.1.9: a CA profile "
		    "needs keyCertSign in key_usage", name);
		goto out;
	}
	if (!p->ca && (p->key_usage & (1u << 5))) {
		sp_err_set(err, r, "profile %s: RFC 5280 4.2.1.3: keyCertSign "
		    "needs ca=true", name);
		goto out;
	}
	*out = p;
	p = NULL;
	r = 0;
 out:
	profile_free(p);
	return r;
}

static json_t *
bits_list(unsigned int bits, const char *const *names, size_t n)
{
	json_t	*a = json_array();

	for (size_t i = 0; i < n && a != NULL; i++)
		if (bits & (1u << i))
			json_array_append_new(a, json_string(names[i]));
	return a;
}

json_t *
profile_to_json(const struct profile *p)
{
	json_t		*d, *eku, *dp, *algs;
	const char	*algnames[KEY__MAX];

	for (int i = 0; i < KEY__MAX; i++)
		algnames[i] = key_alg_name(i);
	if ((d = json_object()) == NULL)
		return NULL;
	eku = json_array();
	for (size_t i = 0; i < p->neku; i++)
		for (size_t e = 0; e < NEKU; e++)
			if (eku_names[e].nid == p->eku[i])
				json_array_append_new(eku,
				    json_string(eku_names[e].name));
	dp = json_array();
	for (size_t i = 0; i < p->ncrl_dp; i++)
		json_array_append_new(dp, json_string(p->crl_dp[i]));
	algs = bits_list(p->key_algs, algnames, KEY__MAX);
	json_object_set_new(d, "validity_days", json_integer(p->validity_days));
	json_object_set_new(d, "key_algs", algs);
	json_object_set_new(d, "key_usage", bits_list(p->key_usage, ku_names,
	    NKU));
	json_object_set_new(d, "key_usage_critical",
	    json_boolean(p->key_usage_critical));
	json_object_set_new(d, "ext_key_usage", eku);
	json_object_set_new(d, "ca", json_boolean(p->ca));
	json_object_set_new(d, "path_len", json_integer(p->path_len));
	json_object_set_new(d, "san_types", bits_list(p->san_types, san_names,
	    NSAN));
	json_object_set_new(d, "san_required", json_boolean(p->san_required));
	json_object_set_new(d, "crl_dp", dp);
	json_object_set_new(d, "ocsp_url", json_string(p->ocsp_url ?
	    p->ocsp_url : ""));
	json_object_set_new(d, "ocsp_nocheck", json_boolean(p->ocsp_nocheck));
	json_object_set_new(d, "subject_max_attrs",
	    json_integer(p->subject_max_attrs));
	json_object_set_new(d, "subject_max_len",
	    json_integer(p->subject_max_len));
	return d;
}

/* Re-parses doc into *p, replacing it only if the result is valid. */
static int
reload(struct profile **pp, json_t *doc, struct sp_err *err)
{
	struct profile	*np = NULL;
	int		 r;

	if ((r = profile_from_json((*pp)->name, doc, (*pp)->builtin, &np,
	    err)) != 0)
		return r;
	profile_free(*pp);
	*pp = np;
	return 0;
}

int
profile_set(struct profile *p, const char *assignment, struct sp_err *err)
{
	const struct pkey	*pk;
	const char		*eq, *val, *errstr;
	char			 key[64], *copy = NULL, *tok, *save;
	json_t			*doc = NULL, *v = NULL;
	struct profile		*tmp = NULL;
	long long		 n;
	int			 r = SP_ERR_INVALID;

	if ((eq = strchr(assignment, '=')) == NULL ||
	    (size_t)(eq - assignment) >= sizeof(key))
		return sp_err_set(err, r, "expected key=value, got \"%.64s\"",
		    assignment);
	memcpy(key, assignment, (size_t)(eq - assignment));
	key[eq - assignment] = '\0';
	val = eq + 1;
	if ((pk = pkey_find(key)) == NULL)
		return sp_err_set(err, r, "unknown profile key \"%s\"", key);
	switch (pk->type) {
	case PT_INT:
		if (sp_strtonum(val, pk->min, pk->max, &n, &errstr) != 0)
			return sp_err_set(err, r, "%s: value is %s (%lld..%lld)",
			    key, errstr, pk->min, pk->max);
		v = json_integer(n);
		break;
	case PT_BOOL:
		if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0)
			return sp_err_set(err, r, "%s: must be true or false",
			    key);
		v = json_boolean(strcmp(val, "true") == 0);
		break;
	case PT_STR:
		v = json_string(val);
		break;
	case PT_LIST:
		if ((v = json_array()) == NULL || (copy = strdup(val)) == NULL)
			break;
		for (tok = strtok_r(copy, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save))
			if (json_array_append_new(v, json_string(tok)) != 0) {
				/* json_string() refuses invalid UTF-8. */
				free(copy);
				json_decref(v);
				return sp_err_set(err, SP_ERR_INVALID, "%s: not "
				    "valid UTF-8", key);
			}
		break;
	}
	free(copy);
	if (v == NULL && pk->type == PT_STR)
		return sp_err_set(err, SP_ERR_INVALID, "%s: not valid UTF-8",
		    key);
	if (v == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if ((doc = profile_to_json(p)) == NULL) {
		json_decref(v);
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	}
	json_object_set_new(doc, key, v);
	/* Validate on a copy, then replace p's contents. */
	if ((r = profile_clone(p, p->name, &tmp, err)) == 0 &&
	    (r = reload(&tmp, doc, err)) == 0) {
		for (size_t i = 0; i < p->ncrl_dp; i++)
			free(p->crl_dp[i]);
		free(p->ocsp_url);
		tmp->builtin = p->builtin;
		*p = *tmp;
		free(tmp);
		tmp = NULL;
	}
	profile_free(tmp);
	json_decref(doc);
	return r;
}

int
profile_clone(const struct profile *src, const char *name,
    struct profile **out, struct sp_err *err)
{
	json_t	*doc;
	int	 r;

	*out = NULL;
	if ((doc = profile_to_json(src)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = profile_from_json(name, doc, false, out, err);
	json_decref(doc);
	return r;
}

/* The built-in profiles, as JSON documents. */
static const struct {
	const char	*name;
	const char	*json;
} builtins[] = {
	{ "ROOTCA", "{\"validity_days\":7300,\"ca\":true,\"path_len\":-1,"
	    "\"key_usage\":[\"digitalSignature\",\"keyCertSign\",\"cRLSign\"],"
	    "\"key_algs\":[\"ec-p256\",\"ec-p384\",\"rsa2048\",\"rsa3072\","
	    "\"rsa4096\",\"ed25519\"]}" },
	{ "SUBCA", "{\"validity_days\":3650,\"ca\":true,\"path_len\":0,"
	    "\"key_usage\":[\"digitalSignature\",\"keyCertSign\",\"cRLSign\"],"
	    "\"key_algs\":[\"ec-p256\",\"ec-p384\",\"rsa2048\",\"rsa3072\","
	    "\"rsa4096\",\"ed25519\"]}" },
	{ "ENDUSER", "{\"validity_days\":730,"
	    "\"key_usage\":[\"digitalSignature\",\"nonRepudiation\","
	    "\"keyEncipherment\"],"
	    "\"ext_key_usage\":[\"clientAuth\",\"emailProtection\"],"
	    "\"san_types\":[\"email\",\"dns\"],"
	    "\"key_algs\":[\"ec-p256\",\"ec-p384\",\"rsa2048\",\"rsa3072\","
	    "\"rsa4096\",\"ed25519\"]}" },
	{ "TLS_SERVER", "{\"validity_days\":397,"
	    "\"key_usage\":[\"digitalSignature\",\"keyEncipherment\"],"
	    "\"ext_key_usage\":[\"serverAuth\"],"
	    "\"san_types\":[\"dns\",\"ip\"],\"san_required\":true,"
	    "\"key_algs\":[\"ec-p256\",\"ec-p384\",\"rsa2048\",\"rsa3072\","
	    "\"rsa4096\"]}" },
	{ "TLS_CLIENT", "{\"validity_days\":730,"
	    "\"key_usage\":[\"digitalSignature\",\"keyEncipherment\"],"
	    "\"ext_key_usage\":[\"clientAuth\"],"
	    "\"san_types\":[\"dns\",\"ip\",\"email\",\"uri\"],"
	    "\"key_algs\":[\"ec-p256\",\"ec-p384\",\"rsa2048\",\"rsa3072\","
	    "\"rsa4096\"]}" },
	{ "OCSPSIGNER", "{\"validity_days\":730,"
	    "\"key_usage\":[\"digitalSignature\"],"
	    "\"ext_key_usage\":[\"OCSPSigning\"],\"ocsp_nocheck\":true,"
	    "\"key_algs\":[\"ec-p256\",\"ec-p384\",\"rsa2048\",\"rsa3072\","
	    "\"rsa4096\",\"ed25519\"]}" },
};

size_t
profile_builtin_count(void)
{
	return sizeof(builtins) / sizeof(builtins[0]);
}

int
profile_builtin(size_t i, struct profile **out, struct sp_err *err)
{
	json_t		*doc;
	json_error_t	 je;
	int		 r;

	*out = NULL;
	if (i >= profile_builtin_count())
		return SP_ERR_NOTFOUND;
	if ((doc = json_loads(builtins[i].json, 0, &je)) == NULL)
		return sp_err_set(err, SP_ERR_INTERNAL, "builtin profile %s: "
		    "%s", builtins[i].name, je.text);
	r = profile_from_json(builtins[i].name, doc, true, out, err);
	json_decref(doc);
	return r;
}

/* A DNS name as RFC 5280 4.2.1.6 / RFC 1034 preferred syntax allows. */
static bool
dns_valid(const ASN1_IA5STRING *s)
{
	const unsigned char	*d = ASN1_STRING_get0_data(s);
	int			 n = ASN1_STRING_length(s), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (int i = 0; i < n; i++) {
		unsigned char c = d[i];

		if (c == '.') {
			/* Labels neither start nor end with a hyphen. */
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (c == '-' && label == 0)
			return false;
		if (c == '*' && i == 0 && n > 2 && d[1] == '.') {
			label = 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-') || ++label > 63)
			return false;
	}
	return label > 0 && d[n - 1] != '-';
}

/* Characters (not bytes) in a directory string. */
static int
str_chars(const ASN1_STRING *s)
{
	unsigned char	*u = NULL;
	int		 n, chars = 0;

	if ((n = ASN1_STRING_to_UTF8(&u, s)) < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if ((u[i] & 0xc0) != 0x80)
			chars++;
	OPENSSL_free(u);
	return chars;
}

static int
check_sans(const struct profile *p, const GENERAL_NAMES *gens,
    struct sp_err *err)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME	*gn = sk_GENERAL_NAME_value(gens, i);
		unsigned int		 bit;
		const char		*what;

		switch (gn->type) {
		case GEN_DNS:
			bit = SAN_DNS;
			what = "dns";
			if ((p->san_types & bit) && !dns_valid(gn->d.dNSName))
				return sp_err_set(err, SP_ERR_POLICY, "profile "
				    "%s: RFC 5280 4.2.1.6: malformed DNS name "
				    "in subjectAltName", p->name);
			break;
		case GEN_IPADD:
			bit = SAN_IP;
			what = "ip";
			if (gn->d.iPAddress->length != 4 &&
			    gn->d.iPAddress->length != 16)
				return sp_err_set(err, SP_ERR_POLICY, "profile "
				    "%s: malformed IP address in "
				    "subjectAltName", p->name);
			break;
		case GEN_EMAIL:
			bit = SAN_EMAIL;
			what = "email";
			break;
		case GEN_URI:
			bit = SAN_URI;
			what = "uri";
			break;
		default:
			return sp_err_set(err, SP_ERR_POLICY, "profile %s: "
			    "subjectAltName type %d is not allowed", p->name,
			    gn->type);
		}
		if (!(p->san_types & bit))
			return sp_err_set(err, SP_ERR_POLICY, "profile %s: "
			    "subjectAltName type %s is not allowed (san_types)",
			    p->name, what);
	}
	return 0;
}

/*
 * The limits of "ca create --dn" (dn_parse()) for a CSR's subject, with
 * the profile's values: attribute count, each value text and at most
 * DN_MAX_VALUE bytes, and the length of the RFC 4514 string that is
 * recorded and shown for the certificate.
 */
static int
check_subject(const struct profile *p, const X509_NAME *subj,
    struct sp_err *err)
{
	char	*s;
	size_t	 len;
	int	 n = X509_NAME_entry_count(subj);

	/* Counted first: everything after is linear in this. */
	if (n > p->subject_max_attrs)
		return sp_err_set(err, SP_ERR_POLICY, "profile %s: subject "
		    "has %d attributes, more than %d (subject_max_attrs)",
		    p->name, n, p->subject_max_attrs);
	if (dn_check_values(subj, "CSR: subject", err) != 0)
		return SP_ERR_INVALID;
	if ((s = dn_print(subj)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	len = strlen(s);
	free(s);
	if (len > (size_t)p->subject_max_len)
		return sp_err_set(err, SP_ERR_POLICY, "profile %s: subject is "
		    "%zu bytes as an RFC 4514 string, more than %d "
		    "(subject_max_len)", p->name, len, p->subject_max_len);
	return 0;
}

/* The request is req (csr_parse()) or c (csr_decode()). */
static int
check_request(const struct profile *p, const X509_REQ *req,
    const struct csr *c, int days, GENERAL_NAMES **sans, struct sp_err *err)
{
	const X509_NAME	*subj = req != NULL ? X509_REQ_get_subject_name(req) :
			    csr_get0_subject(c);
	EVP_PKEY	*pk = req != NULL ?
			    X509_REQ_get0_pubkey((X509_REQ *)(uintptr_t)req) :
			    csr_get0_pubkey(c);
	GENERAL_NAMES	*gens = NULL;
	int		 alg, r;

	*sans = NULL;
	if (pk == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "CSR: no public key");
	if ((alg = key_alg_of(pk)) < 0)
		return sp_err_set(err, SP_ERR_POLICY, "profile %s: key algorithm "
		    "or size is not supported (key_algs)", p->name);
	if (!(p->key_algs & (1u << alg)))
		return sp_err_set(err, SP_ERR_POLICY, "profile %s: key "
		    "algorithm %s is not allowed (key_algs)", p->name,
		    key_alg_name(alg));
	if (days < 0 || days > p->validity_days)
		return sp_err_set(err, SP_ERR_POLICY, "profile %s: requested "
		    "validity %d days exceeds the maximum of %d (validity_days)",
		    p->name, days, p->validity_days);
	if ((r = check_subject(p, subj, err)) != 0)
		return r;
	for (int i = 0; i < X509_NAME_entry_count(subj); i++) {
		const X509_NAME_ENTRY	*e = X509_NAME_get_entry(subj, i);
		const ASN1_STRING	*d = X509_NAME_ENTRY_get_data(e);

		/* RFC 5280 appendix A: ub-common-name is 64. */
		if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) ==
		    NID_commonName && str_chars(d) > 64)
			return sp_err_set(err, SP_ERR_POLICY, "profile %s: RFC "
			    "5280 A.1: commonName longer than 64 characters",
			    p->name);
	}
	if ((r = req != NULL ? csr_get_sans(req, &gens, err) :
	    csr_get_requested_sans(c, &gens, err)) != 0)
		return r;
	/* RFC 5280 4.2.1.6: an extension with no name names nothing. */
	if (gens != NULL && sk_GENERAL_NAME_num(gens) == 0) {
		GENERAL_NAMES_free(gens);
		gens = NULL;
	}
	if (gens != NULL && (r = check_sans(p, gens, err)) != 0)
		goto fail;
	if (p->san_required && gens == NULL) {
		r = sp_err_set(err, SP_ERR_POLICY, "profile %s: a "
		    "subjectAltName is required (san_required)", p->name);
		goto fail;
	}
	if (X509_NAME_entry_count(subj) == 0 && gens == NULL) {
		r = sp_err_set(err, SP_ERR_POLICY, "profile %s: RFC 5280 "
		    "4.1.2.6: empty subject needs a subjectAltName", p->name);
		goto fail;
	}
	*sans = gens;
	return 0;
 fail:
	GENERAL_NAMES_free(gens);
	return r;
}

int
profile_check(const struct profile *p, const X509_REQ *req, int days,
    GENERAL_NAMES **sans, struct sp_err *err)
{
	return check_request(p, req, NULL, days, sans, err);
}

int
profile_check_csr(const struct profile *p, const struct csr *c, int days,
    GENERAL_NAMES **sans, struct sp_err *err)
{
	return check_request(p, NULL, c, days, sans, err);
}
