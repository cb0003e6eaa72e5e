/*
 * mock_fast: the loopback upstream `make bench` measures against.  One
 * thread, epoll, HTTP/1.1 keep-alive, TCP_NODELAY, no allocation per
 * request beyond a connection's buffers, so it is never the bottleneck.
 *
 * It speaks the OpenAI-compatible chat API.  What a reply looks like is
 * chosen per request by the base URL path, so one process plays every tier
 * of a chain at once:
 *
 *   base  http://127.0.0.1:P/t=20,first=0,gap=200,status=429
 *   call  POST /t=20,first=0,gap=200,status=429/chat/completions
 *
 * Keys (any path segment holding '=' is read; missing keys take defaults):
 *   t=N       tokens in the answer (16)
 *   first=MS  delay before the first token, or before a non-stream answer (0)
 *   gap=MS    delay between stream tokens (0 = all at once)
 *   status=N  HTTP status; non-2xx answers carry an OpenAI error body (200)
 *   ra=S      Retry-After seconds on an error answer (none)
 *   stream=0|1  force the reply kind (default: the body's "stream": true)
 *   shape=ok|empty|bad  empty text, or a body that is not JSON (ok)
 *   stamp=0|1 put "@<monotonic microseconds>" into every token (1)
 *   rl=1      send Groq-style x-ratelimit-* headers (quota not exhausted),
 *             as real free-tier providers do on every answer (0)
 *
 * Every token's text is "w<i>@<us> ", where <us> is CLOCK_MONOTONIC in
 * microseconds at the moment the token is written.  CLOCK_MONOTONIC is one
 * clock for every process of the machine, so a client reading the token at
 * the far end of the gateway knows exactly how long the relay took.
 *
 * Control: GET /_stats answers {"accepted": TCP connections accepted, ...};
 * POST /_reset zeroes the counters.  The first stdout line is "PORT <n>".
 * SIGTERM / SIGINT stop it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_MAX (32 * 1024)        /* one request: headers + body */
#define OUT_MAX (4 * 1024 * 1024) /* unsent output before we give up */
#define MAX_EVENTS 256
#define MAX_TOKENS 100000

enum shape { SHAPE_OK, SHAPE_EMPTY, SHAPE_BAD };

struct params {
	int tokens;
	int first_ms;
	int gap_ms;
	int status;
	int retry_after; /* -1 = no header */
	int stream;      /* -1 = as the body says */
	int stamp;
	int ratelimit;
	enum shape shape;
};

/* Where a connection is in its current request. */
enum phase {
	PH_IDLE,    /* reading the next request */
	PH_DELAY,   /* a non-stream answer waits for its due time */
	PH_STREAM   /* headers sent; tokens leave at their due times */
};

struct conn {
	int fd;
	enum phase phase;
	bool close_after;   /* the client asked for Connection: close */
	bool closing;       /* close once the output has drained */
	bool out_armed;     /* EPOLLOUT registered */
	struct params p;
	int sent;           /* stream tokens written */
	int64_t due_us;     /* next timer (PH_DELAY / PH_STREAM) */
	int heap_i;         /* index in the timer heap, -1 when absent */
	size_t inlen;
	char *out;
	size_t outlen, outoff, outcap;
	char in[IN_MAX];
};

static struct {
	int ep;
	int lfd;
	struct conn **heap;
	size_t nheap, capheap;
	uint64_t accepted, open, requests, chats, streams, errors_sent;
	uint64_t active_streams;
} g;

static volatile sig_atomic_t g_stop;

static void
on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- timer heap (min-heap of connections by due_us) ----------------- */

static void
heap_swap(size_t a, size_t b)
{
	struct conn *t = g.heap[a];

	g.heap[a] = g.heap[b];
	g.heap[b] = t;
	g.heap[a]->heap_i = (int)a;
	g.heap[b]->heap_i = (int)b;
}

static void
heap_up(size_t i)
{
	while (i > 0 && g.heap[(i - 1) / 2]->due_us > g.heap[i]->due_us) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < g.nheap && g.heap[l]->due_us < g.heap[m]->due_us)
			m = l;
		if (r < g.nheap && g.heap[r]->due_us < g.heap[m]->due_us)
			m = r;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

static int
heap_push(struct conn *c)
{
	if (g.nheap == g.capheap) {
		size_t n = g.capheap ? g.capheap * 2 : 1024;
		struct conn **h = realloc(g.heap, n * sizeof(*h));

		if (h == NULL)
			return -1;
		g.heap = h;
		g.capheap = n;
	}
	g.heap[g.nheap] = c;
	c->heap_i = (int)g.nheap++;
	heap_up((size_t)c->heap_i);
	return 0;
}

static void
heap_remove(struct conn *c)
{
	size_t i = (size_t)c->heap_i;

	if (c->heap_i < 0)
		return;
	c->heap_i = -1;
	if (i == --g.nheap)
		return;
	g.heap[i] = g.heap[g.nheap];
	g.heap[i]->heap_i = (int)i;
	heap_up(i);
	heap_down((size_t)g.heap[i]->heap_i);
}

static int
schedule(struct conn *c, int64_t due)
{
	heap_remove(c);
	c->due_us = due;
	return heap_push(c);
}

/* ---- connections and output ----------------------------------------- */

static void
conn_close(struct conn *c)
{
	if (c->phase == PH_STREAM)
		g.active_streams--;
	heap_remove(c);
	epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
	g.open--;
}

static void
arm_out(struct conn *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0u),
	    .data.ptr = c };

	if (c->out_armed == on)
		return;
	c->out_armed = on;
	epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what is queued.  -1 when the connection broke. */
static int
flush_out(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return -1;
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	arm_out(c, c->outlen > 0);
	return 0;
}

/* Queue bytes and try to send them at once.  -1 on overflow or error. */
static int
send_bytes(struct conn *c, const char *p, size_t n)
{
	if (c->outlen + n > OUT_MAX)
		return -1;
	if (c->outlen + n > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		char *o;

		while (cap < c->outlen + n)
			cap *= 2;
		if ((o = realloc(c->out, cap)) == NULL)
			return -1;
		c->out = o;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
	return flush_out(c);
}

/* ---- reply builders --------------------------------------------------- */

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

/* What Groq sends with every answer (figures well above zero). */
static const char ratelimit_headers[] =
    "x-ratelimit-limit-requests: 14400\r\n"
    "x-ratelimit-limit-tokens: 6000\r\n"
    "x-ratelimit-remaining-requests: 14399\r\n"
    "x-ratelimit-remaining-tokens: 5900\r\n"
    "x-ratelimit-reset-requests: 6s\r\n"
    "x-ratelimit-reset-tokens: 1s\r\n";

/* A complete response with Content-Length. */
static int
send_full(struct conn *c, int status, const char *ctype,
    const char *extra, const char *body, size_t blen)
{
	char head[1024];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n%s%s%s\r\n", status,
	    reason(status), ctype, blen, extra ? extra : "",
	    c->p.ratelimit ? ratelimit_headers : "",
	    c->close_after ? "Connection: close\r\n" : "");

	if (n < 0 || (size_t)n >= sizeof(head) || send_bytes(c, head, (size_t)n) != 0)
		return -1;
	if (blen > 0 && send_bytes(c, body, blen) != 0)
		return -1;
	if (status >= 300)
		g.errors_sent++;
	if (c->close_after)
		c->closing = true;
	return 0;
}

/* The text of token i (0-based) into out; its length. */
static size_t
token_text(const struct params *p, int i, char *out, size_t len)
{
	int n;

	if (p->shape == SHAPE_EMPTY)
		return 0;
	if (p->stamp)
		n = snprintf(out, len, "w%d@%" PRId64 " ", i, now_us());
	else
		n = snprintf(out, len, "w%d ", i);
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/* The non-stream chat answer. */
static int
send_chat(struct conn *c)
{
	static char body[4096 * 32 + 1024]; /* up to 4096 tokens */
	size_t off, cap = sizeof(body) - 512;
	int t = c->p.tokens < 4096 ? c->p.tokens : 4096;

	if (c->p.shape == SHAPE_BAD)
		return send_full(c, 200, "application/json", NULL, "not json", 8);
	off = (size_t)snprintf(body, sizeof(body), "{\"id\":\"chatcmpl-bench\","
	    "\"object\":\"chat.completion\",\"created\":1700000000,"
	    "\"model\":\"mock-fast\",\"choices\":[{\"index\":0,\"message\":"
	    "{\"role\":\"assistant\",\"content\":\"");
	for (int i = 0; i < t && off < cap; i++)
		off += token_text(&c->p, i, body + off, sizeof(body) - off);
	off += (size_t)snprintf(body + off, sizeof(body) - off, "\"},"
	    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,"
	    "\"completion_tokens\":%d,\"total_tokens\":%d}}", t, t + 12);
	return send_full(c, 200, "application/json", NULL, body, off);
}

static int
send_error(struct conn *c)
{
	char body[256], extra[64] = "";
	const char *type = c->p.status == 429 ? "rate_limit_exceeded" :
	    c->p.status >= 500 ? "server_error" : "invalid_request_error";
	int n = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"mock"
	    " status %d\",\"type\":\"%s\",\"code\":\"%s\"}}", c->p.status,
	    type, type);

	if (c->p.retry_after >= 0)
		snprintf(extra, sizeof(extra), "Retry-After: %d\r\n",
		    c->p.retry_after);
	return send_full(c, c->p.status, "application/json", extra, body,
	    (size_t)n);
}

/* One SSE event as one HTTP chunk. */
static int
send_event(struct conn *c, const char *data, size_t n)
{
	char buf[1024];
	int len = snprintf(buf, sizeof(buf), "%zx\r\ndata: %.*s\n\n\r\n",
	    n + 8, (int)n, data);

	if (len < 0 || (size_t)len >= sizeof(buf))
		return -1;
	return send_bytes(c, buf, (size_t)len);
}

static int
send_delta(struct conn *c, const char *role, const char *text,
    size_t n)
{
	char ev[768];
	int len = snprintf(ev, sizeof(ev), "{\"id\":\"chatcmpl-bench\","
	    "\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
	    "\"model\":\"mock-fast\",\"choices\":[{\"index\":0,\"delta\":{%s%s%s"
	    "\"content\":\"%.*s\"},\"finish_reason\":null}]}",
	    role ? "\"role\":\"" : "", role ? role : "", role ? "\"," : "",
	    (int)n, text);

	if (len < 0 || (size_t)len >= sizeof(ev))
		return -1;
	return send_event(c, ev, (size_t)len);
}

/* Finish chunk, usage chunk (stream_options.include_usage), [DONE], end. */
static int
send_stream_end(struct conn *c)
{
	char ev[512];
	int n = snprintf(ev, sizeof(ev), "{\"id\":\"chatcmpl-bench\","
	    "\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
	    "\"model\":\"mock-fast\",\"choices\":[{\"index\":0,\"delta\":{},"
	    "\"finish_reason\":\"stop\"}]}");

	if (send_event(c, ev, (size_t)n) != 0)
		return -1;
	n = snprintf(ev, sizeof(ev), "{\"id\":\"chatcmpl-bench\","
	    "\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
	    "\"model\":\"mock-fast\",\"choices\":[],\"usage\":{\"prompt_tokens\""
	    ":12,\"completion_tokens\":%d,\"total_tokens\":%d}}", c->sent,
	    c->sent + 12);
	if (send_event(c, ev, (size_t)n) != 0 || send_event(c, "[DONE]", 6) != 0)
		return -1;
	if (send_bytes(c, "0\r\n\r\n", 5) != 0)
		return -1;
	c->phase = PH_IDLE;
	g.active_streams--;
	if (c->close_after)
		c->closing = true;
	return 0;
}

static int
stream_start(struct conn *c)
{
	static const char head[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
	    "Transfer-Encoding: chunked\r\n";

	if (send_bytes(c, head, sizeof(head) - 1) != 0 ||
	    (c->p.ratelimit && send_bytes(c, ratelimit_headers,
	    sizeof(ratelimit_headers) - 1) != 0) || send_bytes(c, "\r\n", 2) != 0)
		return -1;
	c->phase = PH_STREAM;
	c->sent = 0;
	g.streams++;
	g.active_streams++;
	/* A role-only preamble, as Groq sends: it must not commit a stream. */
	if (send_delta(c, "assistant", "", 0) != 0)
		return -1;
	return schedule(c, now_us() + (int64_t)c->p.first_ms * 1000);
}

/* The timer of a streaming connection fired: its next token(s). */
static int
stream_tick(struct conn *c)
{
	char t[64];

	do {
		size_t n = token_text(&c->p, c->sent, t, sizeof(t));

		if (send_delta(c, NULL, t, n) != 0)
			return -1;
		c->sent++;
	} while (c->p.gap_ms == 0 && c->sent < c->p.tokens);
	if (c->sent >= c->p.tokens)
		return send_stream_end(c);
	/* Due-based pacing: a late tick does not shift every later token. */
	return schedule(c, c->due_us + (int64_t)c->p.gap_ms * 1000);
}

static int
timer_fire(struct conn *c)
{
	if (c->phase == PH_DELAY) {
		c->phase = PH_IDLE;
		return c->p.status != 200 ? send_error(c) : send_chat(c);
	}
	if (c->p.tokens <= 0)
		return send_stream_end(c);
	return stream_tick(c);
}

/* ---- requests --------------------------------------------------------- */

static int
clamp(long v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : (int)v;
}

static void
parse_params(const char *path, size_t n, struct params *p)
{
	char buf[512];
	char *save = NULL, *tok;

	*p = (struct params){ .tokens = 16, .status = 200, .retry_after = -1,
	    .stream = -1, .stamp = 1, .shape = SHAPE_OK };
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, path, n);
	buf[n] = '\0';
	for (tok = strtok_r(buf, "/,", &save); tok; tok = strtok_r(NULL, "/,", &save)) {
		char *eq = strchr(tok, '=');
		long v;

		if (eq == NULL)
			continue;
		*eq++ = '\0';
		v = strtol(eq, NULL, 10);
		if (strcmp(tok, "t") == 0)
			p->tokens = clamp(v, 0, MAX_TOKENS);
		else if (strcmp(tok, "first") == 0)
			p->first_ms = clamp(v, 0, 3600000);
		else if (strcmp(tok, "gap") == 0)
			p->gap_ms = clamp(v, 0, 3600000);
		else if (strcmp(tok, "status") == 0)
			p->status = clamp(v, 100, 599);
		else if (strcmp(tok, "ra") == 0)
			p->retry_after = clamp(v, 0, 86400);
		else if (strcmp(tok, "stream") == 0)
			p->stream = v != 0;
		else if (strcmp(tok, "stamp") == 0)
			p->stamp = v != 0;
		else if (strcmp(tok, "rl") == 0)
			p->ratelimit = v != 0;
		else if (strcmp(tok, "shape") == 0)
			p->shape = strcmp(eq, "empty") == 0 ? SHAPE_EMPTY :
			    strcmp(eq, "bad") == 0 ? SHAPE_BAD : SHAPE_OK;
	}
}

/* true when the JSON body holds "stream": true (any spacing). */
static bool
body_streams(const char *b, size_t n)
{
	const char *end = b + n, *k = b;

	while ((k = memmem(k, (size_t)(end - k), "\"stream\"", 8)) != NULL) {
		k += 8;
		while (k < end && (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r'))
			k++;
		if (k >= end || *k != ':')
			continue;
		k++;
		while (k < end && (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r'))
			k++;
		return end - k >= 4 && memcmp(k, "true", 4) == 0;
	}
	return false;
}

static int
handle_stats(struct conn *c)
{
	char body[384];
	int n = snprintf(body, sizeof(body), "{\"accepted\":%" PRIu64
	    ",\"open\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"chats\":%" PRIu64
	    ",\"streams\":%" PRIu64 ",\"active_streams\":%" PRIu64
	    ",\"errors_sent\":%" PRIu64 "}\n", g.accepted, g.open, g.requests,
	    g.chats, g.streams, g.active_streams, g.errors_sent);

	return send_full(c, 200, "application/json", NULL, body, (size_t)n);
}

static int
handle_chat(struct conn *c, const char *path, size_t plen,
    const char *body, size_t blen)
{
	bool stream;

	parse_params(path, plen, &c->p);
	stream = c->p.stream >= 0 ? c->p.stream == 1 : body_streams(body, blen);
	g.chats++;
	if (stream && c->p.status == 200 && c->p.shape != SHAPE_BAD)
		return stream_start(c);
	if (c->p.first_ms == 0)
		return c->p.status != 200 ? send_error(c) : send_chat(c);
	c->phase = PH_DELAY;
	return schedule(c, now_us() + (int64_t)c->p.first_ms * 1000);
}

/* The value of header name in [h, end), or NULL. */
static const char *
header(const char *h, const char *end, const char *name,
    size_t *vlen)
{
	size_t nl = strlen(name);

	while (h < end) {
		const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);

		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - h) > nl && h[nl] == ':' &&
		    strncasecmp(h, name, nl) == 0) {
			const char *v = h + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			return v;
		}
		h = eol + 2;
	}
	return NULL;
}

/* Route one complete request.  -1 closes the connection. */
static int
route(struct conn *c, const char *line, size_t llen,
    const char *body, size_t blen)
{
	const char *sp1 = memchr(line, ' ', llen), *sp2, *path;
	size_t plen;

	if (sp1 == NULL || (sp2 = memchr(sp1 + 1, ' ', llen - (size_t)(sp1 + 1 - line))) == NULL)
		return -1;
	path = sp1 + 1;
	plen = (size_t)(sp2 - path);
	g.requests++;
	if (plen == 7 && memcmp(path, "/_stats", 7) == 0)
		return handle_stats(c);
	if (plen == 7 && memcmp(path, "/_reset", 7) == 0) {
		g.accepted = g.requests = g.chats = g.streams = g.errors_sent = 0;
		return send_full(c, 200, "application/json", NULL, "{}\n", 3);
	}
	if (plen >= 17 && memcmp(path + plen - 17, "/chat/completions", 17) == 0 &&
	    strncmp(line, "POST ", 5) == 0)
		return handle_chat(c, path, plen - 17, body, blen);
	return send_full(c, 404, "application/json", NULL,
	    "{\"error\":{\"message\":\"not found\"}}", 33);
}

/* Serve every complete request in the input buffer, one at a time.
 * Returns -1 to close the connection. */
static int
process(struct conn *c)
{
	while (c->phase == PH_IDLE && !c->closing && c->inlen > 0) {
		const char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
		const char *eol, *v;
		size_t vlen = 0, hlen, clen = 0, total;

		if (end == NULL)
			return c->inlen >= IN_MAX ? -1 : 0;
		hlen = (size_t)(end - c->in) + 4;
		eol = memmem(c->in, hlen, "\r\n", 2);
		if ((v = header(eol + 2, end, "Content-Length", &vlen)) != NULL)
			clen = (size_t)strtoul(v, NULL, 10);
		if (header(eol + 2, end, "Transfer-Encoding", &vlen) != NULL)
			return -1; /* chunked uploads: not needed here */
		if (hlen + clen > IN_MAX)
			return -1;
		total = hlen + clen;
		if (c->inlen < total)
			return 0;
		v = header(eol + 2, end, "Connection", &vlen);
		c->close_after = v != NULL && vlen == 5 && strncasecmp(v, "close", 5) == 0;
		if (route(c, c->in, (size_t)(eol - c->in), c->in + hlen, clen) != 0)
			return -1;
		memmove(c->in, c->in + total, c->inlen - total);
		c->inlen -= total;
	}
	return 0;
}

/* After any progress: serve what is buffered next, close when done. */
static void
settle(struct conn *c)
{
	if (process(c) != 0 || (c->closing && c->outlen == 0))
		conn_close(c);
}

static void
on_readable(struct conn *c)
{
	for (;;) {
		ssize_t n;

		if (c->inlen == IN_MAX)
			break;
		n = read(c->fd, c->in + c->inlen, IN_MAX - c->inlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->inlen += (size_t)n;
	}
	settle(c);
}

static void
on_accept(void)
{
	for (;;) {
		int fd = accept4(g.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;
		struct conn *c;
		struct epoll_event ev;

		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = malloc(sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		memset(c, 0, offsetof(struct conn, in));
		c->fd = fd;
		c->heap_i = -1;
		ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			free(c);
			continue;
		}
		g.accepted++;
		g.open++;
	}
}

/* ---- the loop --------------------------------------------------------- */

static void
run_timers(void)
{
	int64_t now = now_us();

	while (g.nheap > 0 && g.heap[0]->due_us <= now) {
		struct conn *c = g.heap[0];

		heap_remove(c);
		if (timer_fire(c) != 0)
			conn_close(c);
		else
			settle(c);
	}
}

static int
next_timeout_ms(void)
{
	int64_t d;

	if (g.nheap == 0)
		return 1000;
	d = g.heap[0]->due_us - now_us();
	if (d <= 0)
		return 0;
	return (int)((d + 999) / 1000); /* never early */
}

static void
dispatch(struct epoll_event *ev)
{
	struct conn *c = ev->data.ptr;

	if (c == NULL) {
		on_accept();
		return;
	}
	if (ev->events & (EPOLLERR | EPOLLHUP)) {
		conn_close(c);
		return;
	}
	if ((ev->events & EPOLLOUT) && flush_out(c) != 0) {
		conn_close(c);
		return;
	}
	if ((ev->events & EPOLLOUT) && c->closing && c->outlen == 0) {
		conn_close(c);
		return;
	}
	if (ev->events & EPOLLIN)
		on_readable(c);
}

static int
listen_on(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port) };
	socklen_t len = sizeof(sa);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 4096) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		close(fd);
		return -1;
	}
	printf("PORT %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	return fd;
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS];
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	const char *host = "127.0.0.1";
	int port = 0;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--host") == 0)
			host = argv[i + 1];
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	raise_nofile();
	if ((g.lfd = listen_on(host, port)) < 0) {
		perror("mock_fast: listen");
		return 1;
	}
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	if (g.ep < 0 || epoll_ctl(g.ep, EPOLL_CTL_ADD, g.lfd, &lev) != 0) {
		perror("mock_fast: epoll");
		return 1;
	}
	while (!g_stop) {
		int n = epoll_wait(g.ep, evs, MAX_EVENTS, next_timeout_ms());

		for (int i = 0; i < n; i++)
			dispatch(&evs[i]);
		run_timers();
	}
	return 0;
}
