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
#include <stddef.h>
#include <stdint.h>

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

/* ---- a request handed to an event loop ----
 * rf_fcgi_detach takes the connection of the FastCGI request rq (accepted
 * last on its worker's connection) away from libfcgi: the worker may
 * accept the next one at once, and from then on rq->out writes into the
 * returned stream's backlog without ever blocking (a write fails, as for
 * a client gone, once the backlog holds RF_FCGI_BACKLOG bytes; rq->out's
 * full is true from RF_FCGI_BACKLOG_HIGH on), and
 * rq->out's flush sends what the socket takes at once, calling want(ud)
 * when bytes are left for later.  rq's params are gone (rq->param answers
 * NULL): copy what is needed before.  NULL when rq is not a FastCGI
 * request of this module, or out of memory (then nothing changed).  The
 * owner drives the rest from its loop, on the stream's fd. */
#define RF_FCGI_BACKLOG (8u * 1024 * 1024)
/* rq->out.full is true from this backlog on (a stream pauses its upstream). */
#define RF_FCGI_BACKLOG_HIGH (64u * 1024)
/* Below this again, a paused stream may go on. */
#define RF_FCGI_BACKLOG_LOW (16u * 1024)
struct rf_fcgi_stream;
struct rf_fcgi_stream *rf_fcgi_detach(struct rf_request *rq,
    void (*want)(void *ud), void *ud);
int rf_fcgi_stream_fd(const struct rf_fcgi_stream *s);
/* Send what the socket takes now: 0 (nothing left), 1 (bytes left: wait
 * until the fd is writable), -1 (the connection failed). */
int rf_fcgi_stream_send(struct rf_fcgi_stream *s);
/* The fd is readable: read and drop the web server's input.  -1 when the
 * web server closed the connection (its client is gone), else 0. */
int rf_fcgi_stream_input(struct rf_fcgi_stream *s);
/* Bytes framed and not yet sent; when the socket last took a byte. */
size_t rf_fcgi_stream_backlog(const struct rf_fcgi_stream *s);
int64_t rf_fcgi_stream_progress(const struct rf_fcgi_stream *s);
bool rf_fcgi_stream_failed(const struct rf_fcgi_stream *s);
/* Count the client as gone (it took nothing for too long). */
void rf_fcgi_stream_fail(struct rf_fcgi_stream *s);
/* Append the end of the response (end of STDOUT, END_REQUEST). */
void rf_fcgi_stream_end(struct rf_fcgi_stream *s);
/* Close the connection and free the stream.  NULL-safe. */
void rf_fcgi_stream_close(struct rf_fcgi_stream *s);

/* Wake every thread blocked in rf_fcgi_accept by shutting the listen
 * socket down; they then fail with -1. */
void rf_fcgi_shutdown(void);

/* Serve the process's one CGI request: rq from the environment and
 * stdin/stdout, handed to serve(arg, rq); then stdout is flushed and the
 * unread rest of stdin drained (bounded).  Returns 0. */
int rf_fcgi_serve_cgi(void (*serve)(void *arg, struct rf_request *rq),
    void *arg);

#endif
