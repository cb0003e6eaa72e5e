/* Unit tests of the FastCGI and CGI glue against a fake web server on a
 * Unix socket (fd 0 is the listen socket, as under a real server): the
 * request's params reach the request, the response leaves as well-formed
 * FCGI_STDOUT records followed by the end of stdout and FCGI_END_REQUEST,
 * and a web server that stops reading (a client that stopped reading
 * behind it) makes a write fail within the write timeout instead of
 * blocking the worker for ever, while a slow reader that keeps taking
 * bytes is not cut; the same bound for a CGI stdout pipe nobody reads.  The bounds are generous: the defect they catch is "never". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fastcgi.h>

#include "fcgi.h"
#include "util.h"

#define TIMEOUT_MS 300
#define BOUND_MS 5000 /* what "within the timeout" may take here */
#define BIG (4u * 1024 * 1024)

static char sock_path[108];

/* ---- the fake web server's side ------------------------------------- */

static void
put_record(struct rf_buf *b, int type, const void *p, size_t n)
{
	FCGI_Header h = {
		.version = FCGI_VERSION_1, .type = (unsigned char)type,
		.requestIdB0 = 1,
		.contentLengthB1 = (unsigned char)(n >> 8),
		.contentLengthB0 = (unsigned char)(n & 0xff),
	};

	assert_int_equal(rf_buf_append(b, &h, sizeof(h)), 0);
	if (n > 0)
		assert_int_equal(rf_buf_append(b, p, n), 0);
}

/* Connect and send one GET request (begin, params, empty stdin). */
static int
send_request(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	FCGI_BeginRequestBody begin = { .roleB0 = FCGI_RESPONDER };
	struct rf_buf b = { 0 };
	char params[64];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	size_t n = 0;

	assert_true(fd >= 0);
	memcpy(sa.sun_path, sock_path, sizeof(sa.sun_path));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	params[n++] = 14;
	params[n++] = 3;
	memcpy(params + n, "REQUEST_METHODGET", 17);
	n += 17;
	put_record(&b, FCGI_BEGIN_REQUEST, &begin, sizeof(begin));
	put_record(&b, FCGI_PARAMS, params, n);
	put_record(&b, FCGI_PARAMS, NULL, 0);
	put_record(&b, FCGI_STDIN, NULL, 0);
	assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
	/* All sent: libfcgi's lingering close then sees our end at once. */
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	rf_buf_free(&b);
	return fd;
}

/* Everything the responder sent, until it closed. */
static void
read_all(int fd, struct rf_buf *out)
{
	char buf[65536];
	ssize_t n;

	rf_buf_init(out, 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(rf_buf_append(out, buf, (size_t)n), 0);
}

/* Parse records: stdout content into *body; counts the end-of-stdout and
 * end-request records and checks each record is whole (but the last one
 * when cut is set: a connection shut down mid-record). */
static void
parse(const struct rf_buf *in, struct rf_buf *body, int *eof, int *end,
    bool cut)
{
	size_t i = 0;

	rf_buf_init(body, 0);
	*eof = *end = 0;
	while (i + sizeof(FCGI_Header) <= in->len) {
		const FCGI_Header *h = (const void *)(in->data + i);
		size_t n = ((size_t)h->contentLengthB1 << 8) | h->contentLengthB0;

		assert_int_equal(h->version, FCGI_VERSION_1);
		assert_int_equal(h->requestIdB0, 1);
		if (cut && i + sizeof(*h) + n + h->paddingLength > in->len)
			break;
		assert_true(i + sizeof(*h) + n + h->paddingLength <= in->len);
		assert_int_equal(*end, 0); /* nothing after the end */
		if (h->type == FCGI_STDOUT && n > 0)
			assert_int_equal(rf_buf_append(body, h + 1, n), 0);
		else if (h->type == FCGI_STDOUT)
			(*eof)++;
		else if (h->type == FCGI_END_REQUEST)
			(*end)++;
		i += sizeof(*h) + n + h->paddingLength;
	}
	if (!cut)
		assert_int_equal(i, in->len);
}

struct server {
	pthread_t tid;
	int fd;
	struct rf_buf got;
};

static void *
server_read(void *arg)
{
	struct server *s = arg;

	read_all(s->fd, &s->got);
	return NULL;
}

/* A reader slower than the writer, but never idle for the timeout: 4 kB
 * every 50 ms.  It drains the socket's buffer by three quarters (when
 * poll() reports a Unix socket writable) only every two seconds or so,
 * far longer than the timeout, so only a writer that notices partial
 * progress keeps it. */
static void *
server_read_slowly(void *arg)
{
	struct server *s = arg;
	char buf[4096];
	ssize_t n;

	rf_buf_init(&s->got, 0);
	while ((n = read(s->fd, buf, sizeof(buf))) > 0) {
		assert_int_equal(rf_buf_append(&s->got, buf, (size_t)n), 0);
		usleep(50000);
	}
	return NULL;
}

/* ---- setup ----------------------------------------------------------- */

static int
setup_listener(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	(void)state;
	snprintf(sock_path, sizeof(sock_path), "/tmp/rf-test-fcgi-%d.sock",
	    (int)getpid());
	unlink(sock_path);
	memcpy(sa.sun_path, sock_path, sizeof(sa.sun_path));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 8) != 0 || dup2(fd, 0) != 0)
		return -1;
	close(fd);
	/* A write that never returns (the defect) ends the run as a failure
	 * instead of hanging it: SIGALRM's default action kills us. */
	alarm(60);
	rf_fcgi_set_write_timeout(TIMEOUT_MS);
	return rf_fcgi_init();
}

static int
teardown_listener(void **state)
{
	(void)state;
	unlink(sock_path);
	return 0;
}

/* Write BIG bytes in 64 kB pieces, flushing each; the result of the first
 * failure (or 0) and how long it took. */
static int
write_big(struct rf_out *o, int64_t *took)
{
	static char chunk[65536];
	int64_t t0 = rf_mono_ms();
	int rc = 0;

	memset(chunk, 'x', sizeof(chunk));
	for (size_t sent = 0; sent < BIG && rc == 0; sent += sizeof(chunk)) {
		rc = o->write(o->ctx, chunk, sizeof(chunk));
		if (rc == 0)
			rc = o->flush(o->ctx);
	}
	*took = rf_mono_ms() - t0;
	return rc;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_response_is_framed_and_ended(void **state)
{
	struct rf_fcgi_conn *c = rf_fcgi_conn_new();
	struct server s = { 0 };
	struct rf_request rq;
	struct rf_buf body;
	char *data = malloc(100000);
	int eof, end;

	(void)state;
	assert_non_null(c);
	assert_non_null(data);
	for (size_t i = 0; i < 100000; i++)
		data[i] = (char)('a' + i % 26);
	s.fd = send_request();
	assert_int_equal(rf_fcgi_accept(c, &rq), 0);
	assert_string_equal(rq.param(rq.ctx, "REQUEST_METHOD"), "GET");
	assert_int_equal(pthread_create(&s.tid, NULL, server_read, &s), 0);
	assert_int_equal(rq.out.write(rq.out.ctx, "Status: 200 OK\r\n\r\n", 18), 0);
	assert_int_equal(rq.out.flush(rq.out.ctx), 0);
	/* Larger than a record and than the pending high-water mark. */
	assert_int_equal(rq.out.write(rq.out.ctx, data, 100000), 0);
	assert_int_equal(rq.out.write(rq.out.ctx, "tail", 4), 0);
	rf_fcgi_finish(c); /* sends the unflushed rest */
	pthread_join(s.tid, NULL);
	parse(&s.got, &body, &eof, &end, false);
	assert_int_equal(body.len, 18 + 100000 + 4);
	assert_memory_equal(body.data, "Status: 200 OK\r\n\r\n", 18);
	assert_memory_equal(body.data + 18, data, 100000);
	assert_memory_equal(body.data + 100018, "tail", 4);
	assert_int_equal(eof, 1);
	assert_int_equal(end, 1);
	rf_buf_free(&body);
	rf_buf_free(&s.got);
	close(s.fd);
	free(data);
	rf_fcgi_conn_free(c);
}

static void
test_server_that_stops_reading_fails_the_write(void **state)
{
	struct rf_fcgi_conn *c = rf_fcgi_conn_new();
	struct rf_request rq;
	struct rf_buf got, body;
	int64_t took, t0;
	int fd, eof, end;

	(void)state;
	assert_non_null(c);
	fd = send_request();
	assert_int_equal(rf_fcgi_accept(c, &rq), 0);
	/* Nobody reads fd: the socket fills, then the write must give up. */
	assert_int_equal(write_big(&rq.out, &took), -1);
	assert_true(took >= TIMEOUT_MS - 50);
	assert_true(took < BOUND_MS);
	/* Later writes fail at once; finishing does not block either. */
	assert_int_equal(rq.out.write(rq.out.ctx, "more", 4), -1);
	t0 = rf_mono_ms();
	rf_fcgi_finish(c);
	assert_true(rf_mono_ms() - t0 < BOUND_MS);
	/* The connection was shut down, without an end of request. */
	read_all(fd, &got);
	parse(&got, &body, &eof, &end, true);
	assert_int_equal(end, 0);
	rf_buf_free(&body);
	rf_buf_free(&got);
	close(fd);
	rf_fcgi_conn_free(c);
}

static void
test_slow_reader_is_not_cut(void **state)
{
	static char chunk[16384];
	struct rf_fcgi_conn *c = rf_fcgi_conn_new();
	struct server s = { 0 };
	struct rf_request rq;
	struct rf_buf body;
	int eof, end, rc = 0;
	size_t total = 0;

	(void)state;
	assert_non_null(c);
	memset(chunk, 'y', sizeof(chunk));
	s.fd = send_request();
	assert_int_equal(rf_fcgi_accept(c, &rq), 0);
	assert_int_equal(pthread_create(&s.tid, NULL, server_read_slowly, &s), 0);
	while (total < 384u * 1024 && rc == 0) {
		rc = rq.out.write(rq.out.ctx, chunk, sizeof(chunk));
		if (rc == 0)
			rc = rq.out.flush(rq.out.ctx);
		total += sizeof(chunk);
	}
	assert_int_equal(rc, 0);
	rf_fcgi_finish(c);
	pthread_join(s.tid, NULL);
	parse(&s.got, &body, &eof, &end, false);
	assert_int_equal(body.len, total);
	assert_int_equal(end, 1);
	rf_buf_free(&body);
	rf_buf_free(&s.got);
	close(s.fd);
	rf_fcgi_conn_free(c);
}

static void
test_server_that_hangs_up_fails_the_write_at_once(void **state)
{
	struct rf_fcgi_conn *c = rf_fcgi_conn_new();
	struct rf_request rq;
	int64_t took;
	int fd;

	(void)state;
	assert_non_null(c);
	fd = send_request();
	assert_int_equal(rf_fcgi_accept(c, &rq), 0);
	close(fd);
	assert_int_equal(write_big(&rq.out, &took), -1);
	assert_true(took < BOUND_MS);
	rf_fcgi_finish(c);
	/* The worker's connection is reusable: the next request is served. */
	fd = send_request();
	assert_int_equal(rf_fcgi_accept(c, &rq), 0);
	assert_string_equal(rq.param(rq.ctx, "REQUEST_METHOD"), "GET");
	rf_fcgi_finish(c);
	close(fd);
	rf_fcgi_conn_free(c);
}

/* CGI: stdout is a pipe that nobody reads. */
struct cgi_run {
	int rc;
	int64_t took;
};

static void
cgi_serve(void *arg, struct rf_request *rq)
{
	struct cgi_run *r = arg;

	r->rc = write_big(&rq->out, &r->took);
}

static void
test_cgi_stdout_nobody_reads_fails_the_write(void **state)
{
	struct cgi_run r = { 0 };
	int p[2], saved_out = dup(STDOUT_FILENO), saved_in = dup(STDIN_FILENO);
	int null = open("/dev/null", O_RDONLY);

	(void)state;
	assert_true(saved_out >= 0 && saved_in >= 0 && null >= 0);
	assert_int_equal(pipe(p), 0);
	fflush(stdout);
	assert_int_equal(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
	assert_int_equal(dup2(null, STDIN_FILENO), STDIN_FILENO);
	rf_fcgi_serve_cgi(cgi_serve, &r);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_in, STDIN_FILENO);
	close(saved_out);
	close(saved_in);
	close(null);
	close(p[0]);
	close(p[1]);
	assert_int_equal(r.rc, -1);
	assert_true(r.took >= TIMEOUT_MS - 50);
	assert_true(r.took < BOUND_MS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_response_is_framed_and_ended),
		cmocka_unit_test(test_server_that_stops_reading_fails_the_write),
		cmocka_unit_test(test_slow_reader_is_not_cut),
		cmocka_unit_test(test_server_that_hangs_up_fails_the_write_at_once),
		cmocka_unit_test(test_cgi_stdout_nobody_reads_fails_the_write),
	};

	return cmocka_run_group_tests(tests, setup_listener, teardown_listener);
}
