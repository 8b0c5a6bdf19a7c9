/*
 * What the key binding service's files share (kb.c: key bindings;
 * trust.c: the trust store and its CRLs). Not an interface: other modules
 * use kb/kb.h.
 */
#ifndef SP_KB_KB_INT_H
#define SP_KB_KB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "kb/kb.h"

#define FP_HEX		64	/* SHA-256 fingerprint in hex */

/*
 * Lock order: kb->mtx, then the token service, then the store. The token
 * service holds its own lock while it calls the store, so nothing here may
 * call into it from a store callback or inside a store transaction: every
 * token lookup happens before store_txn_begin() and after store_select()
 * returns.
 */
struct kb_service {
	struct store		*st;
	struct tokens		*tokens;
	pthread_mutex_t		 mtx;	/* serialises changes */
	_Atomic uint64_t	 gen;
};
const char	*kb_actor(const char *actor);
void		 kb_bump(struct kb_service *kb);
/* Audit row with details obj (stolen). */
int		 kb_audit(struct kb_service *kb, struct store_txn *tx,
		    const char *event, const char *actor, json_t *obj,
		    struct sp_err *err) SP_WUR;
/* JSON string, null for NULL, a marker if s is not valid UTF-8. */
json_t		*kb_jstr(const char *s);
json_t		*kb_jtime(time_t t);
int		 kb_blob_dup(const void *p, size_t len, unsigned char **out)
		    SP_WUR;
/* store_select() callback: the first column as an int64_t (arg). */
int		 kb_row_count(const struct store_row *row, void *arg);
/* Every trusted certificate (new stack). */
int		 kb_trust_load(struct kb_service *kb, STACK_OF(X509) **out,
		    struct sp_err *err) SP_WUR;

#endif
