/*
 * Error codes and the user-facing error detail (STYLE.md section 4).
 *
 * Functions returning int return 0 on success or a negative enum sp_rc.
 * Detail for the caller (which rule rejected a CSR, which key was bad in a
 * config file) goes into an optional struct sp_err, whose fixed buffer
 * means reporting an allocation failure needs no allocation.
 */
#ifndef SP_UTIL_ERR_H
#define SP_UTIL_ERR_H

#include <stdarg.h>

#define SP_WUR		__attribute__((warn_unused_result))
#define SP_PRINTF(a, b)	__attribute__((format(printf, a, b)))

enum sp_rc {
	SP_OK = 0,
	SP_ERR_INTERNAL = -1,	/* broken invariant, unexpected library error */
	SP_ERR_ALLOC = -2,	/* out of memory */
	SP_ERR_INVALID = -3,	/* malformed or out-of-range input */
	SP_ERR_NOTFOUND = -4,	/* named object does not exist */
	SP_ERR_EXISTS = -5,	/* object already exists */
	SP_ERR_CRYPTO = -6,	/* OpenSSL operation failed */
	SP_ERR_DB = -7,		/* database failure */
	SP_ERR_IO = -8,		/* file or socket I/O failure */
	SP_ERR_DENIED = -9,	/* not authorized */
	SP_ERR_STATE = -10,	/* object in the wrong state (token inactive) */
	SP_ERR_PIN = -11,	/* wrong activation PIN */
	SP_ERR_POLICY = -12,	/* request violates a profile rule */
	SP_ERR_LIMIT = -13,	/* size or count limit exceeded */
	SP_ERR_CONNECT = -14,	/* the other side could not be reached */
	SP_ERR__MAX = -15
};

struct sp_err {
	int	code;
	char	msg[256];
};

/* Short, stable, machine-readable name of a code ("invalid", "policy"). */
const char	*sp_rc_str(int rc);

/* Clears err (may be NULL). */
void		 sp_err_clear(struct sp_err *err);

/*
 * Records code and a formatted message in err (may be NULL) and returns
 * code, so callers can write: return sp_err_set(err, SP_ERR_INVALID, ...).
 * A message already recorded is kept unless this call has a non-empty one
 * and the old one is empty.
 */
int		 sp_err_set(struct sp_err *err, int code, const char *fmt, ...)
		    SP_PRINTF(3, 4);

/*
 * Like sp_err_set(), appending the first reason on OpenSSL's error queue
 * to "what"; drains and clears the queue.
 */
int		 sp_err_ossl(struct sp_err *err, int code, const char *what);

#endif
