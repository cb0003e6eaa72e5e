/*
 * upstream: the only file that speaks libcurl.  It sends the plain
 * requests adapters build (struct rf_up_req: URL, body, header lines) and
 * reads back the status, the body (buffered or streamed to a callback) and
 * the rate-limit headers.
 *
 * One libcurl multi handle per event loop (struct rf_up), driven through
 * its socket interface: curl tells us which sockets to watch and when its
 * next timeout is (sock_cb, timer_cb), the loop (loop.h) reports what
 * happened, curl_multi_socket_action does the work, and every finished
 * transfer calls its owner back (check_done).  Waiting on an upstream
 * therefore costs a socket and a few kilobytes of curl state, not a
 * thread.  The connection pool (and DNS cache) belongs to the multi
 * handle, so keep-alive connections to every provider (and their TLS
 * sessions) serve every request of the loop; easy handles are pooled and
 * reused with curl_easy_reset.  rf_up_perform runs one call to completion
 * on the handle's own loop, for plain CGI and the tests.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include <curl/curl.h>

#include "loop.h"
#include "provider.h"
#include "upstream.h"

#define RF_UP_SLICE_MS 20
#define RF_UP_QUOTA_MAX 8
/* Idle easy handles kept per loop for reuse. */
#define POOL_MAX 64
/* The download buffer of a transfer: SSE events and chat bodies come in
 * small reads, and thousands of open streams each hold one. */
#define XFER_BUFFER 2048

struct rf_up {
	struct rf_loop *loop;
	bool own_loop;
	CURLM *multi;
	struct rf_timer timer;     /* curl's next timeout */
	CURL *pool[POOL_MAX];
	int npool;
	long connects;
	int active;
	struct rf_up_xfer *xfers;  /* in flight */
};

/* One socket curl asked us to watch. */
struct sockw {
	struct rf_watch w;
	struct rf_up *up;
};

/* One rate-limit window seen in headers ("requests", "tokens-minute", ...). */
struct quota_pair {
	char suffix[32];
	long remaining;   /* -1 unknown */
	int64_t reset_ms; /* duration, -1 unknown */
};

/* One transfer in flight. */
struct rf_up_xfer {
	struct rf_up *up;
	struct rf_up_xfer *next, **pprev; /* up->xfers */
	struct rf_up_call call;
	struct rf_up_reply *reply;
	rf_up_done_fn done;
	void *done_ud;
	CURL *easy;
	struct curl_slist *hdrs;
	bool aborted;  /* a callback asked to stop */
	bool too_big;
	CURLMcode merr; /* the multi handle failed: the transfer is over */
	struct quota_pair q[RF_UP_QUOTA_MAX];
	int nq;
};
#define xfer rf_up_xfer

int
rf_up_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void
rf_up_global_cleanup(void)
{
	curl_global_cleanup();
}

static void check_done(struct rf_up *up);
static void fail_all(struct rf_up *up, CURLMcode rc);

/* curl_multi_socket_action, and what its failure means: the multi
 * handle cannot go on with any transfer, so each ends now (RF_UP_ERROR
 * with curl's error name) instead of waiting forever. */
static void
act(struct rf_up *up, curl_socket_t s, int mask)
{
	int running;
	CURLMcode rc = curl_multi_socket_action(up->multi, s, mask, &running);

	if (rc != CURLM_OK)
		fail_all(up, rc);
	else
		check_done(up);
}

static void
on_socket_event(struct rf_watch *w, uint32_t ev)
{
	struct sockw *sw = (struct sockw *)w;
	struct rf_up *up = sw->up;
	int mask = 0;

	if (ev & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
		mask |= CURL_CSELECT_IN;
	if (ev & EPOLLOUT)
		mask |= CURL_CSELECT_OUT;
	if (ev & EPOLLERR)
		mask |= CURL_CSELECT_ERR;
	act(up, w->fd, mask);
}

/* curl: watch s for what (or stop watching it). */
static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct rf_up *up = userp;
	struct sockw *sw = socketp;
	uint32_t ev = 0;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (sw != NULL) {
			rf_loop_watch(up->loop, &sw->w, 0);
			free(sw);
			curl_multi_assign(up->multi, s, NULL);
		}
		return 0;
	}
	if (sw == NULL) {
		if ((sw = calloc(1, sizeof(*sw))) == NULL)
			return -1;
		sw->w.fd = s;
		sw->w.cb = on_socket_event;
		sw->up = up;
		curl_multi_assign(up->multi, s, sw);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= EPOLLOUT;
	return rf_loop_watch(up->loop, &sw->w, ev) == 0 ? 0 : -1;
}

static void
on_timer(struct rf_timer *t)
{
	struct rf_up *up = (struct rf_up *)((char *)t -
	    offsetof(struct rf_up, timer));

	act(up, CURL_SOCKET_TIMEOUT, 0);
}

/* curl: call us back in ms (-1: never). */
static int
timer_cb(CURLM *m, long ms, void *userp)
{
	struct rf_up *up = userp;

	(void)m;
	if (ms < 0)
		rf_loop_timer_stop(up->loop, &up->timer);
	else
		rf_loop_timer_at(up->loop, &up->timer, rf_mono_ms() + ms);
	return 0;
}

struct rf_up *
rf_up_new_on(struct rf_loop *loop)
{
	struct rf_up *up = calloc(1, sizeof(*up));

	if (up == NULL)
		return NULL;
	up->loop = loop;
	if (loop == NULL) {
		up->loop = rf_loop_new();
		up->own_loop = true;
	}
	up->multi = curl_multi_init();
	if (up->multi == NULL || up->loop == NULL) {
		rf_up_free(up);
		return NULL;
	}
	up->timer.cb = on_timer;
	curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
	curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
	/* Keep idle connections for every provider the loop talks to. */
	curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, 64L);
	return up;
}

struct rf_up *
rf_up_new(void)
{
	return rf_up_new_on(NULL);
}

void
rf_up_free(struct rf_up *up)
{
	if (up == NULL)
		return;
	while (up->npool > 0)
		curl_easy_cleanup(up->pool[--up->npool]);
	if (up->multi != NULL)
		curl_multi_cleanup(up->multi); /* closes its sockets: sock_cb */
	if (up->loop != NULL) {
		rf_loop_timer_stop(up->loop, &up->timer);
		if (up->own_loop)
			rf_loop_free(up->loop);
	}
	free(up);
}

struct rf_loop *
rf_up_loop(const struct rf_up *up)
{
	return up->loop;
}

int
rf_up_active(const struct rf_up *up)
{
	return up->active;
}

long
rf_up_connects(const struct rf_up *up)
{
	return up->connects;
}

void
rf_up_reply_init(struct rf_up_reply *r)
{
	memset(r, 0, sizeof(*r));
	rf_buf_init(&r->body, RF_UP_BODY_MAX);
	r->retry_after_ms = -1;
	r->quota.remaining_requests = -1;
	r->quota.remaining_tokens = -1;
}

void
rf_up_reply_free(struct rf_up_reply *r)
{
	rf_buf_free(&r->body);
}

/* Retry-After: delta-seconds or an HTTP date. */
int64_t
rf_up_parse_retry_after(const char *v, int64_t now_ms)
{
	char *end;
	double d;
	long secs;

	while (*v == ' ')
		v++;
	if (*v == '\0')
		return -1;
	if (isdigit((unsigned char)*v)) {
		d = strtod(v, &end);
		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		if (*end != '\0' || d < 0 || d > 1e7)
			return -1;
		return (int64_t)(d * 1000.0 + 0.5);
	}
	secs = (long)curl_getdate(v, NULL);
	if (secs < 0)
		return -1;
	if ((int64_t)secs * 1000 <= now_ms)
		return 0;
	return (int64_t)secs * 1000 - now_ms;
}

/* A whole header value as a duration (a bare number is seconds), or -1
 * when anything but spaces follows it. */
static int64_t
header_duration(const char *v)
{
	const char *end = v;
	int64_t ms = rf_duration_ms(v, &end);

	while (end != NULL && *end == ' ')
		end++;
	return ms >= 0 && end != NULL && *end == '\0' ? ms : -1;
}

static struct quota_pair *
quota_slot(struct xfer *x, const char *suffix, size_t n)
{
	struct quota_pair *p;
	int i;

	if (n == 0 || n >= sizeof(x->q[0].suffix))
		return NULL;
	for (i = 0; i < x->nq; i++)
		if (strlen(x->q[i].suffix) == n &&
		    strncasecmp(x->q[i].suffix, suffix, n) == 0)
			return &x->q[i];
	if (x->nq == RF_UP_QUOTA_MAX)
		return NULL;
	p = &x->q[x->nq++];
	memcpy(p->suffix, suffix, n);
	p->suffix[n] = '\0';
	p->remaining = -1;
	p->reset_ms = -1;
	return p;
}

/* Remember x-ratelimit-remaining-* / x-ratelimit-reset-* pairs. */
static void
header_quota(struct xfer *x, const char *name, size_t nlen, const char *val)
{
	static const char rem[] = "x-ratelimit-remaining-";
	static const char rst[] = "x-ratelimit-reset-";
	const size_t nrem = sizeof(rem) - 1, nrst = sizeof(rst) - 1;
	struct quota_pair *p;
	char *end;
	long n;

	if (nlen > nrem && strncasecmp(name, rem, nrem) == 0) {
		p = quota_slot(x, name + nrem, nlen - nrem);
		n = strtol(val, &end, 10);
		if (p != NULL && end != val && n >= 0)
			p->remaining = n;
	} else if (nlen > nrst && strncasecmp(name, rst, nrst) == 0) {
		p = quota_slot(x, name + nrst, nlen - nrst);
		if (p != NULL)
			p->reset_ms = header_duration(val);
	}
}

static size_t
on_header(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;
	char line[512];
	char *colon, *val;

	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* A new status line (after a 100 Continue): forget earlier headers. */
		x->nq = 0;
		x->reply->retry_after_ms = -1;
		return len;
	}
	if (len >= sizeof(line))
		return len; /* longer than any header we read */
	memcpy(line, buf, len);
	line[len] = '\0';
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		line[--len] = '\0';
	colon = strchr(line, ':');
	if (colon == NULL)
		return size * n;
	val = colon + 1;
	while (*val == ' ' || *val == '\t')
		val++;
	if ((size_t)(colon - line) == 11 &&
	    strncasecmp(line, "retry-after", 11) == 0)
		x->reply->retry_after_ms = rf_up_parse_retry_after(val,
		    rf_now_ms());
	else
		header_quota(x, line, (size_t)(colon - line), val);
	return size * n;
}

static size_t
on_body(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (x->call.on_data != NULL && status >= 200 && status < 300) {
		int rc = x->call.on_data(x->call.ud, buf, len);

		if (rc == RF_UP_PAUSE)
			return CURL_WRITEFUNC_PAUSE;
		if (rc != 0) {
			x->aborted = true;
			return 0;
		}
		return len;
	}
	if (rf_buf_append(&x->reply->body, buf, len) != 0) {
		x->too_big = true;
		return 0;
	}
	return len;
}

/* Fold the header pairs into the reply's quota: the smallest remaining
 * figure of each kind, and the reset of an exhausted window. */
static void
fold_quota(struct xfer *x)
{
	struct rf_quota *q = &x->reply->quota;
	int64_t now = rf_now_ms();
	struct quota_pair *p;
	long *slot;
	int i;

	for (i = 0; i < x->nq; i++) {
		p = &x->q[i];
		slot = strncasecmp(p->suffix, "tokens", 6) == 0 ?
		    &q->remaining_tokens : &q->remaining_requests;
		if (p->remaining < 0)
			continue;
		q->have = true;
		if (*slot < 0 || p->remaining < *slot)
			*slot = p->remaining;
		if (p->remaining == 0 && p->reset_ms >= 0 &&
		    now + p->reset_ms > q->reset_at_ms)
			q->reset_at_ms = now + p->reset_ms;
	}
}

/* The request's header lines as curl's list.  0, or -1 (memory) with
 * *out NULL. */
static int
header_list(const struct rf_up_req *rq, struct curl_slist **out)
{
	struct curl_slist *l = NULL, *t;
	int i;

	for (i = 0; i < rq->nhdrs; i++) {
		if ((t = curl_slist_append(l, rq->hdrs[i])) == NULL) {
			curl_slist_free_all(l);
			*out = NULL;
			return -1;
		}
		l = t;
	}
	*out = l;
	return 0;
}

static void
setup(CURL *e, const struct rf_up_call *c, struct curl_slist *hdrs,
    struct xfer *x)
{
	const struct rf_up_req *rq = c->req;

	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, rf_buf_str(&rq->url));
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, rf_buf_str(&rq->body));
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)rq->body.len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	if (c->timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
}

static enum rf_up_end
map_end(CURLcode rc, const struct xfer *x, long status)
{
	if (x->too_big)
		return RF_UP_TOO_BIG;
	if (x->aborted)
		return RF_UP_ABORTED;
	if (x->merr != CURLM_OK)
		return RF_UP_ERROR;
	switch (rc) {
	case CURLE_OK:
		return RF_UP_DONE;
	case CURLE_OPERATION_TIMEDOUT:
		return RF_UP_TIMEOUT;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return RF_UP_CONNECT;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return status == 0 ? RF_UP_CONNECT : RF_UP_RESET;
	default:
		return RF_UP_ERROR;
	}
}

/* A call that could not start: reply->end RF_UP_ERROR with why. */
static void
not_started(struct rf_up_reply *r, const char *why)
{
	r->end = RF_UP_ERROR;
	snprintf(r->curl_err, sizeof(r->curl_err), "%s", why);
}

/* The transfer is over (rc: curl's result): fill the reply, give the easy
 * handle back to the pool, free x.  The caller then reports to the owner
 * (or not, for a cancel). */
static void
end_xfer(struct xfer *x, CURLcode rc)
{
	struct rf_up *up = x->up;
	struct rf_up_reply *r = x->reply;
	long n = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &n);
	curl_multi_remove_handle(up->multi, x->easy);
	up->connects += n;
	up->active--;
	if ((*x->pprev = x->next) != NULL)
		x->next->pprev = x->pprev;
	r->end = map_end(rc, x, r->status);
	/* curl's own error names are fixed strings: safe to pass on. */
	snprintf(r->curl_err, sizeof(r->curl_err), "%s", x->merr != CURLM_OK ?
	    curl_multi_strerror(x->merr) : curl_easy_strerror(rc));
	fold_quota(x);
	if (up->npool < POOL_MAX)
		up->pool[up->npool++] = x->easy;
	else
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	free(x);
}

/* Report every finished transfer to its owner.  A done callback may
 * start new transfers (the next try) on this handle. */
static void
check_done(struct rf_up *up)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(up->multi, &left)) != NULL) {
		struct xfer *x = NULL;
		rf_up_done_fn done;
		void *ud;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x == NULL)
			continue;
		done = x->done;
		ud = x->done_ud;
		end_xfer(x, m->data.result);
		done(ud);
	}
}

static void
fail_all(struct rf_up *up, CURLMcode rc)
{
	while (up->xfers != NULL) {
		struct xfer *x = up->xfers;
		rf_up_done_fn done = x->done;
		void *ud = x->done_ud;

		x->merr = rc;
		end_xfer(x, CURLE_OK);
		done(ud);
	}
}

struct rf_up_xfer *
rf_up_start(struct rf_up *up, const struct rf_up_call *c,
    struct rf_up_reply *r, rf_up_done_fn done, void *ud)
{
	struct xfer *x;

	if (c->pid < 0 || c->pid >= rf_nproviders || c->req == NULL) {
		not_started(r, "bad provider");
		return NULL;
	}
	if (up == NULL || (x = calloc(1, sizeof(*x))) == NULL) {
		not_started(r, up == NULL ? "no upstream handle" :
		    "out of memory");
		return NULL;
	}
	*x = (struct xfer){ .up = up, .call = *c, .reply = r, .done = done,
		.done_ud = ud };
	x->easy = up->npool > 0 ? up->pool[--up->npool] : curl_easy_init();
	if (x->easy == NULL || header_list(c->req, &x->hdrs) != 0) {
		not_started(r, "out of memory");
		goto fail;
	}
	setup(x->easy, c, x->hdrs, x);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
	curl_easy_setopt(x->easy, CURLOPT_BUFFERSIZE, (long)XFER_BUFFER);
	if ((x->merr = curl_multi_add_handle(up->multi, x->easy)) != CURLM_OK) {
		not_started(r, curl_multi_strerror(x->merr));
		goto fail;
	}
	up->active++;
	if ((x->next = up->xfers) != NULL)
		x->next->pprev = &x->next;
	up->xfers = x;
	x->pprev = &up->xfers;
	return x;
fail:
	if (x->easy != NULL)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	free(x);
	return NULL;
}

void
rf_up_cancel(struct rf_up_xfer *x)
{
	if (x == NULL)
		return;
	x->aborted = true;
	end_xfer(x, CURLE_ABORTED_BY_CALLBACK);
}

void
rf_up_resume(struct rf_up_xfer *x)
{
	if (x != NULL)
		curl_easy_pause(x->easy, CURLPAUSE_CONT);
}

static void
set_flag(void *ud)
{
	*(bool *)ud = true;
}

int
rf_up_perform(struct rf_up *up, const struct rf_up_call *c,
    struct rf_up_reply *r)
{
	struct xfer *x;
	bool done = false;

	if ((x = rf_up_start(up, c, r, set_flag, &done)) == NULL)
		return 0;
	while (!done) {
		if (rf_loop_run_once(up->loop, RF_UP_SLICE_MS) < 0) {
			fail_all(up, CURLM_INTERNAL_ERROR);
			break;
		}
		if (!done && c->on_tick != NULL && c->on_tick(c->ud) != 0) {
			rf_up_cancel(x);
			break;
		}
	}
	return 0;
}
