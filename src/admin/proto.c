#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "admin/proto.h"

void
admin_frame_header(size_t len, unsigned char hdr[4])
{
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
}

int
admin_frame_length(const unsigned char hdr[4], size_t *len)
{
	uint32_t	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];

	*len = n;
	return n > ADMIN_MAX_MSG ? SP_ERR_LIMIT : 0;
}

static int
cmd_valid(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0'; s++, n++)
		if (n >= ADMIN_CMD_MAX || !((*s >= 'a' && *s <= 'z') ||
		    *s == '.' || *s == '-'))
			return 0;
	return n > 0;
}

int
admin_request_parse(const unsigned char *body, size_t len, json_t **root,
    const char **cmd, json_t **args, struct sp_err *err)
{
	json_t		*doc, *c, *a;
	json_error_t	 je;

	*root = NULL;
	*cmd = NULL;
	*args = NULL;
	if (len > ADMIN_MAX_MSG)
		return sp_err_set(err, SP_ERR_LIMIT, "request too large");
	/* Reject NUL bytes inside strings and duplicate keys. */
	if ((doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES,
	    &je)) == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "request is not JSON: "
		    "%s", je.text);
	if (!json_is_object(doc) || (c = json_object_get(doc, "cmd")) == NULL ||
	    !json_is_string(c) || !cmd_valid(json_string_value(c)))
		goto bad;
	a = json_object_get(doc, "args");
	if (a != NULL && !json_is_object(a))
		goto bad;
	if (json_object_size(doc) != (a != NULL ? 2u : 1u))
		goto bad;
	if (a == NULL) {
		json_object_set_new(doc, "args", json_object());
		a = json_object_get(doc, "args");
		if (a == NULL)
			goto bad;
	}
	*root = doc;
	*cmd = json_string_value(c);
	*args = a;
	return 0;
 bad:
	json_decref(doc);
	return sp_err_set(err, SP_ERR_INVALID, "request must be {\"cmd\": "
	    "NAME, \"args\": {...}}");
}

json_t *
admin_response_ok(json_t *result)
{
	return json_pack("{s:b,s:o}", "ok", 1, "result",
	    result ? result : json_null());
}

json_t *
admin_response_err(int code, const char *message)
{
	return json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code",
	    sp_rc_str(code), "message", message);
}

int
admin_code_parse(const char *name)
{
	for (int rc = 0; rc > SP_ERR__MAX; rc--)
		if (strcmp(sp_rc_str(rc), name) == 0)
			return rc;
	return SP_ERR_INTERNAL;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const unsigned char	*p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
read_all(int fd, void *buf, size_t len)
{
	unsigned char	*p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
admin_call(const char *sockpath, const char *cmd, json_t *args,
    json_t **result, struct sp_err *err)
{
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	json_t			*req = NULL, *resp = NULL, *e;
	char			*body = NULL, *rbody = NULL;
	unsigned char		 hdr[4];
	size_t			 len;
	json_error_t		 je;
	int			 fd = -1, r = SP_ERR_CONNECT;

	*result = NULL;
	if (strlen(sockpath) >= sizeof(sun.sun_path)) {
		json_decref(args);
		return sp_err_set(err, SP_ERR_INVALID, "%s: path too long",
		    sockpath);
	}
	strcpy(sun.sun_path, sockpath);
	req = json_pack("{s:s,s:o}", "cmd", cmd, "args",
	    args ? args : json_object());
	if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	len = strlen(body);
	if (len > ADMIN_MAX_MSG) {
		r = sp_err_set(err, SP_ERR_LIMIT, "request larger than %d "
		    "bytes", ADMIN_MAX_MSG);
		goto out;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		r = sp_err_set(err, SP_ERR_CONNECT, "cannot reach the node at "
		    "%s: %s (is it running?)", sockpath, strerror(errno));
		goto out;
	}
	admin_frame_header(len, hdr);
	if (write_all(fd, hdr, 4) == -1 || write_all(fd, body, len) == -1 ||
	    read_all(fd, hdr, 4) == -1) {
		sp_err_set(err, r, "node closed the connection");
		goto out;
	}
	if (admin_frame_length(hdr, &len) != 0 ||
	    (rbody = malloc(len + 1)) == NULL ||
	    read_all(fd, rbody, len) == -1) {
		sp_err_set(err, r, "bad response from the node");
		goto out;
	}
	if ((resp = json_loadb(rbody, len, 0, &je)) == NULL) {
		sp_err_set(err, r, "bad response from the node: %s",
		    je.text);
		goto out;
	}
	if (json_is_true(json_object_get(resp, "ok"))) {
		*result = json_incref(json_object_get(resp, "result"));
		r = 0;
	} else {
		e = json_object_get(resp, "error");
		r = admin_code_parse(json_string_value(json_object_get(e,
		    "code")) ?: "internal");
		sp_err_set(err, r, "%s", json_string_value(
		    json_object_get(e, "message")) ?: "request failed");
		if (r == 0)
			r = SP_ERR_INTERNAL;
	}
 out:
	if (fd != -1)
		close(fd);
	json_decref(req);
	json_decref(resp);
	if (body != NULL)	/* may hold a PIN */
		OPENSSL_cleanse(body, strlen(body));
	free(body);
	free(rbody);
	return r;
}
