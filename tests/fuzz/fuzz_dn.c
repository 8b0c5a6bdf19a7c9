/*
 * libFuzzer target for dn_parse(): whatever parses must print, and the
 * printed form must parse back to an equal name (X509_NAME_cmp() 0).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "crypto/dn.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char	 buf[DN_MAX_LEN + 2];	/* one over the limit */
	struct sp_err	 err = { 0 };
	X509_NAME	*name = NULL, *back = NULL;
	char		*s = NULL;
	size_t		 n;

	n = size < sizeof(buf) - 1 ? size : sizeof(buf) - 1;
	memcpy(buf, data, n);
	buf[n] = '\0';
	if (dn_parse(buf, &name, NULL) != 0)
		goto out;
	if ((s = dn_print(name)) == NULL)
		abort();
	/*
	 * Printing may legitimately outgrow DN_MAX_LEN: raw control bytes
	 * come back as \XX, unknown attributes as #hex of their DER.
	 */
	if (strlen(s) > DN_MAX_LEN)
		goto out;
	if (dn_parse(s, &back, &err) != 0) {
		fprintf(stderr, "re-parse of \"%s\" failed: %s\n", s, err.msg);
		abort();
	}
	if (X509_NAME_cmp(name, back) != 0) {
		fprintf(stderr, "\"%s\" re-parses to another name\n", s);
		abort();
	}
 out:
	free(s);
	X509_NAME_free(back);
	X509_NAME_free(name);
	return 0;
}
