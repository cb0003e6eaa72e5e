/*
 * loop: epoll, a binary heap of timers and a posting queue woken through
 * an eventfd.  A loop holds thousands of mostly idle requests, so each
 * thing it waits on costs one struct (an rf_watch or an rf_timer inside
 * its owner) and no thread: arming a timer is O(log n), firing the due
 * ones is O(k log n), and an idle loop sleeps in epoll_wait until the
 * earliest timer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop.h"
#include "util.h"

#define MAX_EVENTS 256

struct post {
	struct post *next;
	void (*fn)(void *arg);
	void *arg;
};

struct rf_loop {
	int ep;
	struct rf_watch wake;      /* the eventfd other threads write */
	struct rf_watch **byfd;    /* the watch of each registered fd */
	size_t nbyfd;
	struct rf_timer **heap;    /* min-heap on at */
	size_t nheap, capheap;
	pthread_mutex_t lock;      /* guards posts */
	struct post *posts, **tail;
	atomic_bool posted;        /* posts may be waiting: take the lock */
};

static void
drain_wake(struct rf_watch *w, uint32_t revents)
{
	uint64_t n;

	(void)revents;
	while (read(w->fd, &n, sizeof(n)) > 0)
		;
}

struct rf_loop *
rf_loop_new(void)
{
	struct rf_loop *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	l->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->wake.cb = drain_wake;
	l->tail = &l->posts;
	pthread_mutex_init(&l->lock, NULL);
	if (l->ep < 0 || l->wake.fd < 0 ||
	    rf_loop_watch(l, &l->wake, EPOLLIN) != 0) {
		rf_loop_free(l);
		return NULL;
	}
	return l;
}

void
rf_loop_free(struct rf_loop *l)
{
	struct post *p, *next;

	if (l == NULL)
		return;
	for (p = l->posts; p != NULL; p = next) {
		next = p->next;
		free(p);
	}
	if (l->wake.fd >= 0)
		close(l->wake.fd);
	if (l->ep >= 0)
		close(l->ep);
	pthread_mutex_destroy(&l->lock);
	free(l->byfd);
	free(l->heap);
	free(l);
}

/* Events carry the fd, not the watch: a callback may drop (and free) a
 * watch whose event is still waiting in the same batch, which then finds
 * no watch, or a new one on a reused fd that tolerates a spurious event. */
static int
byfd_grow(struct rf_loop *l, int fd)
{
	size_t n = l->nbyfd ? l->nbyfd : 256;
	struct rf_watch **t;

	while (n <= (size_t)fd)
		n *= 2;
	if (n == l->nbyfd)
		return 0;
	if ((t = realloc(l->byfd, n * sizeof(*t))) == NULL)
		return -1;
	memset(t + l->nbyfd, 0, (n - l->nbyfd) * sizeof(*t));
	l->byfd = t;
	l->nbyfd = n;
	return 0;
}

int
rf_loop_watch(struct rf_loop *l, struct rf_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = w->fd };
	int op;

	if (events == w->events)
		return 0;
	if (w->fd < 0 || byfd_grow(l, w->fd) != 0)
		return -1;
	op = w->events == 0 ? EPOLL_CTL_ADD :
	    events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	if (epoll_ctl(l->ep, op, w->fd, &ev) != 0 && op != EPOLL_CTL_DEL)
		return -1;
	w->events = events;
	l->byfd[w->fd] = events != 0 ? w : NULL;
	return 0;
}

/* ---- timers: a binary min-heap; slot is the index + 1 ------------------ */

static void
heap_set(struct rf_loop *l, size_t i, struct rf_timer *t)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void
sift_up(struct rf_loop *l, size_t i)
{
	struct rf_timer *t = l->heap[i];

	while (i > 0 && l->heap[(i - 1) / 2]->at > t->at) {
		heap_set(l, i, l->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(l, i, t);
}

static void
sift_down(struct rf_loop *l, size_t i)
{
	struct rf_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->at < l->heap[c]->at)
			c++;
		if (l->heap[c]->at >= t->at)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void
rf_loop_timer_stop(struct rf_loop *l, struct rf_timer *t)
{
	size_t i;

	if (t->slot == 0)
		return;
	i = t->slot - 1;
	t->slot = 0;
	if (--l->nheap == i)
		return;
	heap_set(l, i, l->heap[l->nheap]);
	sift_down(l, i);
	sift_up(l, l->heap[i]->slot - 1);
}

void
rf_loop_timer_at(struct rf_loop *l, struct rf_timer *t, int64_t at_ms)
{
	rf_loop_timer_stop(l, t);
	if (l->nheap == l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 64;
		struct rf_timer **h = realloc(l->heap, cap * sizeof(*h));

		if (h == NULL)
			abort(); /* a lost timer would hang a request forever */
		l->heap = h;
		l->capheap = cap;
	}
	t->at = at_ms;
	heap_set(l, l->nheap, t);
	sift_up(l, l->nheap++);
}

/* Fire every timer due by now; a callback may arm or stop any timer. */
static int
fire_timers(struct rf_loop *l)
{
	int64_t now = rf_mono_ms();
	int n = 0;

	while (l->nheap > 0 && l->heap[0]->at <= now) {
		struct rf_timer *t = l->heap[0];

		rf_loop_timer_stop(l, t);
		t->cb(t);
		n++;
	}
	return n;
}

/* ---- posts ------------------------------------------------------------ */

int
rf_loop_post(struct rf_loop *l, void (*fn)(void *arg), void *arg)
{
	struct post *p = malloc(sizeof(*p));
	uint64_t one = 1;

	if (p == NULL)
		return -1;
	*p = (struct post){ .fn = fn, .arg = arg };
	pthread_mutex_lock(&l->lock);
	*l->tail = p;
	l->tail = &p->next;
	atomic_store(&l->posted, true);
	pthread_mutex_unlock(&l->lock);
	/* A full eventfd counter still wakes the loop: ignore EAGAIN. */
	if (write(l->wake.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return 0;
	return 0;
}

static int
run_posts(struct rf_loop *l)
{
	struct post *p, *next;
	int n = 0;

	if (!atomic_load(&l->posted))
		return 0; /* the common turn of a busy loop: no lock */
	pthread_mutex_lock(&l->lock);
	atomic_store(&l->posted, false);
	p = l->posts;
	l->posts = NULL;
	l->tail = &l->posts;
	pthread_mutex_unlock(&l->lock);
	for (; p != NULL; p = next, n++) {
		next = p->next;
		p->fn(p->arg);
		free(p);
	}
	return n;
}

/* ---- one turn ---------------------------------------------------------- */

static int
wait_ms(struct rf_loop *l, int max_ms)
{
	int64_t left;

	if (l->nheap == 0)
		return max_ms;
	left = l->heap[0]->at - rf_mono_ms();
	if (left < 0)
		left = 0;
	if (max_ms >= 0 && left > max_ms)
		left = max_ms;
	return left > 60000 ? 60000 : (int)left;
}

int
rf_loop_run_once(struct rf_loop *l, int max_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int n, ran = 0;

	n = epoll_wait(l->ep, ev, MAX_EVENTS, wait_ms(l, max_ms));
	if (n < 0 && errno != EINTR)
		return -1;
	for (int i = 0; i < n; i++) {
		int fd = ev[i].data.fd;
		struct rf_watch *w = (size_t)fd < l->nbyfd ? l->byfd[fd] : NULL;

		if (w != NULL) {
			w->cb(w, ev[i].events);
			ran++;
		}
	}
	ran += run_posts(l);
	ran += fire_timers(l);
	return ran;
}
