/*
 * loop: one event loop (epoll) with millisecond timers and a way for other
 * threads to hand it work.  It knows nothing about HTTP, FastCGI or
 * libcurl: upstream.c registers libcurl's sockets and timeout here,
 * relay.c the web server's connections.  Everything registered with a
 * loop is touched only by the thread that runs it, except rf_loop_post
 * and rf_loop_wake, which any thread may call.  Prefix: rf_loop_.
 */
#ifndef RF_LOOP_H
#define RF_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rf_loop;

/* A file descriptor watched by the loop.  events are EPOLLIN / EPOLLOUT
 * etc. (sys/epoll.h); cb gets what happened.  The owner keeps the struct
 * alive while it is registered. */
struct rf_watch {
	int fd;
	uint32_t events;   /* what is registered now (0: not registered) */
	void (*cb)(struct rf_watch *w, uint32_t revents);
};

/* A one-shot timer on the monotonic clock (rf_mono_ms).  Zero it before
 * first use; the owner keeps it alive while it is armed. */
struct rf_timer {
	int64_t at;        /* when it fires */
	size_t slot;       /* its place in the loop's heap + 1; 0 = not armed */
	void (*cb)(struct rf_timer *t);
};

/* A new loop, or NULL (no memory or no descriptors). */
struct rf_loop *rf_loop_new(void);
/* Free a loop nothing is registered with any more.  NULL-safe. */
void rf_loop_free(struct rf_loop *l);

/* Register, change or drop (events 0) what w->fd is watched for.  0, or
 * -1 (errno from epoll_ctl).  A watch must be dropped before its fd is
 * closed. */
int rf_loop_watch(struct rf_loop *l, struct rf_watch *w, uint32_t events);

/* Arm t to fire at at_ms (re-arming moves it); disarm it.  Disarming a
 * timer that is not armed does nothing. */
void rf_loop_timer_at(struct rf_loop *l, struct rf_timer *t, int64_t at_ms);
void rf_loop_timer_stop(struct rf_loop *l, struct rf_timer *t);

/* From any thread: run fn(arg) on the loop's thread soon.  0, or -1 (no
 * memory: fn will not run). */
int rf_loop_post(struct rf_loop *l, void (*fn)(void *arg), void *arg);

/* Wait for events up to max_ms (-1: until one comes; 0: do not wait),
 * then run every watch, timer and posted function that is due.  Returns
 * how many callbacks ran, or -1 when epoll itself failed. */
int rf_loop_run_once(struct rf_loop *l, int max_ms);

#endif
