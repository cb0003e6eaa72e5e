/*
 * fcgi: the only module that touches libfcgi.  Turns a FastCGI request
 * (FCGX params and streams) or a plain CGI request (environment, stdin,
 * stdout) into a struct rf_request and its output sink, so nothing else
 * ever sees an FCGX_Stream.  Threads, signals and the accept lock belong to
 * main.c, which calls these.  Prefix: rf_fcgi_.
 *
 * Every write to the client is bounded: the sink's write and flush fail
 * (-1, as for a client that hung up) when the web server has taken no
 * byte for the write timeout, so a client that stops reading cannot hold
 * a worker past its deadlines.
 */
#ifndef RF_FCGI_H
#define RF_FCGI_H

#include <stdbool.h>

#include "request.h"

/* true when the process was started as plain CGI, not by a FastCGI
 * server (FCGX_IsCGI). */
bool rf_fcgi_is_cgi(void);

/* Initialise libfcgi before the first connection.  0, or -1. */
int rf_fcgi_init(void);

/* How long a write may wait for the web server (or, as CGI, the pipe) to
 * take a byte before the client counts as gone.  main.c sets it once,
 * before serving, to RELAYFORGE_STREAM_IDLE_TIMEOUT_MS; ms <= 0 is
 * ignored.  Until then it is RF_FCGI_WRITE_TIMEOUT_DEFAULT. */
#define RF_FCGI_WRITE_TIMEOUT_DEFAULT 20000L
void rf_fcgi_set_write_timeout(long ms);

/* One worker thread's connection state (opaque).  Accepts fail with -1
 * when a signal interrupts them (FCGI_FAIL_ACCEPT_ON_INTR), so a stop
 * signal is seen.  Free with rf_fcgi_conn_free (NULL-safe); NULL from new
 * when out of memory. */
struct rf_fcgi_conn;
struct rf_fcgi_conn *rf_fcgi_conn_new(void);
void rf_fcgi_conn_free(struct rf_fcgi_conn *c);

/* Wait for the next request on the listen socket (fd 0).  On 0, rq is
 * reset and its param, read, ctx and out are those of the request, valid
 * until rf_fcgi_finish.  -1 when accepting failed (interrupted, or the
 * socket was shut down).  The caller serialises accepts. */
int rf_fcgi_accept(struct rf_fcgi_conn *c, struct rf_request *rq);
/* Send what is left and end the request accepted last.  After a failed
 * write the connection is shut down instead (libfcgi's closing records
 * then fail at once). */
void rf_fcgi_finish(struct rf_fcgi_conn *c);

/* Wake every thread blocked in rf_fcgi_accept by shutting the listen
 * socket down; they then fail with -1. */
void rf_fcgi_shutdown(void);

/* Serve the process's one CGI request: rq from the environment and
 * stdin/stdout, handed to serve(arg, rq); then stdout is flushed and the
 * unread rest of stdin drained (bounded).  Returns 0. */
int rf_fcgi_serve_cgi(void (*serve)(void *arg, struct rf_request *rq),
    void *arg);

#endif
