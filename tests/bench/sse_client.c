/*
 * sse_client: drives token streams for `make bench` and times them.
 *
 *   sse_client --url URL --body-file F [--mode gw|openai] [-c N] [-n TOTAL]
 *              [--ramp-ms MS] [--timeout-s S] [--expect-tokens T]
 *
 * N connections (one thread, epoll) run TOTAL streams, each connection one
 * stream at a time (keep-alive when the server allows it); with --ramp-ms
 * the connections start spread over that time.  --mode gw reads RelayForge's
 * events (event: token / error / done); --mode openai reads an upstream's
 * chat.completion.chunk lines ending in data: [DONE] (the mock called
 * directly).
 *
 * mock_fast writes "@<CLOCK_MONOTONIC us>" into every token the moment it
 * sends it, so for each token we know when it left the upstream:
 *   ttfb_us        request sent -> first response byte
 *   ttft_us        request sent -> first token
 *   first_relay_us first token: left the upstream -> arrived here
 *   token_relay_us every later token, the same
 *   gap_us         between consecutive tokens of one stream, as received
 * A stream is ok when it answered 200, carried at least one token (exactly
 * T with --expect-tokens: the ladder's "held without error" means every
 * token arrived), ended with done (gw: {"ok": true}) or [DONE], and had no
 * error event.  Prints one JSON object.  Exit 0 when every stream was ok,
 * else 1.
 *
 * Scale: one thread holds 5,000 and more connections (the bench raises the
 * soft fd limit to the hard one).  Work per event is O(1): idle slots wait
 * in a free list and the deadlines are swept ten times a second, so the
 * client's own CPU does not grow with the streams it holds (it shares two
 * cores with the gateway it measures).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "httpc.h"
#include "stats.h"

#define LINE_MAX_BYTES 65536
#define REQ_MAX (64 * 1024)

enum mode { MODE_GW, MODE_OPENAI };
enum err { E_CONNECT, E_STATUS, E_EVENT, E_INCOMPLETE, E_SHORT, E_TIMEOUT,
    E_PROTO, E__COUNT };
static const char *const err_names[E__COUNT] = { "connect", "status",
    "error_event", "incomplete", "short", "timeout", "protocol" };

struct slot {
	int fd;
	bool busy;               /* a stream in flight */
	int next_free;           /* free list link (index), -1 at its end */
	int64_t start_at;        /* ramp: not before this time */
	struct hc_resp resp;
	int64_t t_send, t_first_byte, t_first_token, t_last_token, deadline;
	int tokens;
	bool done_ok, err_event;
	char event[32];
	size_t linelen;
	char line[LINE_MAX_BYTES];
};

static struct {
	enum mode mode;
	struct hc_url url;
	char req[REQ_MAX];
	size_t reqlen;
	int conc, total, launched, finished, ok, expect_tokens;
	int first_unstarted;     /* slots below it have been started once */
	int free_head;           /* idle slots that may start the next stream */
	int64_t ramp_us, timeout_us, now, next_sweep;
	int streaming, peak_streaming, open, peak_open;
	long errors[E__COUNT];
	long statuses[6];        /* by first digit */
	struct st_series ttfb, ttft, first_relay, token_relay, gap;
	int ep;
} g;

/* The "@<digits>" stamp in s, or -1. */
static int64_t
find_stamp(const char *s)
{
	for (const char *a = strchr(s, '@'); a; a = strchr(a + 1, '@'))
		if (a[1] >= '0' && a[1] <= '9')
			return strtoll(a + 1, NULL, 10);
	return -1;
}

static void
on_token(struct slot *s, const char *data)
{
	int64_t stamp = find_stamp(data);
	int64_t relay = stamp >= 0 ? g.now - stamp : -1;

	if (s->tokens == 0) {
		s->t_first_token = g.now;
		st_add(&g.ttft, g.now - s->t_send);
		if (relay >= 0)
			st_add(&g.first_relay, relay);
		if (++g.streaming > g.peak_streaming)
			g.peak_streaming = g.streaming;
	} else {
		st_add(&g.gap, g.now - s->t_last_token);
		if (relay >= 0)
			st_add(&g.token_relay, relay);
	}
	s->t_last_token = g.now;
	s->tokens++;
}

static void
on_data(struct slot *s, const char *data)
{
	if (g.mode == MODE_OPENAI) {
		if (strcmp(data, "[DONE]") == 0)
			s->done_ok = true;
		else if (strstr(data, "\"error\"") != NULL)
			s->err_event = true;
		else if (find_stamp(data) >= 0)
			on_token(s, data);
		return;
	}
	if (strcmp(s->event, "token") == 0)
		on_token(s, data);
	else if (strcmp(s->event, "error") == 0)
		s->err_event = true;
	else if (strcmp(s->event, "done") == 0)
		s->done_ok = strstr(data, "true") != NULL;
}

static void
on_line(struct slot *s)
{
	char *l = s->line;

	if (s->linelen > 0 && l[s->linelen - 1] == '\r')
		l[--s->linelen] = '\0';
	if (s->linelen == 0) {
		s->event[0] = '\0';
	} else if (strncmp(l, "event:", 6) == 0) {
		l += 6;
		while (*l == ' ')
			l++;
		snprintf(s->event, sizeof(s->event), "%s", l);
	} else if (strncmp(l, "data:", 5) == 0) {
		l += 5;
		while (*l == ' ')
			l++;
		on_data(s, l);
	}
	s->linelen = 0;
}

/* Body bytes: split into SSE lines (bounded). */
static void
on_body(void *ud, const char *p, size_t n)
{
	struct slot *s = ud;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			s->line[s->linelen] = '\0';
			on_line(s);
		} else if (s->linelen + 1 < sizeof(s->line)) {
			s->line[s->linelen++] = p[i];
		}
	}
}

static void
close_fd(struct slot *s)
{
	if (s->fd < 0)
		return;
	epoll_ctl(g.ep, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
	g.open--;
}

/* A slot that has finished a stream may start the next one. */
static void
release(struct slot *slots, struct slot *s)
{
	s->next_free = g.free_head;
	g.free_head = (int)(s - slots);
}

/* The stream of slot s ended; err < 0 when it was not cut short. */
static void
finish(struct slot *s, int err)
{
	int st = s->resp.status;

	if (s->tokens > 0)
		g.streaming--;
	if (st >= 100 && st < 600)
		g.statuses[st / 100]++;
	if (err < 0 && st != 200)
		err = E_STATUS;
	else if (err < 0 && s->err_event)
		err = E_EVENT;
	else if (err < 0 && (!s->done_ok || s->tokens == 0))
		err = E_INCOMPLETE;
	else if (err < 0 && g.expect_tokens > 0 && s->tokens != g.expect_tokens)
		err = E_SHORT;
	if (err >= 0) {
		g.errors[err]++;
		close_fd(s);
	} else {
		g.ok++;
		st_add(&g.ttfb, s->t_first_byte - s->t_send);
	}
	s->busy = false;
	g.finished++;
}

static int
start(struct slot *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
	size_t off = 0;

	if (s->fd < 0) {
		s->fd = hc_connect(&g.url, false);
		if (s->fd >= 0 && epoll_ctl(g.ep, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
			close(s->fd);
			s->fd = -1;
		}
		if (s->fd < 0) {
			g.launched++;
			s->busy = true;
			finish(s, E_CONNECT);
			return -1;
		}
		if (++g.open > g.peak_open)
			g.peak_open = g.open;
	}
	hc_resp_init(&s->resp, on_body, s);
	s->tokens = 0;
	s->done_ok = s->err_event = false;
	s->event[0] = '\0';
	s->linelen = 0;
	s->t_first_byte = 0;
	s->t_send = hc_now_us();
	s->deadline = s->t_send + g.timeout_us;
	/* A blocking socket: the request fits in the send buffer at once. */
	while (off < g.reqlen) {
		ssize_t n = write(s->fd, g.req + off, g.reqlen - off);
		if (n <= 0 && errno != EINTR)
			break;
		off += n > 0 ? (size_t)n : 0;
	}
	g.launched++;
	s->busy = true;
	if (off < g.reqlen) {
		finish(s, E_CONNECT);
		return -1;
	}
	return 0;
}

static void
on_readable(struct slot *slots, struct slot *s)
{
	char buf[65536];
	ssize_t n = read(s->fd, buf, sizeof(buf));
	long used;

	g.now = hc_now_us();
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (!s->busy) { /* the server closed an idle keep-alive connection */
		close_fd(s);
		return;
	}
	if (n <= 0) {
		finish(s, hc_resp_eof(&s->resp) == 0 ? -1 : E_INCOMPLETE);
		close_fd(s);
		release(slots, s);
		return;
	}
	if (s->t_first_byte == 0)
		s->t_first_byte = g.now;
	used = hc_resp_feed(&s->resp, buf, (size_t)n);
	if (used < 0) {
		finish(s, E_PROTO);
		release(slots, s);
		return;
	}
	if (s->resp.state == HC_DONE) {
		bool keep = s->resp.keep_alive && used == n;
		finish(s, -1);
		if (!keep)
			close_fd(s);
		release(slots, s);
	}
}

/* Time out stuck streams: a sweep of every slot, ten times a second. */
static void
sweep(struct slot *slots, int64_t now)
{
	if (now < g.next_sweep)
		return;
	g.next_sweep = now + 100000;
	for (int i = 0; i < g.first_unstarted; i++) {
		struct slot *s = &slots[i];

		if (s->busy && now > s->deadline) {
			finish(s, E_TIMEOUT);
			close_fd(s);
			release(slots, s);
		}
	}
}

/* Start the slots whose ramp time has come, then idle slots again while
 * streams remain to run; time out stuck ones. */
static void
tend(struct slot *slots)
{
	int64_t now = hc_now_us();

	sweep(slots, now);
	while (g.first_unstarted < g.conc && g.launched < g.total &&
	    now >= slots[g.first_unstarted].start_at) {
		struct slot *s = &slots[g.first_unstarted++];

		if (start(s) != 0)
			release(slots, s);
	}
	while (g.free_head >= 0 && g.launched < g.total) {
		struct slot *s = &slots[g.free_head];

		g.free_head = s->next_free;
		if (start(s) != 0)
			release(slots, s);
	}
}

static void
print_result(int64_t wall_us)
{
	printf("{\"streams\":%d,\"ok\":%d,\"concurrency\":%d,\"peak_open\":%d,"
	    "\"peak_streaming\":%d,\"wall_ms\":%.1f,\"errors\":{", g.finished,
	    g.ok, g.conc, g.peak_open, g.peak_streaming, (double)wall_us / 1000.0);
	for (int i = 0; i < E__COUNT; i++)
		printf("%s\"%s\":%ld", i ? "," : "", err_names[i], g.errors[i]);
	printf("},\"status\":{\"2xx\":%ld,\"4xx\":%ld,\"5xx\":%ld},",
	    g.statuses[2], g.statuses[4], g.statuses[5]);
	st_json(stdout, "ttfb_us", &g.ttfb);
	putchar(',');
	st_json(stdout, "ttft_us", &g.ttft);
	putchar(',');
	st_json(stdout, "first_relay_us", &g.first_relay);
	putchar(',');
	st_json(stdout, "token_relay_us", &g.token_relay);
	putchar(',');
	st_json(stdout, "gap_us", &g.gap);
	printf("}\n");
}

static int
parse_args(int argc, char **argv, const char **url,
    const char **body)
{
	g.conc = 1;
	g.total = 1;
	g.timeout_us = 60 * 1000000LL;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (strcmp(k, "--url") == 0)
			*url = v;
		else if (strcmp(k, "--body-file") == 0)
			*body = v;
		else if (strcmp(k, "--mode") == 0)
			g.mode = strcmp(v, "openai") == 0 ? MODE_OPENAI : MODE_GW;
		else if (strcmp(k, "-c") == 0)
			g.conc = atoi(v);
		else if (strcmp(k, "-n") == 0)
			g.total = atoi(v);
		else if (strcmp(k, "--ramp-ms") == 0)
			g.ramp_us = atoll(v) * 1000;
		else if (strcmp(k, "--timeout-s") == 0)
			g.timeout_us = atoll(v) * 1000000;
		else if (strcmp(k, "--expect-tokens") == 0)
			g.expect_tokens = atoi(v);
		else
			return -1;
	}
	return *url && *body && g.conc > 0 && g.total > 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const char *url = NULL, *bodyf = NULL;
	struct rlimit rl;
	struct slot *slots;
	size_t blen = 0;
	char *body;
	long rl_len;
	int64_t t0;

	if (parse_args(argc, argv, &url, &bodyf) != 0 || hc_url_parse(url, &g.url) != 0) {
		fprintf(stderr, "usage: sse_client --url http://127.0.0.1:P/path "
		    "--body-file F [--mode gw|openai] [-c N] [-n TOTAL] "
		    "[--ramp-ms MS] [--timeout-s S] [--expect-tokens T]\n");
		return 2;
	}
	if ((body = hc_read_file(bodyf, &blen)) == NULL ||
	    (rl_len = hc_format_request(g.req, sizeof(g.req), &g.url, body, blen)) < 0) {
		fprintf(stderr, "sse_client: cannot use body %s\n", bodyf);
		return 2;
	}
	free(body);
	g.reqlen = (size_t)rl_len;
	/* A kept-alive connection the server has closed fails the next
	 * write: an error counted, not a signal that ends the run. */
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (g.conc > g.total)
		g.conc = g.total;
	slots = calloc((size_t)g.conc, sizeof(*slots));
	g.ep = epoll_create1(0);
	if (slots == NULL || g.ep < 0)
		return 2;
	t0 = hc_now_us();
	g.free_head = -1;
	for (int i = 0; i < g.conc; i++) {
		slots[i].fd = -1;
		slots[i].next_free = -1;
		slots[i].start_at = t0 + g.ramp_us * i / g.conc;
	}
	while (g.finished < g.total) {
		struct epoll_event evs[256];
		int n;

		tend(slots);
		n = epoll_wait(g.ep, evs, 256, 5);
		for (int i = 0; i < n; i++)
			on_readable(slots, evs[i].data.ptr);
	}
	print_result(hc_now_us() - t0);
	for (int i = 0; i < g.conc; i++)
		close_fd(&slots[i]);
	free(slots);
	return g.ok == g.total ? 0 : 1;
}
