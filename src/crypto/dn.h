/*
 * Distinguished names as operators write them: RFC 4514 strings such as
 * "CN=Sub CA 1,O=Example,C=SE".
 */
#ifndef SP_CRYPTO_DN_H
#define SP_CRYPTO_DN_H

#include <openssl/x509.h>

#include "util/err.h"

#define DN_MAX_LEN	1024	/* characters in a DN string */
#define DN_MAX_ATTRS	32	/* attribute values in one DN */
#define DN_MAX_VALUE	256	/* bytes in one attribute value */

/*
 * Parses an RFC 4514 string into a new X509_NAME (*out, caller frees).
 * As RFC 4514 prescribes, the string lists RDNs most specific first, so
 * the encoding order is the reverse of the string order and dn_print()
 * gives back the same string. Attribute types are OpenSSL short or long
 * names (CN, O, OU, C, L, ST, DC, UID, serialNumber, emailAddress, ...) or
 * dotted OIDs. Handles '\' escapes (\, \+ \" \\ \< \> \; \= \# and \XX
 * hex pairs), '+' for multi-valued RDNs, and spaces around '=' and ','.
 * Values are UTF8String, except C (PrintableString, exactly two letters)
 * and emailAddress/DC (IA5String). Empty strings, empty values, unknown
 * attribute types and the limits above are errors (SP_ERR_INVALID) whose
 * message names the offending attribute or position.
 *
 * Details: type names are case insensitive ("cn"); names or OIDs OpenSSL
 * knows outside the naming arcs (X.520, PKCS #9, RFC 4519, EV
 * jurisdiction) are rejected, unknown OIDs are accepted as private
 * attributes; types are at most 64 characters. A '#' followed by hex is
 * an RFC 4514 hexstring (the DER of a string type, whose contents are then
 * encoded as a plain value would be); a '#' followed by anything else is
 * literal. DN_MAX_VALUE counts bytes after unescaping. Values holding a
 * NUL byte are rejected. OpenSSL's string table adds the X.520 upper
 * bounds (CN, O, OU at most 64 characters) and makes serialNumber and
 * dnQualifier PrintableString, as X.520 defines them.
 */
int	 dn_parse(const char *s, X509_NAME **out, struct sp_err *err) SP_WUR;

/*
 * RFC 4514 string of name (heap, caller frees), or NULL on failure.
 * UTF-8 is kept as is; control characters are escaped as \XX, values of
 * attributes OpenSSL does not know are printed as '#' hex. The result of
 * a dn_parse() name parses back to an equal name, unless escaping made it
 * longer than DN_MAX_LEN.
 */
char	*dn_print(const X509_NAME *name);

/*
 * Checks that s, an attribute value or a name in a subjectAltName that
 * came from outside (a CSR), is text: whatever its ASN.1 string type
 * (UTF8String, PrintableString, IA5String, BMPString, UniversalString,
 * T61String ...) it must decode to UTF-8 with ASN1_STRING_to_UTF8(), be
 * at most max bytes so decoded (0: no limit), and hold no control
 * character: C0 (U+0000-U+001F, so no NUL, the CVE-2009-2408 class), DEL
 * (U+007F) or C1 (U+0080-U+009F). OpenSSL decodes the one-byte types
 * (PrintableString, IA5String, T61String) as Latin-1, so a byte 0x80-0x9F
 * in them is a C1 control; other bytes above 0x7f are the caller's to
 * judge (dns_valid() in ca/profile.c). Returns
 * SP_ERR_INVALID with a message that starts with what ("subject CN").
 */
int	 dn_check_string(const ASN1_STRING *s, const char *what, size_t max,
	    struct sp_err *err) SP_WUR;

/*
 * dn_check_string() on every attribute value of name, with DN_MAX_VALUE
 * as the limit; the message names the attribute ("<what> CN: ..."). The
 * number of attributes and the length are the caller's to check (the
 * profile's subject_max_attrs and subject_max_len for a CSR).
 */
int	 dn_check_values(const X509_NAME *name, const char *what,
	    struct sp_err *err) SP_WUR;

#endif
