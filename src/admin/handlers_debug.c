/*
 * Test hooks, compiled in only with SP_TEST_HOOKS (the test build): a
 * release node does not know these commands at all.
 *
 *   debug.clock {"advance": SECONDS} or {"offset": SECONDS} or {}
 *     moves the node's clock (sp_now()) so tests see expiry and due times
 *     without waiting; replies with the offset and the node's time.
 */
#include <jansson.h>

#include "admin/handlers.h"
#include "util/log.h"
#include "util/util.h"

#ifdef SP_TEST_HOOKS

#define CLOCK_MAX_OFFSET	(100LL * 366 * 86400)	/* a century */

static int
h_clock(struct admin_ctx *ctx, json_t *args, const char *actor, json_t **out,
    struct sp_err *err)
{
	json_t		*adv = json_object_get(args, "advance");
	json_t		*off = json_object_get(args, "offset");
	long long	 o = sp_time_offset();
	char		 now[32];

	(void)ctx;
	if (adv != NULL && off != NULL)
		return sp_err_set(err, SP_ERR_INVALID, "give advance or "
		    "offset, not both");
	if ((adv != NULL && !json_is_integer(adv)) ||
	    (off != NULL && !json_is_integer(off)))
		return sp_err_set(err, SP_ERR_INVALID, "advance and offset "
		    "are whole seconds");
	if (adv != NULL)
		o += json_integer_value(adv);
	else if (off != NULL)
		o = json_integer_value(off);
	if (o > CLOCK_MAX_OFFSET || o < -CLOCK_MAX_OFFSET)
		return sp_err_set(err, SP_ERR_INVALID, "offset beyond a "
		    "century");
	if (adv != NULL || off != NULL) {
		sp_time_set_offset(o);
		log_warnx("test hook: %s moved the clock to offset %llds",
		    actor ? actor : "local", o);
	}
	sp_time_fmt(sp_now(), now, sizeof(now));
	if ((*out = json_pack("{s:I,s:s}", "offset", (json_int_t)o, "now",
	    now)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	return 0;
}

const struct admin_handler admin_handlers_debug[] = {
	{ "debug.clock", h_clock, NULL },
	{ NULL, NULL, NULL },
};

#else

const struct admin_handler admin_handlers_debug[] = {
	{ NULL, NULL, NULL },
};

#endif
