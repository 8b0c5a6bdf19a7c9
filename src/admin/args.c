#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "admin/args.h"
#include "util/util.h"

/* Refuses arguments other than the NULL-ended keys, so typos are caught. */
int
admin_args_only(json_t *args, const char *const *keys, struct sp_err *err)
{
	const char	*k;
	json_t		*v;

	if (!json_is_object(args))
		return sp_err_set(err, SP_ERR_INVALID, "arguments must be an "
		    "object");
	json_object_foreach(args, k, v) {
		size_t	i;

		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL)
			return sp_err_set(err, SP_ERR_INVALID, "unknown "
			    "argument \"%.32s\"", k);
	}
	return 0;
}

/* A string argument without NUL bytes, or NULL if absent (and optional). */
int
admin_arg_str(json_t *args, const char *key, bool required, const char **out,
    struct sp_err *err)
{
	json_t	*v = json_object_get(args, key);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return sp_err_set(err, SP_ERR_INVALID, "missing "
			    "argument \"%s\"", key);
		return 0;
	}
	if (!json_is_string(v) || strlen(json_string_value(v)) !=
	    json_string_length(v))
		return sp_err_set(err, SP_ERR_INVALID, "argument \"%s\" must "
		    "be a string", key);
	*out = json_string_value(v);
	return 0;
}

int
admin_arg_int(json_t *args, const char *key, long long min, long long max,
    long long *out, struct sp_err *err)
{
	json_t	*v = json_object_get(args, key);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return sp_err_set(err, SP_ERR_INVALID, "argument \"%s\" must be "
		    "an integer in %lld..%lld", key, min, max);
	*out = json_integer_value(v);
	return 0;
}

/* A boolean argument; absent means false. */
int
admin_arg_bool(json_t *args, const char *key, bool *out, struct sp_err *err)
{
	json_t	*v = json_object_get(args, key);

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return sp_err_set(err, SP_ERR_INVALID, "argument \"%s\" must "
		    "be true or false", key);
	*out = json_is_true(v);
	return 0;
}

/*
 * A positive row id: a JSON integer, or a string of decimal digits (the
 * CLI sends positionals as strings).
 */
int
admin_arg_id(json_t *args, const char *key, int64_t *out, struct sp_err *err)
{
	json_t		*v = json_object_get(args, key);
	const char	*errstr;
	long long	 n;

	*out = 0;
	if (v == NULL || json_is_null(v))
		return sp_err_set(err, SP_ERR_INVALID, "missing argument "
		    "\"%s\"", key);
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && sp_strtonum(json_string_value(v), 1,
	    INT64_MAX, &n, &errstr) == 0) {
		*out = n;
		return 0;
	}
	return sp_err_set(err, SP_ERR_INVALID, "argument \"%s\" must be a "
	    "positive integer (the ID of peer incoming list)", key);
}

/* An optional list of at most max strings (*out heap, borrowed items). */
int
admin_arg_strlist(json_t *args, const char *key, size_t max, const char ***out,
    size_t *n, struct sp_err *err)
{
	json_t		*v = json_object_get(args, key), *e;
	const char	**list;
	size_t		 i;

	*out = NULL;
	*n = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return sp_err_set(err, SP_ERR_INVALID, "argument \"%s\" must "
		    "be a list of strings", key);
	if (json_array_size(v) > max)
		return sp_err_set(err, SP_ERR_LIMIT, "argument \"%s\": at most "
		    "%zu entries", key, max);
	if (json_array_size(v) == 0)
		return 0;
	if ((list = calloc(json_array_size(v), sizeof(*list))) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || strlen(json_string_value(e)) !=
		    json_string_length(e)) {
			free(list);
			return sp_err_set(err, SP_ERR_INVALID, "argument "
			    "\"%s\" must be a list of strings", key);
		}
		list[i] = json_string_value(e);
	}
	*out = list;
	*n = json_array_size(v);
	return 0;
}

/*
 * The base64-decoded bytes of a string argument (*out heap, NULL if the
 * argument is absent and optional), at most max bytes.
 */
int
admin_arg_b64(json_t *args, const char *key, bool required, size_t max,
    unsigned char **out, size_t *outlen, struct sp_err *err)
{
	const char	*s;
	unsigned char	*buf;
	size_t		 len, pad = 0;
	int		 n, r;

	*out = NULL;
	*outlen = 0;
	if ((r = admin_arg_str(args, key, required, &s, err)) != 0 || s == NULL)
		return r;
	len = strlen(s);
	if (len / 4 * 3 > max + 2)
		return sp_err_set(err, SP_ERR_LIMIT, "argument \"%s\" larger "
		    "than %zu bytes", key, max);
	if (len == 0 || len % 4 != 0)
		return sp_err_set(err, SP_ERR_INVALID, "argument \"%s\": "
		    "base64 of 1..%zu bytes expected", key, max);
	if ((buf = malloc(len / 4 * 3 + 1)) == NULL)
		return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
	/* Returns the decoded length, counting padding as data, or -1. */
	n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
	if (n < 0) {
		free(buf);
		return sp_err_set(err, SP_ERR_INVALID, "argument \"%s\": bad "
		    "base64", key);
	}
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	if ((size_t)n - pad > max) {
		free(buf);
		return sp_err_set(err, SP_ERR_LIMIT, "argument \"%s\" larger "
		    "than %zu bytes", key, max);
	}
	*out = buf;
	*outlen = (size_t)n - pad;
	return 0;
}

json_t *
admin_b64_json(const unsigned char *der, size_t len)
{
	char	*b;
	json_t	*j;

	if ((b = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)b, der, (int)len);
	j = json_string(b);
	free(b);
	return j;
}

