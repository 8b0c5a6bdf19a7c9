/*
 * RFC 4514 distinguished name strings. The parser is our own, one
 * character at a time with every buffer bounded, because OpenSSL has no
 * RFC 4514 parser (X509_NAME_add_entry_by_txt() takes one attribute at a
 * time, and the "openssl req -subj" parser uses another syntax).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "crypto/dn.h"
#include "util/util.h"

/*
 * Characters in an attribute type. X509_NAME_print_ex() truncates OIDs to
 * 79 characters (do_name_ex()'s objtmp[80]), so longer ones would not
 * print back.
 */
#define TYPE_MAX	64
/* A '#' hex value: the DER of a string of at most DN_MAX_VALUE bytes. */
#define HEXVAL_MAX	(2 * (DN_MAX_VALUE + 8))

/*
 * Short names matched without regard to case (RFC 4514 section 3 makes
 * attribute type names case insensitive; OBJ_txt2nid() is not).
 */
static const int ci_nids[] = {
	NID_commonName, NID_countryName, NID_localityName,
	NID_stateOrProvinceName, NID_organizationName,
	NID_organizationalUnitName, NID_streetAddress, NID_surname,
	NID_givenName, NID_serialNumber, NID_title, NID_pkcs9_emailAddress,
	NID_domainComponent, NID_userId, NID_initials, NID_pseudonym,
	NID_dnQualifier, NID_generationQualifier, NID_name, NID_postalCode,
	NID_businessCategory, NID_organizationIdentifier, NID_description,
	NID_jurisdictionCountryName, NID_jurisdictionStateOrProvinceName,
	NID_jurisdictionLocalityName,
};

/*
 * OID arcs holding naming attributes. A name or OID that OpenSSL knows
 * outside them (sha256, rsaEncryption) is not an attribute type; an OID
 * that OpenSSL does not know at all is accepted as a private attribute.
 */
static const char *const attr_arcs[] = {
	"2.5.4.",			/* X.520 */
	"1.2.840.113549.1.9.",		/* PKCS #9 */
	"0.9.2342.19200300.100.1.",	/* RFC 4519: UID, DC */
	"1.3.6.1.4.1.311.60.2.1.",	/* CA/B Forum EV jurisdiction */
};

struct parser {
	const char	*s;
	size_t		 pos;
	struct sp_err	*err;
};

static int
err_at(struct parser *p, const char *what)
{
	return sp_err_set(p->err, SP_ERR_INVALID, "DN position %zu: %s",
	    p->pos + 1, what);
}

static void
skip_spaces(struct parser *p)
{
	while (p->s[p->pos] == ' ')
		p->pos++;
}

static bool
is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 4514 numericoid: number 1*( "." number ), no leading zeros. */
static bool
numericoid_valid(const char *t)
{
	size_t	arcs = 0;

	for (;;) {
		if (!is_digit(*t))
			return false;
		if (*t == '0' && is_digit(t[1]))
			return false;
		while (is_digit(*t))
			t++;
		arcs++;
		if (*t == '\0')
			break;
		if (*t++ != '.')
			return false;
	}
	return arcs >= 2;
}

static bool
in_attr_arcs(const ASN1_OBJECT *obj)
{
	char	buf[TYPE_MAX + 1];
	int	n;

	n = OBJ_obj2txt(buf, sizeof(buf), obj, 1);
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return false;
	for (size_t i = 0; i < sizeof(attr_arcs) / sizeof(attr_arcs[0]); i++)
		if (strncmp(buf, attr_arcs[i], strlen(attr_arcs[i])) == 0)
			return true;
	return false;
}

/*
 * Reads an attribute type (descr or numericoid) into *obj, and its text
 * into name for messages.
 */
static int
parse_type(struct parser *p, char *name, size_t namesz, ASN1_OBJECT **obj)
{
	const char	*c;
	size_t		 n = 0;
	int		 nid = NID_undef;
	bool		 numeric;

	*obj = NULL;
	numeric = is_digit(p->s[p->pos]);
	if (!numeric && !is_alpha(p->s[p->pos]))
		return err_at(p, p->s[p->pos] == '\0' ?
		    "attribute type expected at end of string" :
		    "attribute type expected");
	/* keystring = leadkeychar *keychar; keychar = ALPHA / DIGIT / "-" */
	for (c = p->s + p->pos; is_alpha(*c) || is_digit(*c) || *c == '-' ||
	    (numeric && *c == '.'); c++) {
		if (n + 1 >= namesz)
			return err_at(p, "attribute type too long");
		name[n++] = *c;
	}
	name[n] = '\0';

	if (numeric) {
		if (!numericoid_valid(name))
			return err_at(p, "malformed OID");
		*obj = OBJ_txt2obj(name, 1);
	} else {
		if ((nid = OBJ_txt2nid(name)) == NID_undef) {
			for (size_t i = 0; i < sizeof(ci_nids) /
			    sizeof(ci_nids[0]); i++) {
				if (strcasecmp(name, OBJ_nid2sn(ci_nids[i])) ==
				    0 || strcasecmp(name,
				    OBJ_nid2ln(ci_nids[i])) == 0) {
					nid = ci_nids[i];
					break;
				}
			}
		}
		if (nid != NID_undef)
			*obj = OBJ_nid2obj(nid);
	}
	if (*obj == NULL) {
		ERR_clear_error();
		return sp_err_set(p->err, SP_ERR_INVALID,
		    "DN position %zu: unknown attribute type %s", p->pos + 1,
		    name);
	}
	if ((!numeric || OBJ_obj2nid(*obj) != NID_undef) &&
	    !in_attr_arcs(*obj)) {
		ASN1_OBJECT_free(*obj);
		*obj = NULL;
		return sp_err_set(p->err, SP_ERR_INVALID,
		    "DN position %zu: %s is not an attribute type",
		    p->pos + 1, name);
	}
	p->pos += n;
	return 0;
}

/*
 * "#" hexstring (RFC 4514 section 2.4): the BER of the value. Only string
 * types are accepted; their contents, as UTF-8, then go through the same
 * checks and encoding rules as a plain value.
 */
static int
parse_hexvalue(struct parser *p, const char *name, unsigned char *val,
    size_t *vlen)
{
	unsigned char		 der[HEXVAL_MAX / 2];
	const unsigned char	*q = der;
	ASN1_TYPE		*at = NULL;
	unsigned char		*utf8 = NULL;
	size_t			 n = 0;
	int			 hi, lo, ulen, r = SP_ERR_INVALID;

	p->pos++;	/* '#' */
	while ((hi = sp_hex_digit(p->s[p->pos])) >= 0) {
		if ((lo = sp_hex_digit(p->s[p->pos + 1])) < 0) {
			p->pos++;
			r = err_at(p, "odd number of hex digits");
			goto out;
		}
		if (n >= sizeof(der)) {
			r = sp_err_set(p->err, SP_ERR_INVALID,
			    "%s: hex value too long", name);
			goto out;
		}
		der[n++] = (unsigned char)(hi << 4 | lo);
		p->pos += 2;
	}
	skip_spaces(p);
	if (p->s[p->pos] != '\0' && p->s[p->pos] != ',' &&
	    p->s[p->pos] != '+') {
		r = err_at(p, "bad character in hex value");
		goto out;
	}
	if (n == 0) {
		r = sp_err_set(p->err, SP_ERR_INVALID, "%s: empty value",
		    name);
		goto out;
	}
	if ((at = d2i_ASN1_TYPE(NULL, &q, (long)n)) == NULL ||
	    q != der + n) {
		r = sp_err_set(p->err, SP_ERR_INVALID,
		    "%s: hex value is not valid DER", name);
		goto out;
	}
	switch (at->type) {
	case V_ASN1_UTF8STRING:
	case V_ASN1_PRINTABLESTRING:
	case V_ASN1_IA5STRING:
	case V_ASN1_T61STRING:
	case V_ASN1_VISIBLESTRING:
	case V_ASN1_BMPSTRING:
	case V_ASN1_UNIVERSALSTRING:
		break;
	default:
		r = sp_err_set(p->err, SP_ERR_INVALID,
		    "%s: hex value is not a string", name);
		goto out;
	}
	/* Returns the length or a negative value on error. */
	if ((ulen = ASN1_STRING_to_UTF8(&utf8, at->value.asn1_string)) < 0) {
		r = sp_err_set(p->err, SP_ERR_INVALID,
		    "%s: hex value is not a valid string", name);
		goto out;
	}
	if ((size_t)ulen > DN_MAX_VALUE) {
		r = sp_err_set(p->err, SP_ERR_INVALID,
		    "%s: value longer than %d bytes", name, DN_MAX_VALUE);
		goto out;
	}
	memcpy(val, utf8, (size_t)ulen);
	*vlen = (size_t)ulen;
	r = 0;
 out:
	if (r != 0)
		ERR_clear_error();
	OPENSSL_free(utf8);
	ASN1_TYPE_free(at);
	return r;
}

/*
 * Reads a value up to an unescaped ',' '+' or the end into val (at least
 * DN_MAX_VALUE bytes). Unescaped spaces at either end are dropped.
 */
static int
parse_value(struct parser *p, const char *name, unsigned char *val,
    size_t *vlen)
{
	const char	*s = p->s;
	size_t		 n = 0, keep = 0;
	int		 hi, lo;
	unsigned char	 c;
	bool		 esc;

	*vlen = 0;
	skip_spaces(p);
	/*
	 * A '#' that no hex digit follows cannot start a hexstring, so it is
	 * taken literally: X509_NAME_print_ex() does not escape a value that
	 * is just "#" (the last-character flag overrides the first's).
	 */
	if (s[p->pos] == '#' && sp_hex_digit(s[p->pos + 1]) >= 0)
		return parse_hexvalue(p, name, val, vlen);
	for (;;) {
		c = (unsigned char)s[p->pos];
		if (c == '\0' || c == ',' || c == '+')
			break;
		if (c == '"' || c == ';' || c == '<' || c == '>')
			return err_at(p, "character must be escaped with '\\'");
		esc = c == '\\';
		if (esc) {
			p->pos++;
			c = (unsigned char)s[p->pos];
			if ((hi = sp_hex_digit((char)c)) >= 0) {
				if ((lo = sp_hex_digit(s[p->pos + 1])) < 0)
					return err_at(p,
					    "'\\' needs two hex digits");
				c = (unsigned char)(hi << 4 | lo);
				p->pos++;
			} else if (c == '\0' || strchr("\\\"+,;<> #=",
			    c) == NULL)
				return err_at(p, "bad escape sequence");
		}
		if (n >= DN_MAX_VALUE)
			return sp_err_set(p->err, SP_ERR_INVALID,
			    "%s: value longer than %d bytes", name,
			    DN_MAX_VALUE);
		val[n++] = c;
		/* An escaped space is significant even at the end. */
		if (esc || c != ' ')
			keep = n;
		p->pos++;
	}
	*vlen = keep;
	return 0;
}

/* Checks a value and turns it into a name entry (*out, caller frees). */
static int
make_entry(const ASN1_OBJECT *obj, const char *name,
    const unsigned char *val, size_t vlen, X509_NAME_ENTRY **out,
    struct sp_err *err)
{
	const char	*reason;
	unsigned long	 e;
	int		 nid = OBJ_obj2nid(obj);

	*out = NULL;
	if (vlen == 0)
		return sp_err_set(err, SP_ERR_INVALID, "%s: empty value", name);
	/* A NUL would let "a.com\0.evil" compare as "a.com" in C code. */
	if (memchr(val, '\0', vlen) != NULL)
		return sp_err_set(err, SP_ERR_INVALID,
		    "%s: value contains a NUL byte", name);
	if (nid == NID_countryName && (vlen != 2 || !is_alpha((char)val[0]) ||
	    !is_alpha((char)val[1])))
		return sp_err_set(err, SP_ERR_INVALID,
		    "%s: must be a two-letter country code", name);
	/*
	 * MBSTRING_UTF8 lets OpenSSL's string table pick the type and apply
	 * the X.520 upper bounds: PrintableString for C (and serialNumber,
	 * dnQualifier), IA5String for emailAddress and DC, otherwise
	 * UTF8String (the default "utf8only" mask).
	 */
	if ((*out = X509_NAME_ENTRY_create_by_OBJ(NULL, obj, MBSTRING_UTF8,
	    val, (int)vlen)) == NULL) {
		e = ERR_peek_last_error();
		if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) {
			ERR_clear_error();
			return sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		}
		reason = ERR_reason_error_string(e);
		sp_err_set(err, SP_ERR_INVALID, "%s: bad value (%s)", name,
		    reason != NULL ? reason : "rejected");
		ERR_clear_error();
		return SP_ERR_INVALID;
	}
	return 0;
}

int
dn_parse(const char *s, X509_NAME **out, struct sp_err *err)
{
	struct parser			 p = { s, 0, err };
	STACK_OF(X509_NAME_ENTRY)	*ents = NULL;
	X509_NAME_ENTRY			*ne = NULL;
	X509_NAME			*name = NULL;
	ASN1_OBJECT			*obj = NULL;
	unsigned char			 val[DN_MAX_VALUE];
	char				 tname[TYPE_MAX + 1];
	size_t				 rdn[DN_MAX_ATTRS];
	size_t				 vlen, nrdn = 0;
	int				 i, n, r = SP_ERR_INVALID;

	*out = NULL;
	if (s == NULL)
		return sp_err_set(err, SP_ERR_INVALID, "DN missing");
	if (strnlen(s, DN_MAX_LEN + 1) > DN_MAX_LEN)
		return sp_err_set(err, SP_ERR_INVALID,
		    "DN longer than %d characters", DN_MAX_LEN);
	skip_spaces(&p);
	if (s[p.pos] == '\0')
		return sp_err_set(err, SP_ERR_INVALID, "DN is empty");
	if ((ents = sk_X509_NAME_ENTRY_new_null()) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}

	for (;;) {
		skip_spaces(&p);
		if ((r = parse_type(&p, tname, sizeof(tname), &obj)) != 0)
			goto out;
		skip_spaces(&p);
		if (s[p.pos] != '=') {
			r = err_at(&p, "'=' expected after attribute type");
			goto out;
		}
		p.pos++;
		if ((r = parse_value(&p, tname, val, &vlen)) != 0)
			goto out;
		if (sk_X509_NAME_ENTRY_num(ents) >= DN_MAX_ATTRS) {
			r = sp_err_set(err, SP_ERR_INVALID,
			    "DN has more than %d attributes", DN_MAX_ATTRS);
			goto out;
		}
		if ((r = make_entry(obj, tname, val, vlen, &ne, err)) != 0)
			goto out;
		ASN1_OBJECT_free(obj);
		obj = NULL;
		rdn[sk_X509_NAME_ENTRY_num(ents)] = nrdn;
		if (sk_X509_NAME_ENTRY_push(ents, ne) <= 0) {
			r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
			goto out;
		}
		ne = NULL;
		if (s[p.pos] == '\0')
			break;
		if (s[p.pos] == ',')
			nrdn++;
		p.pos++;	/* ',' or '+' */
	}

	/*
	 * The string lists the most specific RDN first; the encoding lists
	 * it last. Walking the AVAs backwards reverses the RDNs, and within
	 * a multi-valued RDN also the AVAs, which X509_NAME_print_ex() with
	 * XN_FLAG_DN_REV reverses back. set 0 at loc -1 starts a new RDN at
	 * the end; set -1 adds to the last one.
	 */
	if ((name = X509_NAME_new()) == NULL) {
		r = sp_err_set(err, SP_ERR_ALLOC, "out of memory");
		goto out;
	}
	n = sk_X509_NAME_ENTRY_num(ents);
	for (i = n - 1; i >= 0; i--) {
		if (!X509_NAME_add_entry(name, sk_X509_NAME_ENTRY_value(ents,
		    i), -1, i < n - 1 && rdn[i] == rdn[i + 1] ? -1 : 0)) {
			r = sp_err_ossl(err, SP_ERR_ALLOC,
			    "X509_NAME_add_entry");
			goto out;
		}
	}
	*out = name;
	name = NULL;
	r = 0;
 out:
	ASN1_OBJECT_free(obj);
	X509_NAME_ENTRY_free(ne);
	sk_X509_NAME_ENTRY_pop_free(ents, X509_NAME_ENTRY_free);
	X509_NAME_free(name);
	return r;
}

char *
dn_print(const X509_NAME *name)
{
	BIO	*b = NULL;
	char	*data, *s = NULL;
	long	 len;

	if (name == NULL)
		return NULL;
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	/*
	 * RFC 2253/4514 form without escaping bytes above 0x7f, so UTF-8
	 * stays readable. This odd API returns the number of bytes written,
	 * or -1 on error (or 1/0 with XN_FLAG_COMPAT, unused here).
	 */
	if (X509_NAME_print_ex(b, name, 0,
	    XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
		goto out;
	if ((len = BIO_get_mem_data(b, &data)) < 0)
		goto out;
	if ((s = malloc((size_t)len + 1)) == NULL)
		goto out;
	if (len > 0)	/* an empty name has no buffer at all */
		memcpy(s, data, (size_t)len);
	s[len] = '\0';
 out:
	ERR_clear_error();
	BIO_free(b);
	return s;
}

/* The first control character in UTF-8 u, or -1. */
static long
first_control(const unsigned char *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return u[i];
		/* U+0080..U+009F are C2 80..C2 9F. */
		if (u[i] == 0xc2 && i + 1 < n && u[i + 1] >= 0x80 &&
		    u[i + 1] <= 0x9f)
			return u[i + 1];
	}
	return -1;
}

int
dn_check_string(const ASN1_STRING *s, const char *what, size_t max,
    struct sp_err *err)
{
	unsigned char		*u = NULL;
	long			 c;
	int			 n, type, r = SP_ERR_INVALID;

	if (s == NULL)
		return sp_err_set(err, r, "%s: no value", what);
	type = ASN1_STRING_type(s);
	/*
	 * Returns the length of the UTF-8 copy, or a negative value if the
	 * type is not a string type or the contents do not decode (odd
	 * BMPString length, invalid UTF-8 ...).
	 */
	if ((n = ASN1_STRING_to_UTF8(&u, s)) < 0) {
		ERR_clear_error();
		sp_err_set(err, r, "%s: not a valid %s", what,
		    ASN1_tag2str(type));
		goto out;
	}
	if (max > 0 && (size_t)n > max) {
		sp_err_set(err, r, "%s: value longer than %zu bytes", what,
		    max);
		goto out;
	}
	if ((c = first_control(u, (size_t)n)) >= 0) {
		sp_err_set(err, r, "%s: control character U+%04lX is not "
		    "allowed", what, (unsigned long)c);
		goto out;
	}
	r = 0;
 out:
	OPENSSL_free(u);
	return r;
}

int
dn_check_values(const X509_NAME *name, const char *what,
    struct sp_err *err)
{
	const X509_NAME_ENTRY	*e;
	const ASN1_OBJECT	*obj;
	char			 type[TYPE_MAX + 1], label[TYPE_MAX + 64];
	int			 n, nid;

	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		e = X509_NAME_get_entry(name, i);
		obj = X509_NAME_ENTRY_get_object(e);
		/* Short name if OpenSSL has one, else the dotted OID. */
		if ((nid = OBJ_obj2nid(obj)) != NID_undef &&
		    OBJ_nid2sn(nid) != NULL)
			snprintf(type, sizeof(type), "%s", OBJ_nid2sn(nid));
		else if ((n = OBJ_obj2txt(type, sizeof(type), obj, 1)) <= 0 ||
		    (size_t)n >= sizeof(type))
			snprintf(type, sizeof(type), "attribute %d", i + 1);
		snprintf(label, sizeof(label), "%s %s", what, type);
		if (dn_check_string(X509_NAME_ENTRY_get_data(e), label,
		    DN_MAX_VALUE, err) != 0)
			return SP_ERR_INVALID;
	}
	return 0;
}
