/*
 * loadgen: an open-loop HTTP load generator (wrk2-style pacing), because
 * Debian ships wrk but not wrk2.
 *
 *   loadgen --url URL [--body-file F] --rate R (--duration-s D | --count N)
 *           [--conns C] [--warmup-s W]
 *
 * Request i is due at t0 + i/R whatever happened to the ones before it (a
 * timerfd with 1 ns slack wakes us at each due time).  It goes out on an
 * idle keep-alive connection of a pool of at most C; when none is idle it
 * waits, and that wait counts: latency is measured from the due time, not
 * from the send (no coordinated omission).  Samples of the first W seconds
 * are dropped.  Prints one JSON object:
 *   latency_us  due -> response complete (the figure to quote)
 *   service_us  sent -> response complete
 *   send_lag_us due -> sent (how late the generator itself was)
 * Exit 0 when every request got a 2xx, else 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "httpc.h"
#include "stats.h"

#define REQ_MAX (64 * 1024)
#define DRAIN_US (5 * 1000000LL)

struct conn {
	int fd;
	bool busy;
	long idx;            /* request in flight */
	int64_t sent_us;
	struct hc_resp resp;
};

static struct {
	struct hc_url url;
	char req[REQ_MAX];
	size_t reqlen;
	double rate;
	long count;          /* requests to send in all */
	long conns_max;
	int64_t warmup_us, t0;
	long due_upto;       /* requests [0, due_upto) are due */
	long next_send;      /* first due request not yet sent */
	long done, ok, non2xx, errors, opened;
	struct conn *c;
	long nconn;
	int ep, tfd;
	struct st_series lat, svc, lag;
} g;

static int64_t
due_at(long i)
{
	return g.t0 + (int64_t)((double)i * 1e6 / g.rate);
}

static void
arm_timer(void)
{
	struct itimerspec its = { 0 };
	int64_t t;

	if (g.due_upto >= g.count)
		return;
	t = due_at(g.due_upto);
	its.it_value.tv_sec = t / 1000000;
	its.it_value.tv_nsec = (t % 1000000) * 1000;
	timerfd_settime(g.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void
close_conn(struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->busy = false;
}

static void
record(struct conn *c, bool ok, int64_t now)
{
	int64_t due = due_at(c->idx);

	g.done++;
	if (!ok) {
		g.errors++;
	} else if (c->resp.status < 200 || c->resp.status > 299) {
		g.non2xx++;
	} else {
		g.ok++;
		if (due - g.t0 >= g.warmup_us) {
			st_add(&g.lat, now - due);
			st_add(&g.svc, now - c->sent_us);
			st_add(&g.lag, c->sent_us - due);
		}
	}
	c->busy = false;
}

/* Send request idx on c (connecting first when needed).  0 or -1. */
static int
send_on(struct conn *c, long idx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	size_t off = 0;

	if (c->fd < 0) {
		c->fd = hc_connect(&g.url, false);
		if (c->fd < 0)
			return -1;
		if (epoll_ctl(g.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
			close_conn(c);
			return -1;
		}
		g.opened++;
	}
	c->idx = idx;
	c->busy = true;
	c->sent_us = hc_now_us();
	hc_resp_init(&c->resp, NULL, NULL);
	while (off < g.reqlen) {
		ssize_t n = write(c->fd, g.req + off, g.reqlen - off);
		if (n <= 0 && errno != EINTR) {
			record(c, false, hc_now_us());
			close_conn(c);
			return 0;
		}
		off += n > 0 ? (size_t)n : 0;
	}
	return 0;
}

/* Hand due requests to idle connections (opening new ones up to C). */
static void
pump(void)
{
	for (long i = 0; i < g.nconn && g.next_send < g.due_upto; i++) {
		struct conn *c = &g.c[i];

		if (c->busy)
			continue;
		if (send_on(c, g.next_send) != 0) {
			c->idx = g.next_send;
			record(c, false, hc_now_us());
		}
		g.next_send++;
	}
}

static void
on_timer(void)
{
	uint64_t exp;
	int64_t now = hc_now_us();

	if (read(g.tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
		return;
	while (g.due_upto < g.count && due_at(g.due_upto) <= now)
		g.due_upto++;
	arm_timer();
	pump();
}

static void
on_readable(struct conn *c)
{
	char buf[65536];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	int64_t now = hc_now_us();
	long used;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (!c->busy) {
		close_conn(c);
		return;
	}
	if (n <= 0) {
		record(c, hc_resp_eof(&c->resp) == 0, now);
		close_conn(c);
		return;
	}
	used = hc_resp_feed(&c->resp, buf, (size_t)n);
	if (used < 0) {
		record(c, false, now);
		close_conn(c);
	} else if (c->resp.state == HC_DONE) {
		bool keep = c->resp.keep_alive && used == n;
		record(c, true, now);
		if (!keep)
			close_conn(c);
	}
}

static int
parse_args(int argc, char **argv, const char **url,
    const char **body, double *dur)
{
	g.conns_max = 64;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (strcmp(k, "--url") == 0)
			*url = v;
		else if (strcmp(k, "--body-file") == 0)
			*body = v;
		else if (strcmp(k, "--rate") == 0)
			g.rate = atof(v);
		else if (strcmp(k, "--duration-s") == 0)
			*dur = atof(v);
		else if (strcmp(k, "--count") == 0)
			g.count = atol(v);
		else if (strcmp(k, "--conns") == 0)
			g.conns_max = atol(v);
		else if (strcmp(k, "--warmup-s") == 0)
			g.warmup_us = (int64_t)(atof(v) * 1e6);
		else
			return -1;
	}
	if (g.count <= 0 && *dur > 0)
		g.count = (long)(*dur * g.rate);
	return *url && g.rate > 0 && g.count > 0 && g.conns_max > 0 ? 0 : -1;
}

static int
setup(const char *bodyf)
{
	char *body = NULL;
	size_t blen = 0;
	long n;
	struct rlimit rl;

	if (bodyf != NULL && (body = hc_read_file(bodyf, &blen)) == NULL)
		return -1;
	n = hc_format_request(g.req, sizeof(g.req), &g.url, body, blen);
	free(body);
	if (n < 0)
		return -1;
	g.reqlen = (size_t)n;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	g.c = calloc((size_t)g.conns_max, sizeof(*g.c));
	g.ep = epoll_create1(0);
	g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (g.c == NULL || g.ep < 0 || g.tfd < 0)
		return -1;
	for (long i = 0; i < g.conns_max; i++)
		g.c[i].fd = -1;
	g.nconn = g.conns_max;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	return epoll_ctl(g.ep, EPOLL_CTL_ADD, g.tfd, &ev);
}

static void
print_result(void)
{
	double secs = (double)g.count / g.rate;

	printf("{\"rate\":%.1f,\"count\":%ld,\"done\":%ld,\"ok\":%ld,"
	    "\"non2xx\":%ld,\"errors\":%ld,\"conns_opened\":%ld,"
	    "\"achieved_rps\":%.1f,", g.rate, g.count, g.done, g.ok, g.non2xx,
	    g.errors, g.opened, secs > 0 ? (double)g.ok / secs : 0.0);
	st_json(stdout, "latency_us", &g.lat);
	putchar(',');
	st_json(stdout, "service_us", &g.svc);
	putchar(',');
	st_json(stdout, "send_lag_us", &g.lag);
	printf("}\n");
}

int
main(int argc, char **argv)
{
	const char *url = NULL, *bodyf = NULL;
	double dur = 0;
	int64_t end;

	if (parse_args(argc, argv, &url, &bodyf, &dur) != 0 ||
	    hc_url_parse(url, &g.url) != 0) {
		fprintf(stderr, "usage: loadgen --url http://127.0.0.1:P/path "
		    "[--body-file F] --rate R (--duration-s D | --count N) "
		    "[--conns C] [--warmup-s W]\n");
		return 2;
	}
	if (setup(bodyf) != 0) {
		fprintf(stderr, "loadgen: setup failed\n");
		return 2;
	}
	g.t0 = hc_now_us() + 1000;
	arm_timer();
	end = due_at(g.count) + DRAIN_US;
	while (g.done < g.count && hc_now_us() < end) {
		struct epoll_event evs[256];
		int n = epoll_wait(g.ep, evs, 256, 100);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				on_timer();
			else
				on_readable(evs[i].data.ptr);
		}
		pump();
	}
	g.errors += g.count - g.done; /* never answered within the drain */
	print_result();
	return g.ok == g.count ? 0 : 1;
}
