/*
 * httpc: the client side of HTTP/1.1 that the bench tools (sse_client,
 * loadgen) share -- URL parsing, a loopback connect with TCP_NODELAY, an
 * incremental response parser (Content-Length, chunked, or to EOF) that
 * hands body bytes to a callback, and the monotonic clock in microseconds
 * (the same clock mock_fast stamps tokens with).  Prefix: hc_.
 */
#ifndef HC_HTTPC_H
#define HC_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hc_url {
	char host[64];
	int port;
	char path[1024];
};

/* "http://host:port/path" only.  0 or -1. */
int hc_url_parse(const char *url, struct hc_url *u);
/* A connected TCP socket (TCP_NODELAY; non-blocking when asked), or -1. */
int hc_connect(const struct hc_url *u, bool nonblock);
/* The request head + body of a POST (or a GET when body is NULL) into out;
 * its length, or -1 when out is too small. */
long hc_format_request(char *out, size_t len, const struct hc_url *u,
    const char *body, size_t blen);
/* CLOCK_MONOTONIC in microseconds. */
int64_t hc_now_us(void);
/* Read a whole file (for request bodies); NUL-terminated, caller frees. */
char *hc_read_file(const char *path, size_t *len);

typedef void (*hc_body_fn)(void *ud, const char *p, size_t n);

enum hc_state { HC_HEAD, HC_BODY_LEN, HC_BODY_EOF, HC_CHUNK_SIZE,
    HC_CHUNK_DATA, HC_CHUNK_CRLF, HC_TRAILER, HC_DONE };

/* One response being read.  Bounded: the head may not pass 16 KiB. */
struct hc_resp {
	enum hc_state state;
	int status;          /* 0 until the status line has arrived */
	bool keep_alive;     /* the server did not say Connection: close */
	uint64_t left;       /* body or chunk bytes still expected */
	hc_body_fn on_body;  /* may be NULL */
	void *ud;
	size_t headlen;
	char head[16384];
	char line[64];       /* a chunk-size line being read */
	size_t linelen;
};

void hc_resp_init(struct hc_resp *r, hc_body_fn on_body, void *ud);
/* Feed bytes; returns how many were used (it stops at the end of the
 * response, so the rest belongs to the next one), or -1 on a protocol
 * error.  The response is complete when r->state == HC_DONE. */
long hc_resp_feed(struct hc_resp *r, const char *p, size_t n);
/* The peer closed: completes a read-to-EOF body.  0, or -1 when the
 * response was cut short. */
int hc_resp_eof(struct hc_resp *r);

#endif
