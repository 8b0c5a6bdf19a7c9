#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "admin/proto.h"
#include "cli/cli.h"
#include "cli/cli_int.h"
#include "cli/cli_yaml.h"
#include "node/node.h"
#include "util/log.h"
#include "util/util.h"

#define FILE_MAX	(64 * 1024)	/* CSR files */
#define PIN_FILE_MAX	1024

static const struct cmd *const tables[] = {
	cli_cmds_ca, cli_cmds_authz, cli_cmds_peer, cli_cmds_kb, cli_cmds_va,
	cli_cmds_pub,
	cli_cmds_debug,
};
#define NTABLES	(sizeof(tables) / sizeof(tables[0]))


static bool	json_out;

static void
usage_all(FILE *f)
{
	fprintf(f, "usage: sallyport [-d DIR] [--json] COMMAND ...\n\n"
	    "  sallyport init DIR [--name NAME] [--peer-listen HOST:PORT]\n"
	    "      [--va-listen HOST:PORT]\n"
	    "                                     create a node directory\n"
	    "  sallyport run DIR                  run a node (foreground)\n"
	    "  sallyport check DIR                validate its configuration"
	    "\n\nCommands for a running node (-d DIR or SALLYPORT_DIR):\n");
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct cmd *c = tables[t]; c->noun; c++) {
			const char *nl = strchr(c->usage, '\n');
			int len = nl ? (int)(nl - c->usage) :
			    (int)strlen(c->usage);

			fprintf(f, "  sallyport %.*s\n", len, c->usage);
		}
	fprintf(f, "\nEvery command takes --help. --json prints results as "
	    "JSON.\nExit status: 0 ok, 1 refused or failed, 2 usage, 3 node "
	    "not reachable.\n");
}

/* "sallyport: WHAT ARG" and the command's usage; returns CLI_USAGE. */
static int
usage_err(const char *usage, const char *what, const char *arg)
{
	fprintf(stderr, "sallyport: %s %s\nusage: sallyport %s\n", what, arg,
	    usage);
	return CLI_USAGE;
}

static char *
file_b64(const char *path, struct sp_err *err)
{
	char	*data = NULL, *b64;
	size_t	 len;

	if (sp_file_read(path, FILE_MAX, &data, &len, err) != 0)
		return NULL;
	if ((b64 = malloc(4 * ((len + 2) / 3) + 1)) != NULL)
		EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)data,
		    (int)len);
	free(data);
	return b64;
}

static char *
pin_file(const char *path, struct sp_err *err)
{
	char	*data = NULL;
	size_t	 len;

	size_t	 n;

	if (sp_file_read(path, PIN_FILE_MAX, &data, &len, err) != 0)
		return NULL;
	/* Wipe what follows the first line, so strlen() covers the rest. */
	n = strcspn(data, "\r\n");
	OPENSSL_cleanse(data + n, len - n);
	return data;
}

/* Builds the request arguments from argv per the command's spec. */
static int
parse_args(const struct cmd *c, int argc, char **argv, json_t *args)
{
	struct sp_err	 err = { 0 };
	int		 npos = 0;

	for (int i = 0; i < argc; i++) {
		const struct opt	*o = NULL;
		const char		*v = NULL;
		long long		 n;
		const char		*errstr;
		char			*s;
		json_t			*jv;

		if (strncmp(argv[i], "--", 2) != 0) {
			if (npos >= MAX_POS || c->pos[npos] == NULL)
				return usage_err(c->usage, "unexpected argument",
				    argv[i]);
			/* "@key": the argument names a file sent as base64. */
			if (c->pos[npos][0] == '@') {
				if ((s = file_b64(argv[i], &err)) == NULL) {
					fprintf(stderr, "sallyport: %s\n",
					    err.msg);
					return CLI_FAILED;
				}
				json_object_set_new(args, c->pos[npos++] + 1,
				    json_string(s));
				free(s);
				continue;
			}
			json_object_set_new(args, c->pos[npos] +
			    (c->pos[npos][0] == '?'), json_string(argv[i]));
			npos++;
			continue;
		}
		for (int k = 0; k < MAX_OPTS && c->opts[k].flag; k++)
			if (strcmp(c->opts[k].flag, argv[i]) == 0)
				o = &c->opts[k];
		if (o == NULL)
			return usage_err(c->usage, "unknown option %s",
			    argv[i]);
		if (o->type != O_BOOL) {
			if (i + 1 >= argc)
				return usage_err(c->usage, "needs a value:",
				    argv[i]);
			v = argv[++i];
		}
		switch (o->type) {
		case O_STR:
			jv = json_string(v);
			/* Shortens the time a --pin is readable in /proc. */
			if (strcmp(o->key, "pin") == 0)
				OPENSSL_cleanse(argv[i], strlen(argv[i]));
			break;
		case O_INT:
			if (sp_strtonum(v, 0, INT_MAX, &n, &errstr) != 0)
				return usage_err(c->usage, "must be a "
				    "number:", o->flag);
			jv = json_integer(n);
			break;
		case O_BOOL:
			jv = json_true();
			break;
		case O_LIST:
			if ((jv = json_object_get(args, o->key)) == NULL) {
				json_object_set_new(args, o->key, json_array());
				jv = json_object_get(args, o->key);
			}
			json_array_append_new(jv, json_string(v));
			continue;
		case O_FILE:
		case O_PINFILE:
			s = o->type == O_FILE ? file_b64(v, &err) :
			    pin_file(v, &err);
			if (s == NULL) {
				fprintf(stderr, "sallyport: %s\n", err.msg);
				return CLI_FAILED;
			}
			jv = json_string(s);
			if (o->type == O_PINFILE)
				sp_freezero(s, strlen(s));
			else
				free(s);
			break;
		default:
			return CLI_USAGE;
		}
		if (jv == NULL) {
			fprintf(stderr, "sallyport: invalid value for %s\n",
			    o->flag);
			return CLI_USAGE;
		}
		json_object_set_new(args, o->key, jv);
	}
	for (int k = 0; k < MAX_POS && c->pos[k]; k++) {
		const char *key = c->pos[k] + (c->pos[k][0] == '@');

		if (c->pos[k][0] == '?')
			continue;
		if (json_object_get(args, key) == NULL)
			return usage_err(c->usage, "missing", key);
	}
	for (int k = 0; k < MAX_OPTS && c->opts[k].flag; k++)
		if (c->opts[k].required &&
		    json_object_get(args, c->opts[k].key) == NULL)
			return usage_err(c->usage, "missing",
			    c->opts[k].flag);
	if (json_object_get(args, "pin") == NULL && (strcmp(c->admin,
	    "token.create") == 0 || strcmp(c->admin, "token.activate") == 0))
		return usage_err(c->usage, "missing", "--pin or --pin-file");
	return CLI_OK;
}

/* An object on one line: k=v k=v. */
static void
print_inline(FILE *f, json_t *obj)
{
	const char	*k;
	json_t		*v;
	int		 first = 1;

	json_object_foreach(obj, k, v) {
		char *s = json_is_string(v) ? NULL :
		    json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));

		fprintf(f, "%s%s=%s", first ? "" : " ", k,
		    s ? s : json_string_value(v));
		free(s);
		first = 0;
	}
}

static void
print_scalar(FILE *f, json_t *v)
{
	char	*s;

	if (json_is_string(v))
		fputs(json_string_value(v), f);
	else if (json_is_array(v) && json_array_size(v) > 0 &&
	    json_is_object(json_array_get(v, 0))) {
		size_t	 i;
		json_t	*e;

		json_array_foreach(v, i, e) {
			fputs(i ? ", " : "", f);
			print_inline(f, e);
		}
	} else if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6))) !=
	    NULL) {
		fputs(s, f);
		free(s);
	}
}

static void
print_obj(json_t *obj, int indent)
{
	const char	*k;
	json_t		*v;

	json_object_foreach(obj, k, v) {
		if (strcmp(k, "pem") == 0)
			continue;
		if (json_is_object(v)) {
			printf("%*s%s:\n", indent, "", k);
			print_obj(v, indent + 2);
			continue;
		}
		if (json_is_array(v) && json_array_size(v) > 0 &&
		    json_is_object(json_array_get(v, 0))) {
			size_t	 i;
			json_t	*e;

			printf("%*s%s:\n", indent, "", k);
			json_array_foreach(v, i, e) {
				printf("%*s- ", indent + 2, "");
				print_inline(stdout, e);
				putchar('\n');
			}
			continue;
		}
		printf("%*s%-20s ", indent, "", k);
		print_scalar(stdout, v);
		putchar('\n');
	}
}

static void
print_table(json_t *arr, const char *cols)
{
	char	 buf[256], *save, *col;
	size_t	 i;
	json_t	*row;

	snprintf(buf, sizeof(buf), "%s", cols);
	for (col = strtok_r(buf, ",", &save); col != NULL;
	    col = strtok_r(NULL, ",", &save)) {
		for (char *p = col; *p; p++)
			putchar(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		putchar('\t');
	}
	putchar('\n');
	json_array_foreach(arr, i, row) {
		snprintf(buf, sizeof(buf), "%s", cols);
		for (col = strtok_r(buf, ",", &save); col != NULL;
		    col = strtok_r(NULL, ",", &save)) {
			print_scalar(stdout, json_object_get(row, col));
			putchar('\t');
		}
		putchar('\n');
	}
}

/* PEM is base64 in 64-column lines between the labels (RFC 7468). */
static char *
pem_wrap(const char *label, const char *b64)
{
	size_t	 len = strlen(b64), cap = len + len / 64 + 128;
	char	*out = malloc(cap), *p = out;

	if (out == NULL)
		return NULL;
	p += snprintf(p, cap, "-----BEGIN %s-----\n", label);
	for (size_t i = 0; i < len; i += 64) {
		size_t n = len - i < 64 ? len - i : 64;

		memcpy(p, b64 + i, n);
		p += n;
		*p++ = '\n';
	}
	snprintf(p, cap - (size_t)(p - out), "-----END %s-----\n", label);
	return out;
}

static int
print_result(const struct cmd *c, json_t *args, json_t *res)
{
	const char	*der = json_string_value(json_object_get(res, "der"));
	char		*pem = NULL;
	int		 r = CLI_OK;

	if (c->out == OUT_CERT || c->out == OUT_CRL) {
		if (der == NULL ||
		    (pem = pem_wrap(c->out == OUT_CERT ? "CERTIFICATE" :
		    "X509 CRL", der)) == NULL) {
			fprintf(stderr, "sallyport: bad response\n");
			return CLI_FAILED;
		}
		json_object_set_new(res, "pem", json_string(pem));
		if (c->out == OUT_CRL && json_is_true(json_object_get(args,
		    "der"))) {
			size_t		 len = strlen(der), pad = 0;
			unsigned char	*bin = malloc(len / 4 * 3 + 1);
			int		 n;

			if (len >= 2)
				pad = (der[len - 1] == '=') +
				    (der[len - 2] == '=');
			if (bin == NULL || (n = EVP_DecodeBlock(bin,
			    (const unsigned char *)der, (int)len)) < 0) {
				free(bin);
				free(pem);
				return CLI_FAILED;
			}
			fwrite(bin, 1, (size_t)n - pad, stdout);
			free(bin);
			free(pem);
			return CLI_OK;
		}
		json_object_del(res, "der");
	}
	if (json_out) {
		char *s = json_dumps(res, JSON_INDENT(2) | JSON_ENCODE_ANY |
		    JSON_REAL_PRECISION(6));

		if (s != NULL)
			printf("%s\n", s);
		free(s);
		free(pem);
		return r;
	}
	switch (c->out) {
	case OUT_OBJ:
		print_obj(res, 0);
		break;
	case OUT_TABLE:
		print_table(res, c->cols);
		break;
	case OUT_YAML:
		if (cli_yaml_print(stdout, res) != 0) {
			fprintf(stderr, "sallyport: cannot write YAML\n");
			r = CLI_FAILED;
		}
		break;
	case OUT_SHOW:
		print_obj(res, 0);
		__attribute__((fallthrough));
	case OUT_PEM:
		fputs(json_string_value(json_object_get(res, "pem")) ?: "",
		    stdout);
		break;
	case OUT_CERT:
	case OUT_CRL:
		fputs(pem, stdout);
		break;
	}
	free(pem);
	return r;
}

/* One progress line for a sync's status: a bar on a terminal. */
static void
sync_line(json_t *t, bool tty)
{
	long long	total = json_integer_value(json_object_get(t, "total"));
	long long	checked = json_integer_value(json_object_get(t,
			    "checked"));
	double		eta = json_real_value(json_object_get(t, "eta"));
	double		frac = total > 0 ? (double)checked / (double)total : 1;
	char		bar[31];
	int		w = (int)(frac * 30);

	if (frac > 1)
		frac = 1, w = 30;
	memset(bar, '#', (size_t)w);
	memset(bar + w, '.', (size_t)(30 - w));
	bar[30] = '\0';
	printf("%s%s %s [%s] %3.0f%% %lld/%lld checked, %lld pushed, %lld "
	    "failed, %.0f/s", tty ? "\r" : "",
	    json_string_value(json_object_get(t, "connector")) ?: "?",
	    json_string_value(json_object_get(t, "state")) ?: "?", bar,
	    frac * 100, checked, total,
	    (long long)json_integer_value(json_object_get(t, "pushed")),
	    (long long)json_integer_value(json_object_get(t, "failed")),
	    json_real_value(json_object_get(t, "rate")));
	if (eta >= 0)
		printf(", ETA %.0f s", eta);
	printf(tty ? "\033[K" : "\n");
	fflush(stdout);
}

/*
 * `peer sync status --watch`: the status once a second until no sync
 * (the one named, or any) is running. Exit 0 if it ended done.
 */
static int
watch_sync(const char *sock, const struct cmd *c, json_t *args)
{
	struct sp_err	 err = { 0 };
	json_t		*res, *t;
	bool		 tty = isatty(STDOUT_FILENO), running;
	bool		 ok = true;
	size_t		 i;

	for (;;) {
		res = NULL;
		json_incref(args);
		if (admin_call(sock, c->admin, args, &res, &err) != 0) {
			fprintf(stderr, "%ssallyport: %s\n", tty ? "\n" : "",
			    err.msg);
			return CLI_FAILED;
		}
		running = false;
		ok = true;
		if (json_is_object(res)) {	/* one connector named */
			t = json_array();
			json_array_append_new(t, res);
			res = t;
		}
		json_array_foreach(res, i, t) {
			const char *st = json_string_value(json_object_get(t,
			    "state"));

			if (st == NULL)
				continue;
			if (strcmp(st, "running") == 0)
				running = true;
			else if (strcmp(st, "done") != 0)
				ok = false;
			if (!tty || json_array_size(res) == 1)
				sync_line(t, tty);
		}
		json_decref(res);
		if (!running)
			break;
		sleep(1);
	}
	if (tty)
		putchar('\n');
	return ok ? CLI_OK : CLI_FAILED;
}

/* Wipes the PIN in the request arguments, if there is one. */
static void
pin_wipe(json_t *args)
{
	json_t	*pin = json_object_get(args, "pin");

	if (json_is_string(pin))
		OPENSSL_cleanse((char *)(uintptr_t)json_string_value(pin),
		    json_string_length(pin));
}

static int
run_admin(const char *dir, const struct cmd *c, int argc, char **argv)
{
	struct sp_err	 err = { 0 };
	json_t		*args = json_object(), *res = NULL;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	char		 sock[PATH_MAX];
	int		 r;

	if (args == NULL)
		return CLI_FAILED;
	if ((r = parse_args(c, argc, argv, args)) != CLI_OK) {
		pin_wipe(args);
		json_decref(args);
		return r;
	}
	if (dir == NULL) {
		pin_wipe(args);
		json_decref(args);
		fprintf(stderr, "sallyport: no node directory: use -d DIR or "
		    "set SALLYPORT_DIR\n");
		return CLI_USAGE;
	}
	if ((size_t)snprintf(sock, sizeof(sock), "%s/%s", dir, ADMIN_SOCKET) >=
	    sizeof(sock)) {
		pin_wipe(args);
		json_decref(args);
		fprintf(stderr, "sallyport: %s: path too long\n", dir);
		return CLI_USAGE;
	}
	/*
	 * A node that refuses or drops the connection must not kill us with
	 * SIGPIPE (S8): the write fails with EPIPE and admin_call() reports
	 * it as SP_ERR_CONNECT (exit 3). Restored for our own output, so
	 * `| head` still ends us the usual way.
	 */
	if (sigaction(SIGPIPE, &ign, &old) == -1) {
		pin_wipe(args);
		json_decref(args);
		fprintf(stderr, "sallyport: sigaction: %s\n", strerror(errno));
		return CLI_FAILED;
	}
	if (json_is_true(json_object_get(args, "watch"))) {
		json_object_del(args, "watch");
		r = watch_sync(sock, c, args);
		sigaction(SIGPIPE, &old, NULL);
		json_decref(args);
		return r;
	}
	json_incref(args);
	r = admin_call(sock, c->admin, args, &res, &err);
	sigaction(SIGPIPE, &old, NULL);
	if (r == SP_ERR_CONNECT) {
		fprintf(stderr, "sallyport: %s\n", err.msg);
		r = CLI_UNREACHABLE;
	} else if (r != 0) {
		fprintf(stderr, "sallyport: %s\n", err.msg);
		r = CLI_FAILED;
	} else
		r = print_result(c, args, res);
	json_decref(res);
	pin_wipe(args);
	json_decref(args);
	return r;
}

/*
 * Matches a verb of one or more words ("list", "incoming list") against
 * argv. Returns the words the command takes including the noun (1 for a
 * noun-only command), or 0 if it does not match.
 */
static int
verb_match(const char *verb, int argc, char **argv)
{
	int	words = 0;

	if (verb == NULL)
		return 1;
	while (*verb != '\0') {
		size_t len = strcspn(verb, " ");

		if (words >= argc || strlen(argv[words]) != len ||
		    strncmp(argv[words], verb, len) != 0)
			return 0;
		words++;
		verb += len;
		verb += strspn(verb, " ");
	}
	return words + 1;
}

/*
 * True if the nwords words in argv are the leading words of verb (a
 * "peer connector" prefix of "connector add"); nwords 0 matches any verb.
 */
static bool
verb_prefix(const char *verb, int nwords, char **argv)
{
	for (int i = 0; i < nwords; i++) {
		size_t len;

		if (verb == NULL)
			return false;
		verb += strspn(verb, " ");
		len = strcspn(verb, " ");
		if (len == 0 || strlen(argv[i]) != len ||
		    strncmp(argv[i], verb, len) != 0)
			return false;
		verb += len;
	}
	return true;
}

/*
 * Prints the usage lines of noun's commands whose verb starts with the
 * nwords words in argv. Returns how many it printed.
 */
static int
noun_usage(FILE *f, const char *noun, int nwords, char **argv)
{
	int	n = 0;

	for (size_t t = 0; t < NTABLES; t++)
		for (const struct cmd *c = tables[t]; c->noun; c++) {
			const char	*nl;
			int		 len;

			if (strcmp(noun, c->noun) != 0 ||
			    !verb_prefix(c->verb, nwords, argv))
				continue;
			nl = strchr(c->usage, '\n');
			len = nl ? (int)(nl - c->usage) : (int)strlen(c->usage);
			fprintf(f, "usage: sallyport %.*s\n", len, c->usage);
			n++;
		}
	return n;
}

/*
 * A known noun without a complete verb: with --help (or from `help NOUN`)
 * the usages of its verbs that start with the words given go to stdout,
 * exit 0; otherwise, or if no verb starts so, "unknown or missing verb"
 * and all its usages go to stderr, exit 2. False if noun is unknown.
 */
static bool
noun_known(const char *noun)
{
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct cmd *c = tables[t]; c->noun; c++)
			if (strcmp(noun, c->noun) == 0)
				return true;
	return false;
}

/*
 * A known noun without a complete verb: with help (NOUN ... --help, or
 * `help NOUN ...`) the usages of its verbs starting with the words given
 * go to stdout, exit 0; otherwise, or if no verb starts so, "unknown or
 * missing verb" and all its usages go to stderr, exit 2. False if noun
 * is unknown.
 */
static bool
noun_help(const char *noun, int argc, char **argv, bool help, int *rc)
{
	int	nwords = 0;

	if (!noun_known(noun))
		return false;
	while (nwords < argc && argv[nwords][0] != '-')
		nwords++;
	if (help && noun_usage(stdout, noun, nwords, argv) > 0) {
		printf("\n`sallyport %s VERB --help` describes a command.\n",
		    noun);
		*rc = CLI_OK;
		return true;
	}
	if (argc > 0)
		fprintf(stderr, "sallyport: %s: unknown verb \"%s\"\n", noun,
		    argv[0]);
	else
		fprintf(stderr, "sallyport: %s: missing verb\n", noun);
	noun_usage(stderr, noun, 0, argv);
	*rc = CLI_USAGE;
	return true;
}

static bool
want_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

static int
local_cmd(const char *name, int argc, char **argv)
{
	struct sp_err	 err = { 0 };
	const char	*dir = NULL, *nodename = NULL, *listen = NULL;
	const char	*valisten = NULL;
	int		 r;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--name") == 0 && strcmp(name, "init") == 0
		    && i + 1 < argc)
			nodename = argv[++i];
		else if (strcmp(argv[i], "--peer-listen") == 0 &&
		    strcmp(name, "init") == 0 && i + 1 < argc)
			listen = argv[++i];
		else if (strcmp(argv[i], "--va-listen") == 0 &&
		    strcmp(name, "init") == 0 && i + 1 < argc)
			valisten = argv[++i];
		else if (argv[i][0] != '-' && dir == NULL)
			dir = argv[i];
		else {
			fprintf(stderr, "sallyport: %s: unexpected argument "
			    "\"%s\"\n", name, argv[i]);
			return CLI_USAGE;
		}
	}
	if (dir == NULL) {
		fprintf(stderr, "usage: sallyport %s DIR%s\n", name,
		    strcmp(name, "init") == 0 ? " [--name NAME] "
		    "[--peer-listen HOST:PORT] [--va-listen HOST:PORT]" : "");
		return CLI_USAGE;
	}
	if (strcmp(name, "init") == 0) {
		log_init(LOG_LVL_WARN);	/* the result line says it all */
		if ((r = node_init(dir, nodename, listen, valisten,
		    &err)) == 0)
			printf("node initialised in %s\n", dir);
	} else if (strcmp(name, "check") == 0) {
		if ((r = node_check(dir, &err)) == 0)
			printf("%s/sallyport.conf: OK\n", dir);
	} else {
		r = node_run(dir, &err);
		libevent_global_shutdown();
	}
	if (r != 0) {
		if (strcmp(name, "run") == 0)
			log_warnx("%s", err.msg);
		else
			fprintf(stderr, "sallyport: %s\n", err.msg);
		return CLI_FAILED;
	}
	return CLI_OK;
}

static const char *const local_help[] = {
	"init", "init DIR [--name NAME] [--peer-listen HOST:PORT]\n"
	"    [--va-listen HOST:PORT]\n"
	"  Creates a node directory: DIR/sallyport.conf and the database.\n"
	"  --peer-listen sets the TLS listener for peer requests (the node "
	"that\n  a CA connects to; incoming requests stay refused until\n"
	"  `peer incoming enable`).\n"
	"  --va-listen sets the VA's plain HTTP listener for OCSP and CRL\n"
	"  clients ([va] listen).",
	"run", "run DIR\n"
	"  Runs the node in the foreground, logging to stderr, until SIGTERM"
	"\n  or SIGINT. The admin socket is DIR/admin.sock.",
	"check", "check DIR\n  Validates DIR/sallyport.conf and exits.",
};

int
cli_main(int argc, char **argv)
{
	const char	*dir = getenv("SALLYPORT_DIR");
	char		*rest[256];
	int		 nrest = 0, r;
	bool		 help = false;

	/* Global options anywhere before the command; --json anywhere. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json_out = true;
		else if (strcmp(argv[i], "-d") == 0 && nrest == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "sallyport: -d needs a "
				    "directory\n");
				return CLI_USAGE;
			}
			dir = argv[++i];
		} else if (nrest < 256)
			rest[nrest++] = argv[i];
		else
			return CLI_USAGE;
	}
	/* `help NOUN ...` is `NOUN ... --help`. */
	if (nrest > 1 && strcmp(rest[0], "help") == 0) {
		help = true;
		for (int i = 1; i < nrest; i++)
			rest[i - 1] = rest[i];
		nrest--;
	}
	if (nrest == 0 || strcmp(rest[0], "--help") == 0 ||
	    strcmp(rest[0], "help") == 0 || strcmp(rest[0], "-h") == 0) {
		usage_all(nrest == 0 ? stderr : stdout);
		return nrest == 0 ? CLI_USAGE : CLI_OK;
	}
	if (strcmp(rest[0], "--version") == 0 ||
	    strcmp(rest[0], "version") == 0) {
		printf("sallyport %s\n", SP_VERSION);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(local_help) / sizeof(local_help[0]);
	    i += 2) {
		if (strcmp(rest[0], local_help[i]) != 0)
			continue;
		if (help || want_help(nrest - 1, rest + 1)) {
			printf("usage: sallyport %s\n", local_help[i + 1]);
			return CLI_OK;
		}
		return local_cmd(rest[0], nrest - 1, rest + 1);
	}
	for (size_t t = 0; t < NTABLES; t++)
		for (const struct cmd *c = tables[t]; c->noun; c++) {
			int skip;

			if (strcmp(rest[0], c->noun) != 0 ||
			    (skip = verb_match(c->verb, nrest - 1, rest + 1)) == 0)
				continue;
			if (help || want_help(nrest - skip, rest + skip)) {
				printf("usage: sallyport %s\n", c->usage);
				return CLI_OK;
			}
			return run_admin(dir, c, nrest - skip, rest + skip);
		}
	/* A known noun with an unknown or partial verb: list its verbs. */
	if (noun_help(rest[0], nrest - 1, rest + 1, help ||
	    want_help(nrest - 1, rest + 1), &r))
		return r;
	fprintf(stderr, "sallyport: unknown command \"%s\"\n", rest[0]);
	usage_all(stderr);
	return CLI_USAGE;
}
