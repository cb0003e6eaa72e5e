/*
 * upstream: the only file that speaks libcurl.  It sends the plain
 * requests adapters build (struct rf_up_req: URL, body, header lines) and
 * reads back the status, the body (buffered or streamed to a callback) and
 * the rate-limit headers.
 *
 * One libcurl multi handle and one easy handle per worker thread, reused
 * across requests.  curl_easy_reset() clears options, but the connection
 * pool (and DNS cache) belongs to the multi handle, so the keep-alive
 * connections to every provider (and their TLS sessions) survive from one
 * request to the next with a single easy handle.  We drive the transfer
 * ourselves with curl_multi_poll() in short slices so the caller's tick
 * can enforce first-token and idle deadlines to the millisecond and notice
 * a client that went away.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "provider.h"
#include "upstream.h"

#define RF_UP_SLICE_MS 20
#define RF_UP_QUOTA_MAX 8

struct rf_up {
	CURLM *multi;
	CURL *easy;
	long connects;
};

/* One rate-limit window seen in headers ("requests", "tokens-minute", ...). */
struct quota_pair {
	char suffix[32];
	long remaining;   /* -1 unknown */
	int64_t reset_ms; /* duration, -1 unknown */
};

/* Per-transfer state shared by the callbacks. */
struct xfer {
	const struct rf_up_call *call;
	struct rf_up_reply *reply;
	CURL *easy;
	bool aborted;  /* a callback asked to stop */
	bool too_big;
	CURLMcode merr; /* the multi handle failed: the transfer is over */
	struct quota_pair q[RF_UP_QUOTA_MAX];
	int nq;
};

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

void
rf_up_req_init(struct rf_up_req *rq)
{
	/* The header lines are written before they are read: no need to
	 * clear 8 KiB per request. */
	rf_buf_init(&rq->url, 0);
	rf_buf_init(&rq->body, 0);
	rq->nhdrs = 0;
}

void
rf_up_req_free(struct rf_up_req *rq)
{
	int i;

	if (rq == NULL)
		return;
	for (i = 0; i < rq->nhdrs; i++)
		explicit_bzero(rq->hdrs[i], strlen(rq->hdrs[i]));
	rq->nhdrs = 0;
	rf_buf_free(&rq->url);
	rf_buf_free(&rq->body);
}

struct rf_up *
rf_up_new(void)
{
	struct rf_up *up = calloc(1, sizeof(*up));

	if (up == NULL)
		return NULL;
	up->multi = curl_multi_init();
	if (up->multi == NULL) {
		free(up);
		return NULL;
	}
	/* Keep a few idle connections per host: one per provider is enough. */
	curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, 32L);
	return up;
}

void
rf_up_free(struct rf_up *up)
{
	if (up == NULL)
		return;
	if (up->easy != NULL)
		curl_easy_cleanup(up->easy);
	curl_multi_cleanup(up->multi);
	free(up);
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
	if (x->call->on_data != NULL && status >= 200 && status < 300) {
		if (x->call->on_data(x->call->ud, buf, len) != 0) {
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

/* Drive the transfer in short slices; returns the curl result.  A failure
 * of the multi handle itself (perform or poll) ends the transfer with
 * x->merr set: looping on would spin, and stopping silently would pass
 * for a completed transfer without a status. */
static CURLcode
drive(struct rf_up *up, CURL *e, const struct rf_up_call *c, struct xfer *x)
{
	int running = 1, left;
	CURLcode rc = CURLE_OK;
	CURLMsg *m;

	while (running) {
		if ((x->merr = curl_multi_perform(up->multi, &running)) !=
		    CURLM_OK || !running)
			break;
		if ((x->merr = curl_multi_poll(up->multi, NULL, 0,
		    RF_UP_SLICE_MS, NULL)) != CURLM_OK)
			break;
		if (c->on_tick != NULL && c->on_tick(c->ud) != 0) {
			x->aborted = true;
			return CURLE_ABORTED_BY_CALLBACK;
		}
	}
	if (x->merr != CURLM_OK)
		return CURLE_OK; /* map_end reports merr */
	while ((m = curl_multi_info_read(up->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE && m->easy_handle == e)
			rc = m->data.result;
	return rc;
}

/* A call that could not start: reply->end RF_UP_ERROR with why. */
static void
not_started(struct rf_up_reply *r, const char *why)
{
	r->end = RF_UP_ERROR;
	snprintf(r->curl_err, sizeof(r->curl_err), "%s", why);
}

int
rf_up_perform(struct rf_up *up, const struct rf_up_call *c,
    struct rf_up_reply *r)
{
	struct xfer x = { .call = c, .reply = r };
	struct curl_slist *hdrs = NULL;
	CURLcode rc;
	long n = 0;

	if (c->pid < 0 || c->pid >= rf_nproviders || c->req == NULL) {
		not_started(r, "bad provider");
		goto out;
	}
	if (up == NULL) {
		not_started(r, "no upstream handle");
		goto out;
	}
	if (up->easy == NULL)
		up->easy = curl_easy_init();
	if (up->easy == NULL || header_list(c->req, &hdrs) != 0) {
		not_started(r, "out of memory");
		goto out;
	}
	x.easy = up->easy;
	setup(x.easy, c, hdrs, &x);
	if ((x.merr = curl_multi_add_handle(up->multi, x.easy)) != CURLM_OK) {
		not_started(r, curl_multi_strerror(x.merr));
		goto out;
	}
	rc = drive(up, x.easy, c, &x);
	curl_easy_getinfo(x.easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(x.easy, CURLINFO_NUM_CONNECTS, &n);
	curl_multi_remove_handle(up->multi, x.easy);
	up->connects += n;
	r->end = map_end(rc, &x, r->status);
	/* curl's own error names are fixed strings: safe to pass on. */
	snprintf(r->curl_err, sizeof(r->curl_err), "%s", x.merr != CURLM_OK ?
	    curl_multi_strerror(x.merr) : curl_easy_strerror(rc));
	fold_quota(&x);
out:
	curl_slist_free_all(hdrs);
	return 0;
}
