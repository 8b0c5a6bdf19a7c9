#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/certs.h"
#include "crypto/dn.h"
#include "crypto/ids.h"
#include "crypto/key.h"
#include "crypto/x509.h"
#include "kb/kb.h"
#include "kb/kb_int.h"
#include "util/log.h"
#include "util/util.h"

#define KB_TYPE_AUTH	"auth"
#define KB_TYPE_OCSP	"ocsp"	/* signs a VA's OCSP responses */

/* One keybindings row, copied out of the store. */
struct binding {
	char		*name;
	char		*type;
	char		*token;
	char		*key;
	unsigned char	*cert;		/* DER, NULL if none */
	size_t		 certlen;
	unsigned char	*chain;		/* DER certificates in a row */
	size_t		 chainlen;
	int64_t		 created;
};

/* A binding with its certificate parsed and its status worked out. */
struct view {
	X509		*cert;
	STACK_OF(X509)	*chain;
	const char	*status;
	char		 why[256];	/* why it is not "active" */
};

const char *
kb_actor(const char *actor)
{
	return actor != NULL ? actor : "local";
}

void
kb_bump(struct kb_service *kb)
{
	atomic_fetch_add(&kb->gen, 1);
}

/* Audit row with details obj (stolen). */
int
kb_audit(struct kb_service *kb, struct store_txn *tx, const char *event,
    const char *actor, json_t *obj, struct sp_err *err)
{
	char	*d;
	int	 r;

	if (obj == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	d = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(obj);
	if (d == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	r = store_audit_append(kb->st, tx, event, kb_actor(actor), d, err);
	free(d);
	return r;
}

/* JSON string, null for NULL, a marker if s is not valid UTF-8. */
json_t *
kb_jstr(const char *s)
{
	json_t	*v;

	if (s == NULL)
		return json_null();
	if ((v = json_string(s)) == NULL)
		v = json_string("(unprintable)");
	return v;
}

json_t *
kb_jtime(time_t t)
{
	char	buf[32];

	sp_time_fmt(t, buf, sizeof(buf));
	return json_string(buf);
}

int
kb_blob_dup(const void *p, size_t len, unsigned char **out)
{
	*out = NULL;
	if (p == NULL)
		return 0;
	if ((*out = malloc(len ? len : 1)) == NULL)
		return SP_ERR_ALLOC;
	memcpy(*out, p, len);
	return 0;
}

/* --- certificate helpers -------------------------------------------------- */

/* The canonical serial (crypto/ids.h) as a heap string, or NULL. */
static char *
serial_hex(const X509 *x)
{
	char	s[ID_SERIAL_HEX_MAX];

	if (id_serial_of(x, s) != 0)
		return NULL;
	return strdup(s);
}

/*
 * A copy of the SPKI of the binding's key (*spki heap). SP_ERR_NOTFOUND
 * with the reason if the token or key is gone.
 */
static int
binding_key(struct kb_service *kb, const char *token, const char *alias,
    unsigned char **spki, size_t *spkilen, struct sp_err *err)
{
	enum key_alg	alg;
	int		r;

	*spki = NULL;
	*spkilen = 0;
	if (!tokens_has(kb->tokens, token))
		return sp_err_set(err, SP_ERR_NOTFOUND, "no crypto token "
		    "named \"%.64s\"", token);
	if ((r = tokens_key_find(kb->tokens, token, alias, &alg, spki,
	    spkilen, NULL)) == SP_ERR_ALLOC)
		return sp_err_set(err, r, "out of memory");
	if (r != 0)
		return sp_err_set(err, SP_ERR_NOTFOUND, "token %s has no key "
		    "\"%.64s\"", token, alias);
	return 0;
}

/* --- rows ----------------------------------------------------------------- */

static void
binding_cleanup(struct binding *b)
{
	free(b->name);
	free(b->type);
	free(b->token);
	free(b->key);
	free(b->cert);
	free(b->chain);
	memset(b, 0, sizeof(*b));
}

struct rows {
	struct binding	*b;
	size_t		 n;
};

static void
rows_free(struct rows *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		binding_cleanup(&rs->b[i]);
	free(rs->b);
	rs->b = NULL;
	rs->n = 0;
}

/* Store callback: copies one keybindings row. No CA calls here. */
static int
row_binding(const struct store_row *row, void *arg)
{
	struct rows	*rs = arg;
	struct binding	*nb, *b;
	const void	*blob;
	size_t		 len;

	if (rs->n >= KB_BINDINGS_MAX + 1)
		return 0;
	if ((nb = realloc(rs->b, (rs->n + 1) * sizeof(*nb))) == NULL)
		return SP_ERR_ALLOC;
	rs->b = nb;
	b = &rs->b[rs->n];
	memset(b, 0, sizeof(*b));
	rs->n++;
	if ((b->name = strdup(store_row_text(row, 0))) == NULL ||
	    (b->type = strdup(store_row_text(row, 1))) == NULL ||
	    (b->token = strdup(store_row_text(row, 2))) == NULL ||
	    (b->key = strdup(store_row_text(row, 3))) == NULL)
		return SP_ERR_ALLOC;
	if (!store_row_null(row, 4)) {
		blob = store_row_blob(row, 4, &len);
		if (kb_blob_dup(blob ? blob : "", len, &b->cert) != 0)
			return SP_ERR_ALLOC;
		b->certlen = len;
	}
	if (!store_row_null(row, 5)) {
		blob = store_row_blob(row, 5, &len);
		if (kb_blob_dup(blob ? blob : "", len, &b->chain) != 0)
			return SP_ERR_ALLOC;
		b->chainlen = len;
	}
	b->created = store_row_int(row, 6);
	return 0;
}

#define BINDING_COLS \
	"SELECT name, type, token, key_alias, cert, chain, created " \
	"FROM keybindings"

/* Every binding (name NULL) or the one named name (rs->n is 0 if none). */
static int
rows_load(struct kb_service *kb, const char *name, struct rows *rs,
    struct sp_err *err)
{
	int	r;

	rs->b = NULL;
	rs->n = 0;
	if (name == NULL)
		r = store_select(kb->st, NULL, row_binding, rs, err,
		    BINDING_COLS " ORDER BY name", "");
	else
		r = store_select(kb->st, NULL, row_binding, rs, err,
		    BINDING_COLS " WHERE name = ?", "s", name);
	if (r == SP_ERR_ALLOC)
		sp_err_set(err, r, "out of memory");
	if (r != 0)
		rows_free(rs);
	return r;
}

/* One binding; SP_ERR_NOTFOUND if none. */
static int
binding_get(struct kb_service *kb, const char *name, struct rows *rs,
    struct sp_err *err)
{
	int	r;

	if (name == NULL || !sp_name_valid(name, KB_NAME_MAX))
		return sp_err_set(err, SP_ERR_NOTFOUND, "no key binding named "
		    "\"%.64s\"", name ? name : "");
	if ((r = rows_load(kb, name, rs, err)) != 0)
		return r;
	if (rs->n == 0)
		return sp_err_set(err, SP_ERR_NOTFOUND, "no key binding named "
		    "\"%s\"", name);
	return 0;
}

int
kb_row_count(const struct store_row *row, void *arg)
{
	*(int64_t *)arg = store_row_int(row, 0);
	return 0;
}

/* --- status and JSON ------------------------------------------------------ */

static void
view_cleanup(struct view *v)
{
	X509_free(v->cert);
	sk_X509_pop_free(v->chain, X509_free);
	memset(v, 0, sizeof(*v));
}

/*
 * Works out a binding's status (kb.h lists them). Takes token service locks:
 * never call from a store callback or inside a transaction.
 */
static const char *
binding_status(struct kb_service *kb, const struct binding *b, const X509 *x,
    char *why, size_t whysz)
{
	struct sp_err	 e = { 0 };
	unsigned char	*spki = NULL;
	size_t		 spkilen;
	time_t		 now = sp_now();
	char		 t[32];
	const char	*st = "active";

	why[0] = '\0';
	if (binding_key(kb, b->token, b->key, &spki, &spkilen, &e) != 0) {
		snprintf(why, whysz, "%s", e.msg);
		st = "key_missing";
	} else if (x == NULL) {
		snprintf(why, whysz, "no certificate installed");
		st = "no_certificate";
	} else if (!certs_spki_matches(x, spki, spkilen)) {
		snprintf(why, whysz, "key %s in token %s is no longer the "
		    "certificate's key", b->key, b->token);
		st = "key_missing";
	} else if (certs_time(X509_get0_notAfter(x)) < now) {
		sp_time_fmt(certs_time(X509_get0_notAfter(x)), t, sizeof(t));
		snprintf(why, whysz, "certificate expired on %s", t);
		st = "expired";
	} else if (certs_time(X509_get0_notBefore(x)) > now) {
		sp_time_fmt(certs_time(X509_get0_notBefore(x)), t, sizeof(t));
		snprintf(why, whysz, "certificate not valid before %s", t);
		st = "not_yet_valid";
	} else if (!tokens_is_active(kb->tokens, b->token)) {
		snprintf(why, whysz, "token %s is not active", b->token);
		st = "token_inactive";
	}
	free(spki);
	return st;
}

/* Parses the stored certificate and chain and works out the status. */
static void
view_load(struct kb_service *kb, const struct binding *b, struct view *v)
{
	const unsigned char	*p = b->cert;

	memset(v, 0, sizeof(*v));
	if (b->cert != NULL) {
		v->cert = d2i_X509(NULL, &p, (long)b->certlen);
		if (v->cert == NULL || p != b->cert + b->certlen) {
			log_warnx("key binding %s: stored certificate is "
			    "corrupt; treating the binding as without one",
			    b->name);
			X509_free(v->cert);
			v->cert = NULL;
		}
		ERR_clear_error();
	}
	if (v->cert != NULL && b->chain != NULL &&
	    certs_split(b->chain, b->chainlen, &v->chain) != 0)
		log_warnx("key binding %s: stored chain is corrupt; ignored",
		    b->name);
	v->status = binding_status(kb, b, v->cert, v->why, sizeof(v->why));
}

static json_t *
binding_json(const struct binding *b, const struct view *v)
{
	json_t	*o;
	char	*subj = NULL, *iss = NULL, *serial = NULL;
	char	 fp[FP_HEX + 1];
	int	 bad = 0;

	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "name", b->name, "type",
	    b->type, "token", b->token, "key", b->key, "status", v->status,
	    "created", kb_jtime((time_t)b->created));
	if (o == NULL)
		return NULL;
	if (v->cert == NULL) {
		bad |= json_object_set_new(o, "subject", json_null());
		bad |= json_object_set_new(o, "issuer", json_null());
		bad |= json_object_set_new(o, "serial", json_null());
		bad |= json_object_set_new(o, "not_before", json_null());
		bad |= json_object_set_new(o, "not_after", json_null());
		bad |= json_object_set_new(o, "fingerprint", json_null());
		bad |= json_object_set_new(o, "chain_length", json_integer(0));
	} else {
		subj = dn_print(X509_get_subject_name(v->cert));
		iss = dn_print(X509_get_issuer_name(v->cert));
		serial = serial_hex(v->cert);
		cert_fingerprint(b->cert, b->certlen, fp);
		bad |= json_object_set_new(o, "subject", kb_jstr(subj));
		bad |= json_object_set_new(o, "issuer", kb_jstr(iss));
		bad |= json_object_set_new(o, "serial", kb_jstr(serial));
		bad |= json_object_set_new(o, "not_before",
		    kb_jtime(certs_time(X509_get0_notBefore(v->cert))));
		bad |= json_object_set_new(o, "not_after",
		    kb_jtime(certs_time(X509_get0_notAfter(v->cert))));
		bad |= json_object_set_new(o, "fingerprint", json_string(fp));
		bad |= json_object_set_new(o, "chain_length",
		    json_integer(v->chain ? sk_X509_num(v->chain) : 0));
	}
	free(subj);
	free(iss);
	free(serial);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* PEM of the certificate and its chain (heap). */
static int
view_pem(const struct view *v, char **out, struct sp_err *err)
{
	BIO	*bio;
	BUF_MEM	*bm;
	int	 r = 0;

	*out = NULL;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if (!PEM_write_bio_X509(bio, v->cert)) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "PEM");
		goto out;
	}
	for (int i = 0; v->chain != NULL && i < sk_X509_num(v->chain); i++)
		if (!PEM_write_bio_X509(bio, sk_X509_value(v->chain, i))) {
			r = sp_err_ossl(err, SP_ERR_CRYPTO, "PEM");
			goto out;
		}
	BIO_get_mem_ptr(bio, &bm);
	if ((*out = strndup(bm->data, bm->length)) == NULL)
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
 out:
	BIO_free(bio);
	return r;
}

/* The binding named name as JSON, with "pem" if pem. */
static int
binding_show(struct kb_service *kb, const char *name, bool pem, json_t **out,
    struct sp_err *err)
{
	struct rows	 rs = { 0 };
	struct view	 v = { 0 };
	json_t		*o = NULL;
	char		*s = NULL;
	int		 r;

	*out = NULL;
	if ((r = binding_get(kb, name, &rs, err)) != 0)
		goto out;
	view_load(kb, &rs.b[0], &v);
	if ((o = binding_json(&rs.b[0], &v)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	if (pem && v.cert != NULL) {
		if ((r = view_pem(&v, &s, err)) != 0)
			goto out;
		if (json_object_set_new(o, "pem", json_string(s)) != 0) {
			r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
			goto out;
		}
	}
	*out = o;
	o = NULL;
 out:
	free(s);
	json_decref(o);
	view_cleanup(&v);
	rows_free(&rs);
	return r;
}

/* --- service -------------------------------------------------------------- */

int
kb_open(struct store *st, struct tokens *tokens, struct kb_service **out,
    struct sp_err *err)
{
	struct kb_service	*kb;
	struct rows		 rs = { 0 };
	struct sp_err		 e = { 0 };
	int			 r;

	*out = NULL;
	if (st == NULL || tokens == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "key bindings need a "
		    "store and a token service");
	if (store_schema_version(st) < 2)
		return sp_err_set(err, SP_ERR_DB, "database schema %d has no "
		    "key binding tables", store_schema_version(st));
	if ((kb = calloc(1, sizeof(*kb))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	if (pthread_mutex_init(&kb->mtx, NULL) != 0) {
		free(kb);
		return sp_err_set(err, SP_ERR_INTERNAL, "mutex");
	}
	kb->st = st;
	kb->tokens = tokens;
	atomic_init(&kb->gen, 1);
	/* Each binding claims its key; rows first, then the token service. */
	if ((r = store_select(st, NULL, row_binding, &rs, err, BINDING_COLS,
	    "")) != 0) {
		rows_free(&rs);
		kb_free(kb);
		return r;
	}
	for (size_t i = 0; i < rs.n; i++) {
		sp_err_clear(&e);
		/* A database from before the key registry may hold a conflict. */
		if (tokens_key_claim_stored(tokens, rs.b[i].token, rs.b[i].key,
		    TOKENS_USE_KB, rs.b[i].name, &e) < 0)
			log_warnx("key binding %s: %s", rs.b[i].name, e.msg);
	}
	rows_free(&rs);
	*out = kb;
	return 0;
}

void
kb_free(struct kb_service *kb)
{
	if (kb == NULL)
		return;
	pthread_mutex_destroy(&kb->mtx);
	free(kb);
}

uint64_t
kb_generation(struct kb_service *kb)
{
	return atomic_load(&kb->gen);
}

/* --- key bindings --------------------------------------------------------- */

int
kb_create(struct kb_service *kb, const char *name, const char *token,
    const char *key, const char *type, const char *actor, json_t **out,
    struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct binding	 b = { 0 };
	struct view	 v = { 0 };
	unsigned char	*spki = NULL;
	size_t		 spkilen;
	int64_t		 count = 0;
	bool		 locked = false, claimed = false;
	int		 r;

	*out = NULL;
	if (name == NULL || !sp_name_valid(name, KB_NAME_MAX))
		return sp_err_set(err, SP_ERR_INVALID, "a key binding name is "
		    "1..%d characters of [A-Za-z0-9_.-], not \".\" or "
		    "\"..\"", KB_NAME_MAX);
	if (type == NULL)
		type = KB_TYPE_AUTH;
	else if (strcmp(type, KB_TYPE_AUTH) != 0 &&
	    strcmp(type, KB_TYPE_OCSP) != 0)
		return sp_err_set(err, SP_ERR_INVALID, "unknown key binding "
		    "type \"%.32s\" (known: auth, ocsp)", type);
	if (token == NULL || key == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "a key binding needs a "
		    "token and a key");
	if ((r = binding_key(kb, token, key, &spki, &spkilen, err)) != 0)
		goto out;
	/* The key registry: never a CA's key (nor later its own CA's). */
	if ((r = tokens_key_claim(kb->tokens, token, key, TOKENS_USE_KB, name,
	    err)) < 0)
		goto out;
	claimed = r == 1;

	pthread_mutex_lock(&kb->mtx);
	locked = true;
	if ((r = store_select(kb->st, NULL, kb_row_count, &count, err,
	    "SELECT count(*) FROM keybindings", "")) != 0)
		goto out;
	if (count >= KB_BINDINGS_MAX) {
		r = sp_err_set(err, SP_ERR_LIMIT, "at most %d key bindings",
		    KB_BINDINGS_MAX);
		goto out;
	}
	if ((r = store_txn_begin(kb->st, &tx, err)) != 0)
		goto out;
	r = store_exec(kb->st, tx, NULL, err, "INSERT INTO keybindings (name, "
	    "type, token, key_alias, cert, chain, created) VALUES "
	    "(?, ?, ?, ?, NULL, NULL, ?)", "ssssi", name, type, token, key,
	    (int64_t)sp_now());
	if (r == SP_ERR_EXISTS) {
		sp_err_clear(err);	/* replace the database's wording */
		sp_err_set(err, r, "a key binding named %s already exists",
		    name);
	}
	if (r >= 0)
		r = kb_audit(kb, tx, "keybinding.create", actor, json_pack(
		    "{s:s,s:s,s:s,s:s}", "name", name, "type", type, "token",
		    token, "key", key), err);
	if (r != 0) {
		store_txn_rollback(tx);
		goto out;
	}
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
	claimed = false;	/* the binding keeps its key */
	kb_bump(kb);
	pthread_mutex_unlock(&kb->mtx);
	locked = false;

	b.name = (char *)(uintptr_t)name;
	b.type = (char *)(uintptr_t)type;
	b.token = (char *)(uintptr_t)token;
	b.key = (char *)(uintptr_t)key;
	b.created = sp_now();
	v.status = binding_status(kb, &b, NULL, v.why, sizeof(v.why));
	if ((*out = binding_json(&b, &v)) == NULL)
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
 out:
	if (claimed)
		tokens_key_release(kb->tokens, token, key, TOKENS_USE_KB, name);
	if (locked)
		pthread_mutex_unlock(&kb->mtx);
	free(spki);
	return r;
}

/*
 * A DNS name in RFC 1034 preferred syntax as RFC 1123 relaxed it: labels
 * of letters, digits and inner hyphens, 1..63 characters, 253 in all. No
 * wildcards: a node's identity names one host.
 */
static bool
dns_valid(const char *s)
{
	size_t	n = strlen(s), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char	c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-') || ++label > 63)
			return false;
		if (c == '-' && label == 1)
			return false;
	}
	return label > 0 && s[n - 1] != '-';
}

/* One "DNS:name" or "IP:addr" as a GENERAL_NAME (*out). */
static int
san_parse(const char *s, GENERAL_NAME **out, struct sp_err *err)
{
	GENERAL_NAME		*gn = NULL;
	ASN1_STRING		*v = NULL;
	unsigned char		 ip[16];
	int			 iplen = 0;

	*out = NULL;
	if (s != NULL && strncasecmp(s, "DNS:", 4) == 0) {
		if (!dns_valid(s + 4))
			return sp_err_set(err, SP_ERR_INVALID, "subjectAltName "
			    "\"%.80s\": not a DNS host name (RFC 1034 "
			    "preferred syntax, no wildcards)", s);
		if ((v = ASN1_IA5STRING_new()) == NULL ||
		    !ASN1_STRING_set(v, s + 4, (int)strlen(s + 4)))
			goto oom;
		if ((gn = GENERAL_NAME_new()) == NULL)
			goto oom;
		GENERAL_NAME_set0_value(gn, GEN_DNS, v);
	} else if (s != NULL && strncasecmp(s, "IP:", 3) == 0) {
		if (inet_pton(AF_INET, s + 3, ip) == 1)
			iplen = 4;
		else if (inet_pton(AF_INET6, s + 3, ip) == 1)
			iplen = 16;
		else
			return sp_err_set(err, SP_ERR_INVALID, "subjectAltName "
			    "\"%.80s\": not an IPv4 or IPv6 address", s);
		if ((v = ASN1_OCTET_STRING_new()) == NULL ||
		    !ASN1_OCTET_STRING_set(v, ip, iplen))
			goto oom;
		if ((gn = GENERAL_NAME_new()) == NULL)
			goto oom;
		GENERAL_NAME_set0_value(gn, GEN_IPADD, v);
	} else
		return sp_err_set(err, SP_ERR_INVALID, "subjectAltName "
		    "\"%.80s\": write DNS:name or IP:address", s ? s : "");
	*out = gn;
	return 0;
 oom:
	ASN1_STRING_free(v);
	ERR_clear_error();
	return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
}

static int
sans_parse(const char *const *sans, size_t n, GENERAL_NAMES **out,
    struct sp_err *err)
{
	GENERAL_NAMES	*gens = NULL;
	GENERAL_NAME	*gn = NULL;
	int		 r = 0;

	*out = NULL;
	if (n == 0)
		return 0;
	if (sans == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "no subjectAltNames");
	if (n > CERT_MAX_SANS)
		return sp_err_set(err, SP_ERR_LIMIT, "at most %d "
		    "subjectAltNames", CERT_MAX_SANS);
	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if ((r = san_parse(sans[i], &gn, err)) != 0)
			goto out;
		for (int j = 0; j < sk_GENERAL_NAME_num(gens); j++)
			if (GENERAL_NAME_cmp(gn, sk_GENERAL_NAME_value(gens,
			    j)) == 0) {
				r = sp_err_set(err, SP_ERR_INVALID, "duplicate "
				    "subjectAltName \"%.80s\"", sans[i]);
				goto out;
			}
		if (!sk_GENERAL_NAME_push(gens, gn)) {
			r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
			goto out;
		}
		gn = NULL;
	}
	*out = gens;
	gens = NULL;
 out:
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	return r;
}

/* The unsigned request: subject, public key, subjectAltName. */
static int
csr_build(const X509_NAME *subj, const unsigned char *spki, size_t spkilen,
    GENERAL_NAMES *gens, X509_REQ **out, struct sp_err *err)
{
	STACK_OF(X509_EXTENSION)	*exts = NULL;
	X509_REQ			*req = NULL;
	EVP_PKEY			*pub = NULL;
	const unsigned char		*p = spki;
	int				 r = SP_ERR_CRYPTO;

	*out = NULL;
	if ((pub = d2i_PUBKEY(NULL, &p, (long)spkilen)) == NULL) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "decoding the public key");
		goto out;
	}
	if ((req = X509_REQ_new()) == NULL ||
	    !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, subj) ||
	    !X509_REQ_set_pubkey(req, pub)) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "building the request");
		goto out;
	}
	/* The subject is never empty here, so the SAN need not be critical. */
	if (gens != NULL &&
	    (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) != 1 || !X509_REQ_add_extensions(req, exts))) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "subjectAltName");
		goto out;
	}
	*out = req;
	req = NULL;
	r = 0;
 out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	EVP_PKEY_free(pub);
	X509_REQ_free(req);
	return r;
}

int
kb_csr(struct kb_service *kb, const char *name, const char *dn,
    const char *const *sans, size_t nsans, const char *actor, char **pem,
    struct sp_err *err)
{
	struct rows	 rs = { 0 };
	X509_NAME	*subj = NULL;
	GENERAL_NAMES	*gens = NULL;
	X509_REQ	*req = NULL;
	EVP_MD_CTX	*md = NULL;
	BIO		*bio = NULL;
	BUF_MEM		*bm;
	unsigned char	*spki = NULL;
	size_t		 spkilen;
	char		 cn[KB_NAME_MAX + 4], *subjs = NULL, *s = NULL;
	json_t		*jsans = NULL;
	int		 r;

	*pem = NULL;
	if ((r = binding_get(kb, name, &rs, err)) != 0 ||
	    (r = binding_key(kb, rs.b[0].token, rs.b[0].key, &spki,
	    &spkilen, err)) != 0)
		goto out;
	if (!tokens_is_active(kb->tokens, rs.b[0].token)) {
		r = sp_err_set(err, SP_ERR_STATE, "token %s is not active: "
		    "activate it to sign the request", rs.b[0].token);
		goto out;
	}
	if (dn == NULL) {
		snprintf(cn, sizeof(cn), "CN=%s", rs.b[0].name);
		dn = cn;
	}
	if ((r = dn_parse(dn, &subj, err)) != 0 ||
	    (r = sans_parse(sans, nsans, &gens, err)) != 0 ||
	    (r = csr_build(subj, spki, spkilen, gens, &req, err)) != 0 ||
	    (r = tokens_sign_init(kb->tokens, rs.b[0].token, rs.b[0].key,
	    &md, err)) != 0)
		goto out;
	/* Returns the signature's length, or 0 on failure. */
	if (X509_REQ_sign_ctx(req, md) <= 0) {
		r = sp_err_ossl(err, SP_ERR_CRYPTO, "signing the request");
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_REQ(bio, req)) {
		r = sp_err_ossl(err, SP_ERR_ALLOC, "PEM");
		goto out;
	}
	BIO_get_mem_ptr(bio, &bm);
	if ((s = strndup(bm->data, bm->length)) == NULL ||
	    (subjs = dn_print(subj)) == NULL ||
	    (jsans = json_array()) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nsans; i++)
		json_array_append_new(jsans, json_string(sans[i]));
	if ((r = kb_audit(kb, NULL, "keybinding.csr", actor, json_pack("{s:s,s:s,s:O}",
	    "name", rs.b[0].name, "subject", subjs, "sans", jsans), err)) != 0)
		goto out;
	*pem = s;
	s = NULL;
 out:
	ERR_clear_error();
	json_decref(jsans);
	free(s);
	free(subjs);
	free(spki);
	BIO_free(bio);
	EVP_MD_CTX_free(md);
	X509_REQ_free(req);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(subj);
	rows_free(&rs);
	return r;
}

/* --- installing certificates ---------------------------------------------- */

/*
 * Verifies leaf with certs[1..] as its chain: the chain's self-signed
 * certificates and the trust store are anchors, the rest untrusted
 * intermediates. *path is the verified chain without the leaf.
 */
static int
chain_verify(struct kb_service *kb, X509 *leaf, STACK_OF(X509) *certs,
    STACK_OF(X509) **path, struct sp_err *err)
{
	X509_STORE	*store = NULL;
	X509_STORE_CTX	*ctx = NULL;
	STACK_OF(X509)	*untrusted = NULL, *anchors = NULL, *p = NULL;
	int		 r, v;

	*path = NULL;
	if ((r = kb_trust_load(kb, &anchors, err)) != 0)
		return r;
	r = SP_ERR_ALLOC;
	if ((store = X509_STORE_new()) == NULL ||
	    (untrusted = sk_X509_new_null()) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL) {
		sp_err_set(err, r, "out of memory");
		goto out;
	}
	for (int i = 1; i < sk_X509_num(certs); i++) {
		X509	*c = sk_X509_value(certs, i);
		int	 ok;

		/* Anchors must really be self-signed, signature included. */
		if (X509_self_signed(c, 1) == 1)
			ok = X509_STORE_add_cert(store, c);
		else
			ok = sk_X509_push(untrusted, c) > 0;
		if (!ok) {
			sp_err_ossl(err, r, "chain");
			goto out;
		}
	}
	for (int i = 0; i < sk_X509_num(anchors); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(anchors, i))) {
			sp_err_ossl(err, r, "trust store");
			goto out;
		}
	/* As in kb_trust_store(): a trusted intermediate is an anchor. */
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	if (!X509_STORE_CTX_init(ctx, store, leaf, untrusted)) {
		sp_err_ossl(err, r, "X509_STORE_CTX_init");
		goto out;
	}
	X509_STORE_CTX_set_time(ctx, 0, sp_now());
	/* Returns 1 if the chain verifies, 0 if not, -1 on internal error. */
	if ((v = X509_verify_cert(ctx)) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);

		r = sp_err_set(err, v == 0 ? SP_ERR_POLICY : SP_ERR_CRYPTO,
		    "the chain does not verify the certificate: %s (give the "
		    "chain up to a self-signed root, or trust its root)",
		    X509_verify_cert_error_string(e));
		goto out;
	}
	if ((p = X509_STORE_CTX_get1_chain(ctx)) == NULL) {
		sp_err_set(err, r, "out of memory");
		goto out;
	}
	X509_free(sk_X509_shift(p));	/* the leaf */
	*path = p;
	r = 0;
 out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_free(untrusted);	/* borrowed from certs */
	sk_X509_pop_free(anchors, X509_free);
	return r;
}

/* Refuses a leaf that is malformed or outside its validity period. */
static int
check_validity(X509 *x, const char *what, struct sp_err *err)
{
	time_t	nb = certs_time(X509_get0_notBefore(x));
	time_t	na = certs_time(X509_get0_notAfter(x));
	time_t	now = sp_now();
	char	t[32];

	if (X509_get_extension_flags(x) & EXFLAG_INVALID)
		return sp_err_set(err, SP_ERR_INVALID, "%s has malformed "
		    "extensions", what);
	if (na == 0 || nb == 0)
		return sp_err_set(err, SP_ERR_INVALID, "%s has an unreadable "
		    "validity period", what);
	if (na < now) {
		sp_time_fmt(na, t, sizeof(t));
		return sp_err_set(err, SP_ERR_POLICY, "%s expired on %s",
		    what, t);
	}
	if (nb > now) {
		sp_time_fmt(nb, t, sizeof(t));
		return sp_err_set(err, SP_ERR_POLICY, "%s is not valid before "
		    "%s", what, t);
	}
	return 0;
}

int
kb_install_cert(struct kb_service *kb, const char *name,
    const unsigned char *cert, size_t len, const unsigned char *chain,
    size_t chainlen, const char *actor, json_t **out, struct sp_err *err)
{
	struct store_txn	*tx = NULL;
	struct rows	 rs = { 0 };
	STACK_OF(X509)	*in = NULL, *extra = NULL, *path = NULL;
	X509		*leaf;
	unsigned char	*spki = NULL, *der = NULL, *cder = NULL;
	size_t		 spkilen, derlen, cderlen;
	char		 fp[FP_HEX + 1], na[32], *subj = NULL, *iss = NULL;
	char		*serial = NULL;
	bool		 locked = false;
	int		 r;

	*out = NULL;
	if ((r = certs_parse(cert, len, KB_FILE_MAX, 1 + KB_CHAIN_MAX, "certificate", &in,
	    err)) != 0)
		goto out;
	if (chain != NULL && chainlen > 0) {
		if ((r = certs_parse(chain, chainlen, KB_FILE_MAX, KB_CHAIN_MAX, "chain",
		    &extra, err)) != 0)
			goto out;
		while (sk_X509_num(extra) > 0) {
			X509 *x = sk_X509_shift(extra);

			if (!sk_X509_push(in, x)) {
				X509_free(x);
				r = sp_err_set(err, SP_ERR_ALLOC, "out of "
				    "memory");
				goto out;
			}
		}
	}
	if (sk_X509_num(in) - 1 > KB_CHAIN_MAX) {
		r = sp_err_set(err, SP_ERR_LIMIT, "at most %d chain "
		    "certificates", KB_CHAIN_MAX);
		goto out;
	}
	leaf = sk_X509_value(in, 0);

	pthread_mutex_lock(&kb->mtx);
	locked = true;
	if ((r = binding_get(kb, name, &rs, err)) != 0 ||
	    (r = binding_key(kb, rs.b[0].token, rs.b[0].key, &spki,
	    &spkilen, err)) != 0)
		goto out;
	if (!certs_spki_matches(leaf, spki, spkilen)) {
		r = sp_err_set(err, SP_ERR_POLICY, "the certificate is for "
		    "another key: its public key is not key %s of token %s",
		    rs.b[0].key, rs.b[0].token);
		goto out;
	}
	if ((r = check_validity(leaf, "the certificate", err)) != 0)
		goto out;
	/* An OCSP signer's certificate must say so (RFC 6960 4.2.2.2). */
	if (strcmp(rs.b[0].type, KB_TYPE_OCSP) == 0 &&
	    ((X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) == 0 ||
	    (X509_get_extended_key_usage(leaf) & XKU_OCSP_SIGN) == 0)) {
		r = sp_err_set(err, SP_ERR_POLICY, "an ocsp key binding needs "
		    "a certificate with extended key usage OCSPSigning "
		    "(profile OCSPSIGNER)");
		goto out;
	}
	if (sk_X509_num(in) > 1 &&
	    (r = chain_verify(kb, leaf, in, &path, err)) != 0)
		goto out;
	if ((r = certs_der(leaf, &der, &derlen, err)) != 0 ||
	    (r = certs_join(path, &cder, &cderlen, err)) != 0)
		goto out;
	cert_fingerprint(der, derlen, fp);
	sp_time_fmt(certs_time(X509_get0_notAfter(leaf)), na, sizeof(na));
	if ((subj = dn_print(X509_get_subject_name(leaf))) == NULL ||
	    (iss = dn_print(X509_get_issuer_name(leaf))) == NULL ||
	    (serial = serial_hex(leaf)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}

	if ((r = store_txn_begin(kb->st, &tx, err)) != 0)
		goto out;
	r = store_exec(kb->st, tx, NULL, err, "UPDATE keybindings SET cert = ?, "
	    "chain = ? WHERE name = ?", "bbs", der, derlen, cder, cderlen,
	    rs.b[0].name);
	if (r == 0)
		r = sp_err_set(err, SP_ERR_NOTFOUND, "no key binding named "
		    "\"%s\"", rs.b[0].name);
	if (r > 0)
		r = kb_audit(kb, tx, "keybinding.install_cert", actor, json_pack(
		    "{s:s,s:s,s:s,s:s,s:s,s:s,s:i}", "name", rs.b[0].name,
		    "subject", subj, "issuer", iss, "serial", serial,
		    "fingerprint", fp, "not_after", na, "chain_length",
		    path ? sk_X509_num(path) : 0), err);
	if (r != 0) {
		store_txn_rollback(tx);
		goto out;
	}
	if ((r = store_txn_commit(tx, err)) != 0)
		goto out;
	kb_bump(kb);
	pthread_mutex_unlock(&kb->mtx);
	locked = false;
	log_info("key binding %s: installed certificate %s (serial %s)",
	    rs.b[0].name, subj, serial);
	r = binding_show(kb, rs.b[0].name, false, out, err);
 out:
	if (locked)
		pthread_mutex_unlock(&kb->mtx);
	free(subj);
	free(iss);
	free(serial);
	free(spki);
	OPENSSL_free(der);
	free(cder);
	sk_X509_pop_free(in, X509_free);
	sk_X509_pop_free(extra, X509_free);
	sk_X509_pop_free(path, X509_free);
	rows_free(&rs);
	return r;
}

json_t *
kb_list(struct kb_service *kb)
{
	struct rows	 rs = { 0 };
	struct view	 v;
	json_t		*arr, *o;

	if (rows_load(kb, NULL, &rs, NULL) != 0)
		return NULL;
	if ((arr = json_array()) == NULL)
		goto out;
	for (size_t i = 0; i < rs.n; i++) {
		view_load(kb, &rs.b[i], &v);
		o = binding_json(&rs.b[i], &v);
		view_cleanup(&v);
		if (json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			arr = NULL;
			break;
		}
	}
 out:
	rows_free(&rs);
	return arr;
}

int
kb_show(struct kb_service *kb, const char *name, json_t **out,
    struct sp_err *err)
{
	return binding_show(kb, name, true, out, err);
}

int
kb_identity(struct kb_service *kb, const char *name, X509 **cert,
    STACK_OF(X509) **chain, EVP_PKEY **key, struct sp_err *err)
{
	struct rows	 rs = { 0 };
	struct view	 v = { 0 };
	EVP_PKEY	*pk = NULL;
	int		 r;

	*cert = NULL;
	*chain = NULL;
	*key = NULL;
	if ((r = binding_get(kb, name, &rs, err)) != 0)
		goto out;
	view_load(kb, &rs.b[0], &v);
	if (strcmp(v.status, "active") != 0) {
		r = sp_err_set(err, SP_ERR_STATE, "key binding %s is not "
		    "usable (%s): %s", rs.b[0].name, v.status, v.why);
		goto out;
	}
	if (!tokens_has(kb->tokens, rs.b[0].token)) {
		r = sp_err_set(err, SP_ERR_STATE, "token %s is gone",
		    rs.b[0].token);
		goto out;
	}
	if ((r = tokens_key_get1_tls(kb->tokens, rs.b[0].token, rs.b[0].key,
	    &pk, err)) != 0) {
		if (r == SP_ERR_NOTFOUND)
			r = SP_ERR_STATE;	/* the binding exists */
		goto out;
	}
	/* The alias could have been replaced since the status was made. */
	if (X509_check_private_key(v.cert, pk) != 1) {
		ERR_clear_error();
		r = sp_err_set(err, SP_ERR_STATE, "key binding %s: key %s is "
		    "not the certificate's key", rs.b[0].name, rs.b[0].key);
		goto out;
	}
	if (v.chain == NULL && (v.chain = sk_X509_new_null()) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	*cert = v.cert;
	*chain = v.chain;
	*key = pk;
	v.cert = NULL;
	v.chain = NULL;
	pk = NULL;
 out:
	EVP_PKEY_free(pk);
	view_cleanup(&v);
	rows_free(&rs);
	return r;
}
