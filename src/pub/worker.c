/*
 * Delivery of the outbox (docs/internals/pub.md): loop-thread state per
 * publisher; database work on the worker pool.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "pub/pub_int.h"

void
pub_wake(void *arg)
{
	struct pub	*p = arg;

	/* event_active is thread safe (libevent built with pthreads). */
	if (p != NULL && p->ev_wake != NULL)
		event_active(p->ev_wake, EV_READ, 0);
}

void
pub_stop(struct pub *p)
{
	if (p == NULL)
		return;
	p->stopping = true;
	if (p->ev_wake != NULL)
		event_free(p->ev_wake);
	if (p->ev_tick != NULL)
		event_free(p->ev_tick);
	p->ev_wake = p->ev_tick = NULL;
}

void
pub_free_dlv(struct pub *p)
{
	free(p->dlv);
	p->dlv = NULL;
	p->ndlv = 0;
}
