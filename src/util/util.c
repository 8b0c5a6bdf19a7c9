#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "util/util.h"

static _Atomic time_t		fake_now;
static _Atomic long long	clock_offset;

void
sp_hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

int
sp_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
sp_hex_decode(const char *hex, unsigned char *out, size_t outsz)
{
	size_t	len = strlen(hex);

	if (len == 0 || len % 2 != 0 || len / 2 > outsz || len / 2 > INT_MAX)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		int hi = sp_hex_digit(hex[2 * i]), lo = sp_hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return (int)(len / 2);
}

int
sp_strtonum(const char *s, long long min, long long max, long long *out,
    const char **errstr)
{
	char		*end;
	long long	 v;

	*out = 0;
	*errstr = "invalid";
	if (s == NULL || *s == '\0')
		return SP_ERR_INVALID;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || end == s)
		return SP_ERR_INVALID;
	if ((errno == ERANGE && v == LLONG_MIN) || v < min) {
		*errstr = "too small";
		return SP_ERR_INVALID;
	}
	if ((errno == ERANGE && v == LLONG_MAX) || v > max) {
		*errstr = "too large";
		return SP_ERR_INVALID;
	}
	*errstr = NULL;
	*out = v;
	return 0;
}

time_t
sp_now(void)
{
	time_t	f = atomic_load(&fake_now);

	return (f != 0 ? f : time(NULL)) + (time_t)atomic_load(&clock_offset);
}

void
sp_time_set_fake(time_t t)
{
	atomic_store(&fake_now, t);
}

void
sp_time_set_offset(long long seconds)
{
	atomic_store(&clock_offset, seconds);
}

long long
sp_time_offset(void)
{
	return atomic_load(&clock_offset);
}

void
sp_time_fmt(time_t t, char *out, size_t outsz)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
sp_file_read(const char *path, size_t max, char **out, size_t *outlen,
    struct sp_err *err)
{
	FILE	*f = NULL;
	char	*buf = NULL;
	size_t	 n;
	int	 r = SP_ERR_IO;

	*out = NULL;
	*outlen = 0;
	if ((f = fopen(path, "rb")) == NULL) {
		sp_err_set(err, SP_ERR_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((buf = malloc(max + 1)) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		sp_err_set(err, SP_ERR_IO, "%s: read error", path);
		goto out;
	}
	if (n > max) {
		r = sp_err_set(err, SP_ERR_LIMIT, "%s: larger than %zu bytes",
		    path, max);
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	buf = NULL;
	r = 0;
 out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return r;
}

int
sp_file_write(const char *path, const void *data, size_t len, int mode,
    struct sp_err *err)
{
	char	tmp[PATH_MAX];
	int	fd = -1, r = SP_ERR_IO;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return sp_err_set(err, SP_ERR_INVALID, "%s: path too long",
		    path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    mode)) == -1) {
		sp_err_set(err, SP_ERR_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) == -1) {
		sp_err_set(err, SP_ERR_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		sp_err_set(err, SP_ERR_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		sp_err_set(err, SP_ERR_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	r = 0;
 out:
	if (fd != -1)
		close(fd);
	if (r != 0)
		unlink(tmp);
	return r;
}

void
sp_freezero(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

bool
sp_name_valid(const char *s, size_t max)
{
	size_t	n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++, n++) {
		if (n >= max)
			return false;
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' ||
		    *s == '-'))
			return false;
	}
	/* "." and ".." would name a directory, not an object (S4). */
	return !(n == 1 && s[-1] == '.') && !(n == 2 && s[-1] == '.' &&
	    s[-2] == '.');
}

size_t
sp_utf8_trunc(char *s, size_t len)
{
	size_t	i = len, need;

	/* Back up over continuation bytes to the lead byte, if any. */
	while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80 && len - i < 3)
		i--;
	if (i == 0) {
		s[len] = '\0';
		return len;
	}
	if (((unsigned char)s[i - 1] & 0x80) == 0)
		need = 1;
	else if (((unsigned char)s[i - 1] & 0xe0) == 0xc0)
		need = 2;
	else if (((unsigned char)s[i - 1] & 0xf0) == 0xe0)
		need = 3;
	else if (((unsigned char)s[i - 1] & 0xf8) == 0xf0)
		need = 4;
	else
		need = 0;	/* not UTF-8: leave the bytes be */
	if (need > 1 && len - (i - 1) < need)
		len = i - 1;	/* the last character is cut: drop it */
	s[len] = '\0';
	return len;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), or 0. */
static size_t
utf8_seq(const unsigned char *p)
{
	size_t		n;
	uint32_t	c;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, c = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, c = p[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)	/* also stops at the NUL */
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

size_t
sp_utf8_clean(char *s)
{
	unsigned char	*p = (unsigned char *)s;
	size_t		 n, bad = 0;

	while (*p != '\0') {
		if ((n = utf8_seq(p)) == 0) {
			*p++ = '?';
			bad++;
		} else
			p += n;
	}
	return bad;
}

int
sp_harden_process(struct sp_err *err)
{
	struct rlimit	rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) == -1)
		return sp_err_set(err, SP_ERR_INTERNAL, "setrlimit(RLIMIT_CORE):"
		    " %s", strerror(errno));
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		return sp_err_set(err, SP_ERR_INTERNAL, "prctl(PR_SET_DUMPABLE):"
		    " %s", strerror(errno));
	return 0;
}
