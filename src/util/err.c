#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "util/err.h"
#include "util/util.h"

static const char *const rc_names[] = {
	"ok", "internal", "alloc", "invalid", "not_found", "exists", "crypto",
	"database", "io", "denied", "state", "pin", "policy", "limit",
	"connect",
};

const char *
sp_rc_str(int rc)
{
	if (rc > 0 || rc <= SP_ERR__MAX)
		return "unknown";
	return rc_names[-rc];
}

void
sp_err_clear(struct sp_err *err)
{
	if (err == NULL)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

int
sp_err_set(struct sp_err *err, int code, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (err == NULL)
		return code;
	/* Keep the innermost, most specific message. */
	if (err->code != 0 && err->msg[0] != '\0')
		return code;
	err->code = code;
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	/*
	 * The message goes into JSON replies, which must be UTF-8: a cut at
	 * the buffer's end drops a split character; anything else that is
	 * not UTF-8 (a name cut by "%.64s", raw bytes) becomes '?'.
	 */
	if (n < 0)
		err->msg[0] = '\0';
	else if ((size_t)n >= sizeof(err->msg))
		sp_utf8_trunc(err->msg, sizeof(err->msg) - 1);
	sp_utf8_clean(err->msg);
	return code;
}

int
sp_err_ossl(struct sp_err *err, int code, const char *what)
{
	unsigned long	e;
	char		buf[160];

	e = ERR_peek_last_error();
	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		sp_err_set(err, code, "%s: %s", what, buf);
	} else
		sp_err_set(err, code, "%s failed", what);
	ERR_clear_error();
	return code;
}
