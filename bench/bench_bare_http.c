/*
 * A baseline for bench_ocsp.py: the least an evhttp server can do per
 * request. It answers every request with the bytes of FILE (read once) as
 * application/ocsp-response, on one event loop made the way the VA's
 * loops are (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST), with no parsing,
 * lookup or extra header. The gap between it and nginx is evhttp's; the
 * gap between it and the VA is the responder's.
 *
 * usage: bench_bare_http PORT FILE   (listens on 127.0.0.1 only)
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

static unsigned char	body[65536];
static size_t		body_len;

static void
on_request(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/ocsp-response");
	evbuffer_add_reference(evhttp_request_get_output_buffer(req), body,
	    body_len, NULL, NULL);
	evhttp_send_reply(req, 200, "OK", NULL);
}

int
main(int argc, char **argv)
{
	struct event_config	*cfg;
	struct event_base	*base;
	struct evhttp		*http;
	FILE			*f;

	if (argc != 3) {
		fprintf(stderr, "usage: bench_bare_http PORT FILE\n");
		return 2;
	}
	if ((f = fopen(argv[2], "rb")) == NULL) {
		perror(argv[2]);
		return 1;
	}
	body_len = fread(body, 1, sizeof(body), f);
	fclose(f);
	if ((cfg = event_config_new()) == NULL)
		return 1;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (base == NULL || (http = evhttp_new(base)) == NULL)
		return 1;
	evhttp_set_gencb(http, on_request, NULL);
	if (evhttp_bind_socket(http, "127.0.0.1",
	    (ev_uint16_t)atoi(argv[1])) != 0) {
		fprintf(stderr, "bench_bare_http: cannot listen on %s\n",
		    argv[1]);
		return 1;
	}
	event_base_dispatch(base);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
