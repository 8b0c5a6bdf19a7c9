#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>

#include "net/pool.h"
#include "util/log.h"

struct job {
	pool_work_fn	*work;
	pool_done_fn	*done;
	void		*arg;
	struct job	*next;
};

struct pool {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	struct job	*head, *tail;	/* queued */
	struct job	*done_head;	/* finished, completion pending */
	bool		 stopping;
	size_t		 pending;	/* loop thread only */
	size_t		 max_pending;	/* loop thread only */
	pthread_t	*threads;
	int		 nthreads;
	struct event	*ev_done;
};

static void *
worker_main(void *arg)
{
	struct pool	*p = arg;
	struct job	*j;

	pthread_mutex_lock(&p->mtx);
	for (;;) {
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->mtx);
		if ((j = p->head) == NULL)
			break;		/* stopping and drained */
		if ((p->head = j->next) == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mtx);
		j->work(j->arg);
		pthread_mutex_lock(&p->mtx);
		j->next = p->done_head;
		p->done_head = j;
		if (p->ev_done != NULL)
			event_active(p->ev_done, EV_READ, 0);
	}
	pthread_mutex_unlock(&p->mtx);
	return NULL;
}

/* Runs finished jobs' completions; oldest first. */
static void
run_done(struct pool *p)
{
	struct job	*list, *rev = NULL, *j;

	pthread_mutex_lock(&p->mtx);
	list = p->done_head;
	p->done_head = NULL;
	pthread_mutex_unlock(&p->mtx);
	while (list != NULL) {
		j = list;
		list = j->next;
		j->next = rev;
		rev = j;
	}
	while ((j = rev) != NULL) {
		rev = j->next;
		p->pending--;
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
	}
}

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_done(arg);
}

struct pool *
pool_new(struct event_base *base, int nthreads)
{
	struct pool	*p;

	if (nthreads < 1 || nthreads > POOL_THREADS_MAX)
		return NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->max_pending = POOL_QUEUE_MAX;
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cond, NULL);
	if ((p->ev_done = event_new(base, -1, 0, on_done, p)) == NULL ||
	    (p->threads = calloc((size_t)nthreads,
	    sizeof(*p->threads))) == NULL) {
		pool_free(p);
		return NULL;
	}
	for (; p->nthreads < nthreads; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL,
		    worker_main, p) != 0) {
			pool_free(p);
			return NULL;
		}
	return p;
}

int
pool_submit(struct pool *p, pool_work_fn *work, pool_done_fn *done,
    void *arg)
{
	struct job	*j;

	if (p->pending >= p->max_pending)
		return SP_ERR_LIMIT;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return SP_ERR_ALLOC;
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->mtx);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		free(j);
		return SP_ERR_STATE;
	}
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->pending++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mtx);
	return 0;
}

void
pool_set_max_pending(struct pool *p, size_t max)
{
	p->max_pending = max > 0 ? max : POOL_QUEUE_MAX;
}

size_t
pool_pending(const struct pool *p)
{
	return p->pending;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mtx);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mtx);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	run_done(p);
	if (p->ev_done != NULL)
		event_free(p->ev_done);
	free(p->threads);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mtx);
	free(p);
}
