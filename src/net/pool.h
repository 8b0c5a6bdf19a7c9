/*
 * Worker pool: CPU-heavy or blocking work (signing, key generation,
 * database writes) runs on a few threads; each job's completion runs back
 * on the event loop thread (DESIGN.md section 4).
 */
#ifndef SP_NET_POOL_H
#define SP_NET_POOL_H

#include <event2/event.h>

#include "util/err.h"

#define POOL_THREADS_MAX	64
#define POOL_QUEUE_MAX		4096	/* jobs queued, running or completing */

struct pool;

typedef void pool_work_fn(void *arg);	/* on a worker thread */
typedef void pool_done_fn(void *arg);	/* on the loop thread */

/*
 * Starts nthreads workers whose completions are delivered on base, which
 * must have been created after evthread_use_pthreads().
 */
struct pool	*pool_new(struct event_base *base, int nthreads);

/*
 * Queues work (loop thread); done (may be NULL) runs on the loop after
 * work returns. SP_ERR_LIMIT at once if the pool already holds its
 * maximum of jobs (a full queue fails fast: the caller reports "busy"),
 * SP_ERR_STATE once the pool is stopping, SP_ERR_ALLOC.
 */
int		 pool_submit(struct pool *p, pool_work_fn *work,
		    pool_done_fn *done, void *arg) SP_WUR;
/* The job limit (POOL_QUEUE_MAX if max is 0). */
void		 pool_set_max_pending(struct pool *p, size_t max);

/* Jobs queued or running (loop thread). */
size_t		 pool_pending(const struct pool *p);

/*
 * Stops the pool: queued jobs still run (what was accepted is done),
 * workers are joined, then every pending completion runs on the caller's
 * thread. Safe on NULL.
 */
void		 pool_free(struct pool *p);

#endif
