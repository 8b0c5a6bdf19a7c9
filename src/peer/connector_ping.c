/*
 * Ping through a connector (peer_ping()): count GET /ping requests, at
 * most parallel at a time, through the public request API, with round
 * trip statistics.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peer/connector_int.h"
#include "util/util.h"

#define PING_KEEP	100	/* per-ping details returned */
#define PING_MAX	100000

struct pingjob {
	struct peer		*p;
	char			 name[PEER_NAME_MAX + 1];
	int			 count, parallel, launched, finished, ok;
	int			 max_in_use, max_queued;
	struct timespec		 start;
	double			*rtt;
	json_t			*details;
	struct sp_err		 first_err;
	peer_ping_done		*done;
	void			*arg;
};

struct pingone {
	struct pingjob	*job;
	struct timespec	 t0;
};

static void	ping_launch(struct pingjob *);

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
ping_finish(struct pingjob *j)
{
	json_t		*res;
	double		 med = 0, p99 = 0, elapsed;
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = (double)(now.tv_sec - j->start.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - j->start.tv_nsec) / 1e6;
	if (j->ok > 0) {
		qsort(j->rtt, (size_t)j->ok, sizeof(double), cmp_double);
		med = j->rtt[j->ok / 2];
		/* Nearest rank: the smallest value >= 99% of the samples. */
		p99 = j->rtt[(size_t)ceil(j->ok * 0.99) - 1];
	}
	if (j->ok == 0) {
		json_decref(j->details);
		j->done(j->arg, NULL, j->first_err.code ? j->first_err.code :
		    SP_ERR_IO, &j->first_err);
	} else {
		res = json_pack("{s:s,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:i,s:i,s:o}",
		    "connector", j->name, "count", j->count, "ok", j->ok,
		    "failed", j->count - j->ok, "min_ms", j->rtt[0],
		    "median_ms", med, "p99_ms", p99, "max_ms",
		    j->rtt[j->ok - 1], "max_in_use", j->max_in_use,
		    "max_queued", j->max_queued, "pings", j->details);
		json_object_set_new(res, "elapsed_ms", json_real(elapsed));
		json_object_set_new(res, "per_second", json_real(elapsed > 0 ?
		    j->ok * 1e3 / elapsed : 0));
		if (j->first_err.code != 0)
			json_object_set_new(res, "first_error",
			    json_string(j->first_err.msg));
		j->done(j->arg, res, 0, NULL);
	}
	free(j->rtt);
	free(j);
}

static void
ping_sample(struct pingjob *j)
{
	struct peer_lane_stats	st;

	if (peer_connector_lane_stats(j->p, j->name, PEER_LANE_NORMAL, &st,
	    NULL) != 0)
		return;
	if (st.in_use > j->max_in_use)
		j->max_in_use = st.in_use;
	if (st.queued > j->max_queued)
		j->max_queued = st.queued;
}

static void
ping_done_one(void *arg, const struct peer_response *res)
{
	struct pingone		*po = arg;
	struct pingjob		*j = po->job;
	struct timespec		 t1;
	double			 ms;
	struct sp_err		 e = { 0 };

	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - po->t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - po->t0.tv_nsec) / 1e6;
	free(po);
	j->finished++;
	if (res->error == PEER_REQ_OK && res->status == 200 &&
	    json_is_true(json_object_get(res->body, "pong"))) {
		j->rtt[j->ok++] = ms;
		if (json_array_size(j->details) < PING_KEEP)
			json_array_append_new(j->details, json_pack("{s:f,s:s}",
			    "rtt_ms", ms, "connection", res->connection));
	} else if (j->first_err.code == 0) {
		const char *msg = json_string_value(json_object_get(
		    json_object_get(res->body, "error"), "message"));

		if (res->status != 0)
			sp_err_set(&e, res->status == 403 ? SP_ERR_DENIED :
			    SP_ERR_IO, "peer %s refused the ping (HTTP %d): %s",
			    j->name, res->status,
			    msg ? msg : "no reason given");
		else if (res->err != NULL && res->err->code != 0)
			e = *res->err;
		else
			sp_err_set(&e, SP_ERR_IO, "ping failed (%s)",
			    peer_req_error_str(res->error));
		j->first_err = e;
	}
	ping_sample(j);
	if (j->finished == j->count)
		ping_finish(j);
	else
		ping_launch(j);
}

static void
ping_fail(struct pingjob *j, const struct sp_err *err)
{
	j->finished++;
	if (j->first_err.code == 0)
		j->first_err = *err;
}

static void
ping_launch(struct pingjob *j)
{
	static const struct peer_request ping = { "GET", "/ping", NULL, 0,
					    PEER_LANE_NORMAL };
	struct pingone		*po;
	struct sp_err		 err = { 0 };

	while (j->launched < j->count &&
	    j->launched - j->finished < j->parallel) {
		j->launched++;
		if ((po = calloc(1, sizeof(*po))) == NULL) {
			sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
			ping_fail(j, &err);
			continue;
		}
		po->job = j;
		clock_gettime(CLOCK_MONOTONIC, &po->t0);
		sp_err_clear(&err);
		if (peer_connector_request(j->p, j->name, &ping, ping_done_one,
		    po, &err) != 0) {
			free(po);
			if (err.code == SP_ERR_NOTFOUND) {
				sp_err_clear(&err);
				sp_err_set(&err, SP_ERR_NOTFOUND, "connector "
				    "%s is gone", j->name);
			}
			ping_fail(j, &err);
			continue;
		}
		ping_sample(j);
	}
	if (j->finished == j->count)
		ping_finish(j);
}

void
peer_ping(struct peer *p, const char *name, int count, int parallel,
    peer_ping_done *done, void *arg)
{
	struct pingjob	*j;
	struct sp_err	 err = { 0 };

	if (connector_find(p, name) == NULL) {
		sp_err_set(&err, SP_ERR_NOTFOUND, "no connector named "
		    "\"%.64s\"", name ? name : "");
		done(arg, NULL, err.code, &err);
		return;
	}
	if (count < 1 || count > PING_MAX || parallel < 1 || parallel > 1024) {
		sp_err_set(&err, SP_ERR_INVALID, "count must be 1..%d and "
		    "parallel 1..1024", PING_MAX);
		done(arg, NULL, err.code, &err);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->rtt = calloc((size_t)count, sizeof(double))) == NULL ||
	    (j->details = json_array()) == NULL) {
		if (j != NULL)
			free(j->rtt);
		free(j);
		sp_err_set(&err, SP_ERR_ALLOC, "out of memory");
		done(arg, NULL, err.code, &err);
		return;
	}
	j->p = p;
	snprintf(j->name, sizeof(j->name), "%s", name);
	j->count = count;
	j->parallel = parallel;
	j->done = done;
	j->arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &j->start);
	ping_launch(j);
}
