/*
 * fcgi: FastCGI and plain CGI into struct rf_request / struct rf_out.
 *
 * Under a FastCGI server each worker thread owns one FCGX_Request (inside a
 * struct rf_fcgi_conn) and accepts on the listen socket the server hands us
 * as fd 0; params, body and output go through FCGX_GetParam, FCGX_GetStr
 * and FCGX_PutStr.  Started as CGI, the one request comes from getenv,
 * stdin and stdout.  This is the only file that includes <fcgiapp.h>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <fcgiapp.h>

#include "fcgi.h"

/* Bound on what is drained from a CGI stdin after the answer. */
#define CGI_DRAIN_MAX (64u * 1024 * 1024)

struct rf_fcgi_conn {
	FCGX_Request fr;
};

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

static int
fcgi_write(void *ctx, const char *p, size_t n)
{
	return FCGX_PutStr(p, (int)n, ((FCGX_Request *)ctx)->out) == (int)n ? 0 : -1;
}

static int
fcgi_flush(void *ctx)
{
	return FCGX_FFlush(((FCGX_Request *)ctx)->out) == 0 ? 0 : -1;
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
	return c;
}

void
rf_fcgi_conn_free(struct rf_fcgi_conn *c)
{
	if (c == NULL)
		return;
	FCGX_Free(&c->fr, 1);
	free(c);
}

int
rf_fcgi_accept(struct rf_fcgi_conn *c, struct rf_request *rq)
{
	if (FCGX_Accept_r(&c->fr) < 0)
		return -1;
	*rq = (struct rf_request){
		.param = fcgi_param, .read = fcgi_read, .ctx = &c->fr,
		.out = { .write = fcgi_write, .flush = fcgi_flush, .ctx = &c->fr },
	};
	return 0;
}

void
rf_fcgi_finish(struct rf_fcgi_conn *c)
{
	FCGX_Finish_r(&c->fr);
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
	(void)ctx;
	return fwrite(p, 1, n, stdout) == n ? 0 : -1;
}

static int
cgi_flush(void *ctx)
{
	(void)ctx;
	return fflush(stdout) == 0 ? 0 : -1;
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
	struct rf_request rq = {
		.param = cgi_param, .read = cgi_read,
		.out = { .write = cgi_write, .flush = cgi_flush },
	};

	serve(arg, &rq);
	fflush(stdout);
	drain_stdin();
	return 0;
}
