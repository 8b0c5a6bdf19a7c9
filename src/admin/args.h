/*
 * Validated access to admin request arguments, shared by every handler
 * table. Each returns 0 or SP_ERR_INVALID / SP_ERR_LIMIT / SP_ERR_ALLOC
 * with a message naming the argument. Out-params borrow from args unless
 * said otherwise.
 */
#ifndef SP_ADMIN_ARGS_H
#define SP_ADMIN_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/err.h"

/* Refuses arguments other than the NULL-ended keys, so typos are caught. */
int	admin_args_only(json_t *args, const char *const *keys,
	    struct sp_err *err) SP_WUR;
/* A string without NUL bytes; NULL if absent and not required. */
int	admin_arg_str(json_t *args, const char *key, bool required,
	    const char **out, struct sp_err *err) SP_WUR;
/* An integer in [min, max]; 0 if absent. */
int	admin_arg_int(json_t *args, const char *key, long long min,
	    long long max, long long *out, struct sp_err *err) SP_WUR;
/* A boolean; false if absent. */
int	admin_arg_bool(json_t *args, const char *key, bool *out,
	    struct sp_err *err) SP_WUR;
/* A positive id: an integer, or a string of digits (CLI positionals). */
int	admin_arg_id(json_t *args, const char *key, int64_t *out,
	    struct sp_err *err) SP_WUR;
/* At most max strings (*out heap, items borrowed); NULL/0 if absent. */
int	admin_arg_strlist(json_t *args, const char *key, size_t max,
	    const char ***out, size_t *n, struct sp_err *err) SP_WUR;
/* Base64-decoded bytes, at most max (*out heap; NULL if absent). */
int	admin_arg_b64(json_t *args, const char *key, bool required,
	    size_t max, unsigned char **out, size_t *outlen,
	    struct sp_err *err) SP_WUR;
/* A JSON string of the base64 of the bytes (new reference). */
json_t	*admin_b64_json(const unsigned char *der, size_t len);

#endif
