/*
 * Logging (OpenBSD log.h style). Everything goes to stderr with a time
 * stamp and the process/thread tag set with log_procinit().
 */
#ifndef SP_UTIL_LOG_H
#define SP_UTIL_LOG_H

#include "util/err.h"

enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
	LOG_LVL__MAX
};

/* Sets the threshold; messages above it are dropped. */
void	log_init(enum log_level level);
/* Parses "error", "warn", "info", "debug"; returns -1 if unknown. */
int	log_level_parse(const char *s);
void	log_procinit(const char *tag);
void	log_warn(const char *fmt, ...) SP_PRINTF(1, 2);	/* appends errno */
void	log_warnx(const char *fmt, ...) SP_PRINTF(1, 2);
void	log_info(const char *fmt, ...) SP_PRINTF(1, 2);
void	log_debug(const char *fmt, ...) SP_PRINTF(1, 2);
void	fatal(const char *fmt, ...) SP_PRINTF(1, 2)
	    __attribute__((noreturn));		/* appends errno */
void	fatalx(const char *fmt, ...) SP_PRINTF(1, 2)
	    __attribute__((noreturn));

#define log_warnx_f(fmt, ...)	log_warnx("%s: " fmt, __func__, ##__VA_ARGS__)
#define log_debug_f(fmt, ...)	log_debug("%s: " fmt, __func__, ##__VA_ARGS__)

#endif
