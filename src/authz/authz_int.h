/*
 * Shared inside the authz module (authz.c: the cache and the check;
 * authz_roles.c: role administration). Nothing outside src/authz/
 * includes it: authz.h is the interface.
 */
#ifndef SP_AUTHZ_AUTHZ_INT_H
#define SP_AUTHZ_AUTHZ_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "authz/authz.h"

/* Serials longer than this (RFC 5280 allows 20 octets) match by nothing. */
#define SERIAL_MAX_BYTES	AUTHZ_SERIAL_MAX_BYTES
#define SERIAL_HEX_MAX		AUTHZ_SERIAL_HEX_MAX
#define FP_HEX_LEN		64

enum match {
	MATCH_SERIAL,
	MATCH_DN,
	MATCH_CN,
	MATCH_FINGERPRINT,
	MATCH__MAX
};

extern const char *const authz_match_names[MATCH__MAX];

struct member {
	enum match	 match;
	char		*value;
	char		*issuer;	/* serial, dn: "" for a dn of any issuer */
	X509_NAME	*name;		/* issuer (serial) or subject (dn) */
	X509_NAME	*iname;		/* dn: the pinned issuer, or NULL */
};

struct rule {
	char	*path;
	size_t	 len;
	bool	 allow;
	bool	 recursive;
	char	*preset;	/* the presets that made it, "" if none */
};

struct role {
	int64_t		 id;
	char		 name[AUTHZ_ROLE_MAX + 1];
	struct member	*members;
	size_t		 nmembers, cmembers;
	struct rule	*rules;
	size_t		 nrules, crules;
};

/* Immutable once installed. */
struct cache {
	struct role	*roles;		/* sorted by name (strcmp) */
	size_t		 nroles, croles;
	bool		 uses[MATCH__MAX];
};

struct authz {
	struct store		*st;
	pthread_mutex_t		 wlk;	/* serialises changes */
	pthread_rwlock_t	 lk;	/* guards cache */
	struct cache		*cache;
	_Atomic uint64_t	 gen;
};

/* authz.c */
void	authz_cache_free(struct cache *c);
/*
 * Reads every role into a new cache. Run inside a transaction so the
 * three queries see the same rows.
 */
int	authz_cache_load(struct authz *a, struct store_txn *tx, struct cache **out,
	    struct sp_err *err) SP_WUR;
/* Installs c (taken) and moves the generation. */
void	authz_cache_install(struct authz *a, struct cache *c);
int	authz_match_parse(const char *s, enum match *m, struct sp_err *err)
	    SP_WUR;
bool	authz_path_valid(const char *p);
char	*authz_name_cn(const X509_NAME *name);

#endif
