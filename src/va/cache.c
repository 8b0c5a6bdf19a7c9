#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "va/va_int.h"

#define SHARDS		64		/* power of two */
#define DEFAULT_MAX	262144		/* (issuer, serial) entries */

struct centry {
	int64_t		 issuer;
	char		 serial[ID_SERIAL_HEX_MAX];
	struct va_resp	*v[OCSP_HASH__MAX];
	struct centry	*hnext;			/* bucket chain */
	struct centry	*prev, *next;		/* recency: head is newest */
};

struct shard {
	pthread_mutex_t	  mtx;
	struct centry	**buckets;
	size_t		  nbuckets;		/* power of two */
	struct centry	 *head, *tail;
	size_t		  count, max;
	uint64_t	  inval_gen;		/* last invalidation here */
};

struct va_cache {
	struct shard	shards[SHARDS];
	atomic_uint_fast64_t gen;
};

struct va_resp *
va_resp_new(const unsigned char *der, size_t len, time_t refresh_at,
    time_t expires)
{
	struct va_resp	*r;

	if ((r = malloc(sizeof(*r) + len)) == NULL)
		return NULL;
	atomic_init(&r->refs, 1);
	atomic_init(&r->refreshing, false);
	r->refresh_at = refresh_at;
	r->expires = expires;
	r->lm[0] = '\0';
	r->len = len;
	memcpy(r->der, der, len);
	return r;
}

void
va_resp_ref(struct va_resp *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void
va_resp_unref(struct va_resp *r)
{
	if (r != NULL && atomic_fetch_sub_explicit(&r->refs, 1,
	    memory_order_acq_rel) == 1)
		free(r);
}

/* FNV-1a over the issuer id and the serial. */
static uint64_t
key_hash(int64_t issuer, const char *serial)
{
	uint64_t	h = 0xcbf29ce484222325ULL;
	uint64_t	u = (uint64_t)issuer;

	for (int i = 0; i < 8; i++) {
		h ^= (u >> (8 * i)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	for (; *serial != '\0'; serial++) {
		h ^= (unsigned char)*serial;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static size_t
pow2_at_least(size_t n)
{
	size_t	p = 16;

	while (p < n && p < ((size_t)1 << 30))
		p <<= 1;
	return p;
}

int
va_cache_new(size_t max, struct va_cache **out)
{
	struct va_cache	*c;
	size_t		 per;

	*out = NULL;
	if (max == 0)
		max = DEFAULT_MAX;
	per = (max + SHARDS - 1) / SHARDS;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SP_ERR_ALLOC;
	atomic_init(&c->gen, 1);
	for (size_t i = 0; i < SHARDS; i++) {
		struct shard	*s = &c->shards[i];

		pthread_mutex_init(&s->mtx, NULL);
		s->max = per;
		s->nbuckets = pow2_at_least(per);
		if ((s->buckets = calloc(s->nbuckets,
		    sizeof(*s->buckets))) == NULL) {
			va_cache_free(c);
			return SP_ERR_ALLOC;
		}
	}
	*out = c;
	return 0;
}

static void
centry_free(struct centry *e)
{
	for (int h = 0; h < OCSP_HASH__MAX; h++)
		va_resp_unref(e->v[h]);
	free(e);
}

void
va_cache_free(struct va_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < SHARDS; i++) {
		struct shard	*s = &c->shards[i];
		struct centry	*e, *next;

		for (e = s->head; e != NULL; e = next) {
			next = e->next;
			centry_free(e);
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->mtx);
	}
	free(c);
}

uint64_t
va_cache_gen(struct va_cache *c)
{
	return atomic_load(&c->gen);
}

static struct shard *
shard_of(struct va_cache *c, uint64_t h)
{
	return &c->shards[(h >> 58) & (SHARDS - 1)];
}

static struct centry **
slot_of(struct shard *s, uint64_t h, int64_t issuer, const char *serial)
{
	struct centry	**p = &s->buckets[h & (s->nbuckets - 1)];

	while (*p != NULL && ((*p)->issuer != issuer ||
	    strcmp((*p)->serial, serial) != 0))
		p = &(*p)->hnext;
	return p;
}

static void
lru_unlink(struct shard *s, struct centry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(struct shard *s, struct centry *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head != NULL)
		s->head->prev = e;
	s->head = e;
	if (s->tail == NULL)
		s->tail = e;
}

/* Unlinks e from its bucket and the list and frees it. */
static void
drop(struct shard *s, struct centry *e)
{
	uint64_t	  h = key_hash(e->issuer, e->serial);
	struct centry	**p = slot_of(s, h, e->issuer, e->serial);

	*p = e->hnext;
	lru_unlink(s, e);
	s->count--;
	centry_free(e);
}

struct va_resp *
va_cache_get1(struct va_cache *c, int64_t issuer, const char *serial,
    enum ocsp_hash hash, time_t now, bool *refresh)
{
	uint64_t	 h = key_hash(issuer, serial);
	struct shard	*s = shard_of(c, h);
	struct centry	*e;
	struct va_resp	*r = NULL;
	bool		 no = false;

	if (refresh != NULL)
		*refresh = false;
	if (hash <= OCSP_HASH_NONE || hash >= OCSP_HASH__MAX)
		return NULL;
	pthread_mutex_lock(&s->mtx);
	if ((e = *slot_of(s, h, issuer, serial)) != NULL &&
	    (r = e->v[hash]) != NULL) {
		if (now >= r->expires) {
			e->v[hash] = NULL;
			va_resp_unref(r);
			r = NULL;
		} else {
			va_resp_ref(r);
			lru_unlink(s, e);
			lru_push(s, e);
		}
	}
	pthread_mutex_unlock(&s->mtx);
	if (r != NULL && now >= r->refresh_at && refresh != NULL)
		*refresh = atomic_compare_exchange_strong(&r->refreshing, &no,
		    true);
	return r;
}

int
va_cache_put(struct va_cache *c, int64_t issuer, const char *serial,
    enum ocsp_hash hash, struct va_resp *r, uint64_t gen)
{
	uint64_t	  h = key_hash(issuer, serial);
	struct shard	 *s = shard_of(c, h);
	struct centry	**p, *e;
	int		  rc = 0;

	if (hash <= OCSP_HASH_NONE || hash >= OCSP_HASH__MAX ||
	    strlen(serial) >= ID_SERIAL_HEX_MAX)
		return SP_ERR_INVALID;
	pthread_mutex_lock(&s->mtx);
	if (gen < s->inval_gen) {
		rc = SP_ERR_STATE;
		goto out;
	}
	p = slot_of(s, h, issuer, serial);
	if ((e = *p) == NULL) {
		if (s->count >= s->max && s->tail != NULL) {
			drop(s, s->tail);
			p = slot_of(s, h, issuer, serial);
		}
		if ((e = calloc(1, sizeof(*e))) == NULL) {
			rc = SP_ERR_ALLOC;
			goto out;
		}
		e->issuer = issuer;
		memcpy(e->serial, serial, strlen(serial) + 1);
		*p = e;
		s->count++;
	} else
		lru_unlink(s, e);
	lru_push(s, e);
	va_resp_ref(r);
	va_resp_unref(e->v[hash]);
	e->v[hash] = r;
 out:
	pthread_mutex_unlock(&s->mtx);
	return rc;
}

void
va_cache_invalidate(struct va_cache *c, int64_t issuer, const char *serial)
{
	uint64_t	 h = key_hash(issuer, serial);
	struct shard	*s = shard_of(c, h);
	struct centry	*e;

	pthread_mutex_lock(&s->mtx);
	s->inval_gen = atomic_fetch_add(&c->gen, 1) + 1;
	if ((e = *slot_of(s, h, issuer, serial)) != NULL)
		drop(s, e);
	pthread_mutex_unlock(&s->mtx);
}

/* Drops every entry of issuer (every entry if issuer is -1). */
static void
drop_where(struct va_cache *c, int64_t issuer)
{
	uint64_t	g = atomic_fetch_add(&c->gen, 1) + 1;

	for (size_t i = 0; i < SHARDS; i++) {
		struct shard	*s = &c->shards[i];
		struct centry	*e, *next;

		pthread_mutex_lock(&s->mtx);
		s->inval_gen = g;
		for (e = s->head; e != NULL; e = next) {
			next = e->next;
			if (issuer == -1 || e->issuer == issuer)
				drop(s, e);
		}
		pthread_mutex_unlock(&s->mtx);
	}
}

void
va_cache_invalidate_issuer(struct va_cache *c, int64_t issuer)
{
	drop_where(c, issuer);
}

void
va_cache_clear(struct va_cache *c)
{
	drop_where(c, -1);
}


size_t
va_cache_count(struct va_cache *c)
{
	size_t	n = 0;

	for (size_t i = 0; i < SHARDS; i++) {
		pthread_mutex_lock(&c->shards[i].mtx);
		n += c->shards[i].count;
		pthread_mutex_unlock(&c->shards[i].mtx);
	}
	return n;
}
