#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

static enum log_level	 log_threshold = LOG_LVL_INFO;
static const char	*log_tag = "sallyport";
static const char *const lvl_names[] = { "error", "warn", "info", "debug" };

void
log_init(enum log_level level)
{
	log_threshold = level;
}

int
log_level_parse(const char *s)
{
	for (int i = 0; i < LOG_LVL__MAX; i++)
		if (strcmp(s, lvl_names[i]) == 0)
			return i;
	return -1;
}

void
log_procinit(const char *tag)
{
	log_tag = tag;
}

static void	vlog(enum log_level, int, const char *, va_list)
		    __attribute__((format(printf, 3, 0)));

static void
vlog(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
	char		 msg[1024], ts[32];
	struct tm	 tm;
	struct timespec	 now;

	if (lvl > log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errnum != 0)
		fprintf(stderr, "%s.%03ldZ %s[%s]: %s: %s\n", ts,
		    now.tv_nsec / 1000000, log_tag, lvl_names[lvl], msg,
		    strerror(errnum));
	else
		fprintf(stderr, "%s.%03ldZ %s[%s]: %s\n", ts,
		    now.tv_nsec / 1000000, log_tag, lvl_names[lvl], msg);
}

#define LOGFN(name, lvl, useerr)					\
void									\
name(const char *fmt, ...)						\
{									\
	va_list	ap;							\
	int	saved = errno;						\
									\
	va_start(ap, fmt);						\
	vlog(lvl, useerr ? saved : 0, fmt, ap);				\
	va_end(ap);							\
	errno = saved;							\
}

LOGFN(log_warn, LOG_LVL_WARN, 1)
LOGFN(log_warnx, LOG_LVL_WARN, 0)
LOGFN(log_info, LOG_LVL_INFO, 0)
LOGFN(log_debug, LOG_LVL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
