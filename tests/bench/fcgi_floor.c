/*
 * fcgi_floor: the floor under every gateway figure -- a FastCGI responder
 * that does nothing.  Same threading as the real one (N threads, one
 * mutex around FCGX_Accept_r), reads the body, answers a fixed JSON body of
 * the size of a RelayForge chat answer.  `make bench` runs it behind the
 * same lighttpd config, so "lighttpd + FastCGI" is measured apart from
 * "RelayForge".
 *
 *   fcgi_floor [threads]     (spawned by lighttpd through bin-path)
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static char answer[2048];
static int answer_len;

static void *
worker(void *arg)
{
	FCGX_Request r;
	char buf[8192];

	(void)arg;
	FCGX_InitRequest(&r, 0, 0);
	for (;;) {
		int rc;

		pthread_mutex_lock(&accept_lock);
		rc = FCGX_Accept_r(&r);
		pthread_mutex_unlock(&accept_lock);
		if (rc < 0)
			break;
		while (FCGX_GetStr(buf, sizeof(buf), r.in) > 0)
			;
		FCGX_PutStr(answer, answer_len, r.out);
		FCGX_FFlush(r.out);
		FCGX_Finish_r(&r);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 8;
	char body[1024];
	pthread_t *t;
	int blen;

	memset(body, 0, sizeof(body));
	blen = snprintf(body, sizeof(body), "{\"success\":true,\"data\":{\"text\":"
	    "\"%0600d\",\"meta\":{}}}", 0);
	answer_len = snprintf(answer, sizeof(answer), "Status: 200 OK\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Content-Length: %d\r\nCache-Control: no-store\r\n\r\n%s", blen, body);
	if (n <= 0 || FCGX_Init() != 0)
		return 1;
	/* libfcgi's SIGTERM handler only sets a flag; lighttpd stops its
	 * backends with SIGTERM, and this one has nothing to finish. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	t = calloc((size_t)n, sizeof(*t));
	if (t == NULL)
		return 1;
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
	return 0;
}
