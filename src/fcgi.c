/*
 * fcgi: FastCGI and plain CGI into struct rf_request / struct rf_out.
 *
 * Under a FastCGI server each worker thread owns one FCGX_Request (inside a
 * struct rf_fcgi_conn) and accepts on the listen socket the server hands us
 * as fd 0; params and body come through FCGX_GetParam and FCGX_GetStr.
 * Started as CGI, the one request comes from getenv, stdin and stdout.
 * This is the only file that includes <fcgiapp.h>.
 *
 * Output is ours, not libfcgi's, because it must never block without
 * bound.  A web server that applies back-pressure (lighttpd with
 * server.stream-response-body = 2, nginx with fastcgi_buffering off) stops
 * reading from us while its client does not read; libfcgi's FCGX_FFlush
 * would then sit in write(2) forever, past every stream deadline, and a
 * few such clients would hold every worker.  libfcgi cannot be given a
 * timeout either: SO_SNDTIMEO makes write(2) return a short count, which
 * libfcgi takes for success, and the record stream would be corrupt.  So
 * the response body is framed here into FCGI_STDOUT records and sent with
 * non-blocking writes; each wait for room is bounded by the write timeout
 * (RELAYFORGE_STREAM_IDLE_TIMEOUT_MS).  A client that takes no byte for
 * that long is gone: the write fails, the handler ends the request as
 * client_closed, and the connection is shut down, so libfcgi's closing
 * records (end of stdout, FCGI_END_REQUEST, written by FCGX_Finish_r) fail
 * at once instead of blocking.  On a healthy connection libfcgi writes
 * those 24 bytes itself, bounded by SO_SNDTIMEO; reads (the body, a kept
 * connection's next request) are bounded by SO_RCVTIMEO.  CGI output goes
 * through the same bounded writer on fd 1.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <fastcgi.h>
#include <fcgiapp.h>

#include "fcgi.h"
#include "log.h"
#include "util.h"

/* Bound on what is drained from a CGI stdin after the answer. */
#define CGI_DRAIN_MAX (64u * 1024 * 1024)
/* Content of one FCGI_STDOUT record (the protocol allows 65535). */
#define RECORD_MAX 32768
/* Output framed but not flushed is sent once it reaches this size. */
#define PENDING_HIGH (64u * 1024)
/* A pending buffer grown past this (a long chat answer) is given back. */
#define PENDING_KEEP (256u * 1024)
/* While a write waits for room, how often it tries again (ms). */
#define RETRY_MS 200

/* How the bounded writer may write to an fd without blocking. */
enum out_kind {
	OUT_SOCKET, /* send(MSG_DONTWAIT): takes what fits */
	OUT_PIPE,   /* poll, then at most PIPE_BUF bytes, which then fit */
	OUT_OTHER   /* a file or terminal: a plain blocking write */
};

/* One response's way out: the bytes not sent yet and where they go. */
struct out {
	int fd;
	enum out_kind kind;
	struct rf_buf pending;
	bool failed;
	const char *rid; /* the request id once the router set it, for logs */
};

struct rf_fcgi_conn {
	FCGX_Request fr;
	struct out out;
};

static long write_timeout_ms = RF_FCGI_WRITE_TIMEOUT_DEFAULT;

bool
rf_fcgi_is_cgi(void)
{
	return FCGX_IsCGI();
}

int
rf_fcgi_init(void)
{
	return FCGX_Init() == 0 ? 0 : -1;
}

void
rf_fcgi_set_write_timeout(long ms)
{
	if (ms > 0)
		write_timeout_ms = ms;
}

/* ---- the bounded writer -------------------------------------------------- */

/* Wait up to ms for fd to take bytes.  0 (writable, or time to try
 * again), or -1 on an error of the fd itself. */
static int
wait_writable(int fd, int64_t ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int n = poll(&p, 1, ms > INT_MAX ? INT_MAX : (int)ms);

	if (n < 0)
		return errno == EINTR ? 0 : -1;
	return n > 0 && (p.revents & POLLNVAL) ? -1 : 0;
}

/* One write that does not block (except OUT_OTHER); like write(2). */
static ssize_t
put(int fd, enum out_kind kind, const char *p, size_t n)
{
	switch (kind) {
	case OUT_SOCKET:
		return send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	case OUT_PIPE: {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };

		/* POLLOUT on a pipe means a free page: PIPE_BUF bytes fit. */
		if (poll(&pf, 1, 0) == 0) {
			errno = EAGAIN;
			return -1;
		}
		return write(fd, p, n < PIPE_BUF ? n : PIPE_BUF);
	}
	case OUT_OTHER:
		break;
	}
	return write(fd, p, n);
}

/* Write all n bytes.  The write timeout counts from the last byte that
 * went out; while waiting, the write is retried every RETRY_MS, because
 * poll() reports a Unix socket writable only once three quarters of its
 * buffer are free, and a reader that drains it slowly is still reading.
 * 0; -1 when the reader is gone (closed, or took nothing for the whole
 * timeout: *stalled is then set). */
static int
send_bounded(int fd, enum out_kind kind, const char *p, size_t n,
    bool *stalled)
{
	int64_t deadline = rf_mono_ms() + write_timeout_ms;

	while (n > 0) {
		ssize_t k = put(fd, kind, p, n);
		int64_t left;

		if (k > 0) {
			p += k;
			n -= (size_t)k;
			deadline = rf_mono_ms() + write_timeout_ms;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return -1;
		if ((left = deadline - rf_mono_ms()) <= 0) {
			*stalled = true;
			return -1;
		}
		if (wait_writable(fd, left < RETRY_MS ? left : RETRY_MS) != 0)
			return -1;
	}
	return 0;
}

/* Send what is pending.  On failure the output is marked failed, for good;
 * a stalled reader is logged (a closed one is an ordinary hang-up). */
static int
out_drain(struct out *o)
{
	bool stalled = false;

	if (o->failed)
		return -1;
	if (o->pending.len > 0 && send_bounded(o->fd, o->kind, o->pending.data,
	    o->pending.len, &stalled) != 0) {
		o->failed = true;
		if (stalled)
			RF_LOG_INFO(o->rid != NULL && o->rid[0] != '\0' ? o->rid :
			    NULL, NULL, "the client took no output for %ld ms; "
			    "dropping the response", write_timeout_ms);
	}
	if (o->pending.cap > PENDING_KEEP)
		rf_buf_free(&o->pending);
	else
		rf_buf_reset(&o->pending);
	return o->failed ? -1 : 0;
}

static enum out_kind
out_kind_of(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return OUT_OTHER;
	if (S_ISSOCK(st.st_mode))
		return OUT_SOCKET;
	return S_ISFIFO(st.st_mode) ? OUT_PIPE : OUT_OTHER;
}

/* ---- FastCGI ------------------------------------------------------------- */

static const char *
fcgi_param(void *ctx, const char *name)
{
	return FCGX_GetParam(name, ((FCGX_Request *)ctx)->envp);
}

static long
fcgi_read(void *ctx, char *buf, size_t n)
{
	return FCGX_GetStr(buf, (int)n, ((FCGX_Request *)ctx)->in);
}

/* Append p as FCGI_STDOUT records of the current request. */
static int
frame(struct rf_buf *b, int id, const char *p, size_t n)
{
	while (n > 0) {
		size_t k = n < RECORD_MAX ? n : RECORD_MAX;
		FCGI_Header h = {
			.version = FCGI_VERSION_1, .type = FCGI_STDOUT,
			.requestIdB1 = (unsigned char)((id >> 8) & 0xff),
			.requestIdB0 = (unsigned char)(id & 0xff),
			.contentLengthB1 = (unsigned char)((k >> 8) & 0xff),
			.contentLengthB0 = (unsigned char)(k & 0xff),
		};

		if (rf_buf_append(b, &h, sizeof(h)) != 0 ||
		    rf_buf_append(b, p, k) != 0)
			return -1;
		p += k;
		n -= k;
	}
	return 0;
}

static int
fcgi_write(void *ctx, const char *p, size_t n)
{
	struct rf_fcgi_conn *c = ctx;

	if (c->out.failed)
		return -1;
	if (frame(&c->out.pending, c->fr.requestId, p, n) != 0) {
		c->out.failed = true;
		return -1;
	}
	return c->out.pending.len >= PENDING_HIGH ? out_drain(&c->out) : 0;
}

static int
fcgi_flush(void *ctx)
{
	return out_drain(&((struct rf_fcgi_conn *)ctx)->out);
}

struct rf_fcgi_conn *
rf_fcgi_conn_new(void)
{
	struct rf_fcgi_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	/* An interrupted accept returns -1 instead of retrying, so a worker
	 * sees the stop signal. */
	FCGX_InitRequest(&c->fr, 0, FCGI_FAIL_ACCEPT_ON_INTR);
	rf_buf_init(&c->out.pending, 0);
	return c;
}

void
rf_fcgi_conn_free(struct rf_fcgi_conn *c)
{
	if (c == NULL)
		return;
	FCGX_Free(&c->fr, 1);
	rf_buf_free(&c->out.pending);
	free(c);
}

/* Bound libfcgi's own blocking reads and writes on the connection. */
static void
bound_socket(int fd)
{
	struct timeval tv = {
		.tv_sec = write_timeout_ms / 1000,
		.tv_usec = (write_timeout_ms % 1000) * 1000,
	};

	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
		RF_LOG_WARN(NULL, NULL, "cannot bound the FastCGI socket: %s",
		    strerror(errno));
}

int
rf_fcgi_accept(struct rf_fcgi_conn *c, struct rf_request *rq)
{
	if (FCGX_Accept_r(&c->fr) < 0)
		return -1;
	*rq = (struct rf_request){
		.param = fcgi_param, .read = fcgi_read, .ctx = &c->fr,
		.out = { .write = fcgi_write, .flush = fcgi_flush, .ctx = c },
	};
	/* ipcFd is below libfcgi's "don't use" line, but it is the
	 * connection's socket and the struct has been stable since 1996. */
	c->out.fd = c->fr.ipcFd;
	c->out.kind = OUT_SOCKET;
	c->out.failed = false;
	c->out.rid = rq->request_id;
	rf_buf_reset(&c->out.pending);
	bound_socket(c->fr.ipcFd);
	return 0;
}

void
rf_fcgi_finish(struct rf_fcgi_conn *c)
{
	out_drain(&c->out);
	/* The client is gone: make libfcgi's closing writes fail at once
	 * (and close the connection, kept or not) instead of waiting. */
	if (c->out.failed && c->fr.ipcFd >= 0)
		shutdown(c->fr.ipcFd, SHUT_RDWR);
	c->out.rid = NULL;
	FCGX_Finish_r(&c->fr);
}

/* ---- a request handed to an event loop ------------------------------------
 * From the detach on, the connection is ours alone: libfcgi has let go of
 * it (FCGX_Free without closing, ipcFd forgotten) and accepts the next
 * connection on the worker's FCGX_Request, while the loop writes this
 * request's records -- STDOUT, then the end of STDOUT and END_REQUEST --
 * only when the socket takes them.  A write never blocks and never sends
 * by itself beyond what the socket takes at once; what is left waits in
 * the backlog.  Past RF_FCGI_BACKLOG_HIGH the output is full (rf_out_full):
 * a stream then stops reading its upstream until the client takes some,
 * so a client that stops reading holds a bounded backlog until its write
 * deadline; RF_FCGI_BACKLOG is the hard bound past which a write fails.  Input after the body (the web server's own
 * records) is read and dropped; its end means the web server closed the
 * connection (its client went away). */

struct rf_fcgi_stream {
	int fd;
	int id;                /* the FastCGI request id */
	struct rf_buf pending; /* framed records not sent yet */
	size_t sent;           /* of pending, already sent */
	bool failed;
	int64_t progress;      /* monotonic ms of the last byte the socket took */
	void (*want)(void *ud);/* the backlog is not empty: watch for room */
	void *ud;
};

static size_t
stream_left(const struct rf_fcgi_stream *s)
{
	return s->pending.len - s->sent;
}

int
rf_fcgi_stream_send(struct rf_fcgi_stream *s)
{
	while (!s->failed && stream_left(s) > 0) {
		ssize_t k = send(s->fd, s->pending.data + s->sent, stream_left(s),
		    MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k > 0) {
			s->sent += (size_t)k;
			s->progress = rf_mono_ms();
		} else if (k < 0 && errno == EINTR) {
			continue;
		} else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return 1;
		} else {
			s->failed = true;
		}
	}
	if (s->failed)
		return -1;
	/* All sent: start over at the front, giving back a large buffer. */
	s->sent = 0;
	if (s->pending.cap > PENDING_KEEP)
		rf_buf_free(&s->pending);
	else
		rf_buf_reset(&s->pending);
	return 0;
}

static int
stream_write(void *ctx, const char *p, size_t n)
{
	struct rf_fcgi_stream *s = ctx;

	if (s->failed)
		return -1;
	if (stream_left(s) >= RF_FCGI_BACKLOG ||
	    frame(&s->pending, s->id, p, n) != 0) {
		s->failed = true;
		return -1;
	}
	return 0;
}

static bool
stream_full(void *ctx)
{
	return stream_left(ctx) >= RF_FCGI_BACKLOG_HIGH;
}

static int
stream_flush(void *ctx)
{
	struct rf_fcgi_stream *s = ctx;
	int rc = rf_fcgi_stream_send(s);

	if (rc > 0 && s->want != NULL)
		s->want(s->ud);
	return rc < 0 ? -1 : 0;
}

static const char *
no_param(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return NULL;
}

static long
no_read(void *ctx, char *buf, size_t n)
{
	(void)ctx;
	(void)buf;
	(void)n;
	return 0;
}

struct rf_fcgi_stream *
rf_fcgi_detach(struct rf_request *rq, void (*want)(void *ud), void *ud)
{
	struct rf_fcgi_conn *c = rq->out.ctx;
	struct rf_fcgi_stream *s;

	if (rq->out.write != fcgi_write || c->fr.ipcFd < 0 ||
	    (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	*s = (struct rf_fcgi_stream){ .fd = c->fr.ipcFd, .id = c->fr.requestId,
		.pending = c->out.pending, .failed = c->out.failed,
		.progress = rf_mono_ms(), .want = want, .ud = ud };
	rf_buf_init(&c->out.pending, 0);
	c->out.failed = false;
	c->out.rid = NULL;
	/* libfcgi lets go: streams and params freed, the socket kept. */
	FCGX_Free(&c->fr, 0);
	c->fr.ipcFd = -1;
	rq->param = no_param;
	rq->read = no_read;
	rq->ctx = NULL;
	rq->out.write = stream_write;
	rq->out.flush = stream_flush;
	rq->out.full = stream_full;
	rq->out.ctx = s;
	return s;
}

int
rf_fcgi_stream_fd(const struct rf_fcgi_stream *s)
{
	return s->fd;
}

size_t
rf_fcgi_stream_backlog(const struct rf_fcgi_stream *s)
{
	return stream_left(s);
}

int64_t
rf_fcgi_stream_progress(const struct rf_fcgi_stream *s)
{
	return s->progress;
}

bool
rf_fcgi_stream_failed(const struct rf_fcgi_stream *s)
{
	return s->failed;
}

void
rf_fcgi_stream_fail(struct rf_fcgi_stream *s)
{
	s->failed = true;
}

int
rf_fcgi_stream_input(struct rf_fcgi_stream *s)
{
	char buf[4096];

	for (;;) {
		ssize_t k = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (k > 0)
			continue;
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		s->failed = true; /* the web server closed it, or it broke */
		return -1;
	}
}

void
rf_fcgi_stream_end(struct rf_fcgi_stream *s)
{
	FCGI_Header h = {
		.version = FCGI_VERSION_1, .type = FCGI_STDOUT,
		.requestIdB1 = (unsigned char)((s->id >> 8) & 0xff),
		.requestIdB0 = (unsigned char)(s->id & 0xff),
	};
	FCGI_EndRequestRecord e = {
		.header = { .version = FCGI_VERSION_1, .type = FCGI_END_REQUEST,
			.requestIdB1 = h.requestIdB1, .requestIdB0 = h.requestIdB0,
			.contentLengthB0 = sizeof(e.body) },
		.body = { .protocolStatus = FCGI_REQUEST_COMPLETE },
	};

	if (s->failed)
		return;
	if (rf_buf_append(&s->pending, &h, sizeof(h)) != 0 ||
	    rf_buf_append(&s->pending, &e, sizeof(e)) != 0)
		s->failed = true;
}

void
rf_fcgi_stream_close(struct rf_fcgi_stream *s)
{
	if (s == NULL)
		return;
	/* A kept connection cannot go back to libfcgi's worker: it is
	 * closed after the request, which the web server allows. */
	if (s->failed)
		shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	rf_buf_free(&s->pending);
	free(s);
}

void
rf_fcgi_shutdown(void)
{
	/* fd 0 is the FastCGI listen socket: shutting it down makes a
	 * blocked accept() return at once. */
	shutdown(0, SHUT_RDWR);
}

/* ---- plain CGI ------------------------------------------------------------ */

static const char *
cgi_param(void *ctx, const char *name)
{
	(void)ctx;
	return getenv(name);
}

static long
cgi_read(void *ctx, char *buf, size_t n)
{
	(void)ctx;
	return (long)fread(buf, 1, n, stdin);
}

static int
cgi_write(void *ctx, const char *p, size_t n)
{
	struct out *o = ctx;

	if (o->failed)
		return -1;
	if (rf_buf_append(&o->pending, p, n) != 0) {
		o->failed = true;
		return -1;
	}
	return o->pending.len >= PENDING_HIGH ? out_drain(o) : 0;
}

static int
cgi_flush(void *ctx)
{
	return out_drain(ctx);
}

/* A CGI answer may leave before the body was read (401, 413).  Apache's
 * mod_cgid then fails writing the rest to our stdin and cuts the reply, so
 * read what is left (bounded) before exiting. */
static void
drain_stdin(void)
{
	char buf[8192];
	size_t total = 0;

	while (total < CGI_DRAIN_MAX) {
		size_t n = fread(buf, 1, sizeof(buf), stdin);
		if (n == 0)
			break;
		total += n;
	}
}

int
rf_fcgi_serve_cgi(void (*serve)(void *arg, struct rf_request *rq), void *arg)
{
	struct out o = { .fd = STDOUT_FILENO, .kind = out_kind_of(STDOUT_FILENO) };
	struct rf_request rq = {
		.param = cgi_param, .read = cgi_read,
		.out = { .write = cgi_write, .flush = cgi_flush, .ctx = &o },
	};

	rf_buf_init(&o.pending, 0);
	o.rid = rq.request_id;
	serve(arg, &rq);
	out_drain(&o);
	rf_buf_free(&o.pending);
	drain_stdin();
	return 0;
}
