/*
 * httpc: a small HTTP/1.1 client core for the bench tools.  Loopback only,
 * so name resolution is inet_pton and a connect is immediate.  The response
 * parser is a state machine fed with whatever a read returned; it never
 * buffers body bytes, it hands them on.
 */
#include "httpc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t
hc_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
hc_url_parse(const char *url, struct hc_url *u)
{
	const char *h, *colon, *slash;
	size_t hl;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	h = url + 7;
	slash = strchr(h, '/');
	colon = strchr(h, ':');
	if (slash == NULL)
		slash = h + strlen(h);
	if (colon == NULL || colon > slash)
		return -1;
	hl = (size_t)(colon - h);
	if (hl == 0 || hl >= sizeof(u->host))
		return -1;
	memcpy(u->host, h, hl);
	u->host[hl] = '\0';
	u->port = atoi(colon + 1);
	if (u->port <= 0 || u->port > 65535)
		return -1;
	if (snprintf(u->path, sizeof(u->path), "%s", *slash ? slash : "/") >=
	    (int)sizeof(u->path))
		return -1;
	return 0;
}

int
hc_connect(const struct hc_url *u, bool nonblock)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)u->port) };
	int one = 1;
	int fd;

	if (inet_pton(AF_INET, u->host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	if (nonblock)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

long
hc_format_request(char *out, size_t len, const struct hc_url *u,
    const char *body, size_t blen)
{
	int n;

	if (body == NULL)
		n = snprintf(out, len, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n",
		    u->path, u->host, u->port);
	else
		n = snprintf(out, len, "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
		    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		    "\r\n", u->path, u->host, u->port, blen);
	if (n < 0 || (size_t)n >= len || (body && (size_t)n + blen >= len))
		return -1;
	if (body != NULL) {
		memcpy(out + n, body, blen);
		n += (int)blen;
	}
	return n;
}

char *
hc_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    n > 1024 * 1024 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*len = (size_t)n;
out:
	fclose(f);
	return buf;
}

void
hc_resp_init(struct hc_resp *r, hc_body_fn on_body, void *ud)
{
	r->state = HC_HEAD;
	r->status = 0;
	r->keep_alive = true;
	r->left = 0;
	r->on_body = on_body;
	r->ud = ud;
	r->headlen = 0;
	r->linelen = 0;
}

/* The value of a header in the NUL-terminated head, or NULL. */
static const char *
head_value(const char *head, const char *name)
{
	size_t nl = strlen(name);
	const char *l = strstr(head, "\r\n");

	while (l != NULL && l[2] != '\r') {
		l += 2;
		if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
			l += nl + 1;
			while (*l == ' ')
				l++;
			return l;
		}
		l = strstr(l, "\r\n");
	}
	return NULL;
}

/* The head is complete: decide how the body is delimited. */
static int
head_done(struct hc_resp *r)
{
	const char *v;

	r->head[r->headlen] = '\0';
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		return -1;
	v = head_value(r->head, "Connection");
	if (v != NULL && strncasecmp(v, "close", 5) == 0)
		r->keep_alive = false;
	if (r->status == 204 || r->status == 304 || r->status < 200) {
		r->state = HC_DONE;
		return 0;
	}
	v = head_value(r->head, "Transfer-Encoding");
	if (v != NULL && strncasecmp(v, "chunked", 7) == 0) {
		r->state = HC_CHUNK_SIZE;
		return 0;
	}
	v = head_value(r->head, "Content-Length");
	if (v != NULL) {
		r->left = strtoull(v, NULL, 10);
		r->state = r->left > 0 ? HC_BODY_LEN : HC_DONE;
		return 0;
	}
	r->keep_alive = false;
	r->state = HC_BODY_EOF;
	return 0;
}

/* Bytes of the head; stops after the blank line. */
static long
feed_head(struct hc_resp *r, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (r->headlen + 1 >= sizeof(r->head))
			return -1;
		r->head[r->headlen++] = p[i];
		if (r->headlen >= 4 &&
		    memcmp(r->head + r->headlen - 4, "\r\n\r\n", 4) == 0) {
			if (head_done(r) != 0)
				return -1;
			return (long)i + 1;
		}
	}
	return (long)n;
}

/* A chunk-size line or the CRLF after chunk data, or trailer lines. */
static long
feed_line(struct hc_resp *r, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (r->linelen + 1 >= sizeof(r->line))
			return -1;
		r->line[r->linelen++] = p[i];
		if (p[i] != '\n')
			continue;
		r->line[r->linelen] = '\0';
		r->linelen = 0;
		if (r->state == HC_CHUNK_CRLF) {
			r->state = HC_CHUNK_SIZE;
		} else if (r->state == HC_TRAILER) {
			if (r->line[0] == '\r' || r->line[0] == '\n')
				r->state = HC_DONE;
		} else {
			char *end;
			r->left = strtoull(r->line, &end, 16);
			if (end == r->line)
				return -1;
			r->state = r->left > 0 ? HC_CHUNK_DATA : HC_TRAILER;
		}
		return (long)i + 1;
	}
	return (long)n;
}

static long
feed_data(struct hc_resp *r, const char *p, size_t n)
{
	size_t take = n;

	if (r->state != HC_BODY_EOF && take > r->left)
		take = (size_t)r->left;
	if (r->on_body != NULL && take > 0)
		r->on_body(r->ud, p, take);
	if (r->state == HC_BODY_EOF)
		return (long)take;
	r->left -= take;
	if (r->left == 0)
		r->state = r->state == HC_BODY_LEN ? HC_DONE : HC_CHUNK_CRLF;
	return (long)take;
}

long
hc_resp_feed(struct hc_resp *r, const char *p, size_t n)
{
	size_t used = 0;

	while (used < n && r->state != HC_DONE) {
		long k;

		switch (r->state) {
		case HC_HEAD:
			k = feed_head(r, p + used, n - used);
			break;
		case HC_BODY_LEN:
		case HC_BODY_EOF:
		case HC_CHUNK_DATA:
			k = feed_data(r, p + used, n - used);
			break;
		default:
			k = feed_line(r, p + used, n - used);
			break;
		}
		if (k < 0)
			return -1;
		used += (size_t)k;
	}
	return (long)used;
}

int
hc_resp_eof(struct hc_resp *r)
{
	if (r->state == HC_BODY_EOF) {
		r->state = HC_DONE;
		return 0;
	}
	return r->state == HC_DONE ? 0 : -1;
}
