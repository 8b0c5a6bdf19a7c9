/*
 * Small helpers: hex, numbers, time, bounded file reads, secret wiping.
 */
#ifndef SP_UTIL_UTIL_H
#define SP_UTIL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/err.h"

/* The value of one hex digit (either case), or -1. */
int	sp_hex_digit(char c);

/* Lower-case hex of len bytes into out, which must hold 2 * len + 1. */
void	sp_hex_encode(const unsigned char *in, size_t len, char *out);

/*
 * Decodes hex (either case, even length, at most outsz bytes) into out.
 * Returns the number of bytes or -1 if malformed or too long.
 */
int	sp_hex_decode(const char *hex, unsigned char *out, size_t outsz);

/*
 * strtonum(3): parses a decimal integer in [min, max]. Returns 0, or
 * SP_ERR_INVALID with *errstr set to "invalid", "too small", "too large".
 */
int	sp_strtonum(const char *s, long long min, long long max,
	    long long *out, const char **errstr) SP_WUR;

/*
 * Current time; a seam for tests. sp_time_set_fake() pins it (0 returns
 * to the real clock); sp_time_set_offset() moves it by some seconds, which
 * is how e2e tests age a node (the debug.clock admin command, built only
 * with SP_TEST_HOOKS). Certificate checks against "now" use sp_now() too.
 */
time_t	sp_now(void);
void	sp_time_set_fake(time_t t);
void	sp_time_set_offset(long long seconds);
long long sp_time_offset(void);

/* ISO 8601 UTC "2026-11-25T21:34:43Z" into out (at least 21 bytes). */
void	sp_time_fmt(time_t t, char *out, size_t outsz);

/*
 * Reads a whole file of at most max bytes into a NUL-terminated heap
 * buffer (*out, freed by the caller; *outlen excludes the NUL).
 */
int	sp_file_read(const char *path, size_t max, char **out, size_t *outlen,
	    struct sp_err *err) SP_WUR;

/* Writes data to path atomically (temp file + rename) with the mode. */
int	sp_file_write(const char *path, const void *data, size_t len,
	    int mode, struct sp_err *err) SP_WUR;

/* Wipes and frees (freezero(3)); NULL is a no-op. */
void	sp_freezero(void *p, size_t len);

/*
 * True if s is non-empty, consists of [A-Za-z0-9_.-] only, has at most
 * max bytes and is neither "." nor "..".
 */
bool	sp_name_valid(const char *s, size_t max);

/*
 * Cuts s, which holds at least len bytes, to at most len bytes (writing
 * the NUL at s[len] or before) without leaving part of a UTF-8 sequence
 * at the end: a character cut at len, or already cut there (by
 * snprintf), is dropped whole. Returns the new length. Bytes that are
 * not UTF-8 at all are cut at len as they are.
 */
size_t	sp_utf8_trunc(char *s, size_t len);

/*
 * Replaces every byte of s that is not part of a well-formed UTF-8
 * sequence (RFC 3629: no overlong forms, surrogates or code points
 * above U+10FFFF) with '?'. Returns how many it replaced.
 */
size_t	sp_utf8_clean(char *s);

/*
 * At process start (S5): no core dumps (RLIMIT_CORE 0) and not dumpable
 * (PR_SET_DUMPABLE 0: no ptrace or /proc/PID/mem by the same user), as
 * a node's memory holds token PINs and keys.
 */
int	sp_harden_process(struct sp_err *err) SP_WUR;

#endif
