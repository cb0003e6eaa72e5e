/* Unit tests of loop: timers fire in deadline order whatever order they
 * were armed in, a stopped or re-armed timer fires once at its new time
 * (or never), a callback may arm and stop others; a watched fd's callback
 * gets its events and a dropped watch gets none, also when it is dropped
 * by an earlier callback of the same batch; posts from other threads all
 * run on the loop's thread, in order per poster, and wake a loop that
 * waits without a timer.  Waits are bounded; nothing asserts a duration
 * beyond "fired no earlier than armed". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"
#include "util.h"

#define NT 64

struct tmark {
	struct rf_timer t;
	int id;
	int64_t armed_at;
};

static int order[NT * 2];
static int norder;

static void
on_mark(struct rf_timer *t)
{
	struct tmark *m = (struct tmark *)t;

	assert_true(rf_mono_ms() >= m->t.at);
	order[norder++] = m->id;
}

/* Run the loop until n timers fired (bounded). */
static void
run_until(struct rf_loop *l, int n)
{
	int64_t end = rf_mono_ms() + 5000;

	while (norder < n && rf_mono_ms() < end)
		assert_true(rf_loop_run_once(l, 100) >= 0);
	assert_int_equal(norder, n);
}

static void
test_timers_fire_in_deadline_order(void **state)
{
	struct rf_loop *l = rf_loop_new();
	struct tmark m[NT];
	int64_t now = rf_mono_ms();
	int expect;

	(void)state;
	norder = 0;
	memset(m, 0, sizeof(m));
	/* Armed in a scrambled order, deadlines 0..NT-1 ms apart by id. */
	for (int k = 0; k < NT; k++) {
		int i = (k * 37) % NT;

		m[i].id = i;
		m[i].t.cb = on_mark;
		rf_loop_timer_at(l, &m[i].t, now + 5 + i);
	}
	/* Stop every fourth, move every fifth later than all others. */
	for (int i = 0; i < NT; i += 4)
		rf_loop_timer_stop(l, &m[i].t);
	for (int i = 1; i < NT; i += 5)
		rf_loop_timer_at(l, &m[i].t, now + 200 + i);
	rf_loop_timer_stop(l, &m[0].t); /* not armed: nothing */
	expect = 0;
	for (int i = 0; i < NT; i++)
		expect += i % 4 != 0 || i % 5 == 1; /* moved after its stop */
	run_until(l, expect);
	for (int k = 1; k < norder; k++) {
		int a = order[k - 1], b = order[k];
		int64_t ta = (a % 5 == 1) ? 200 + a : a;
		int64_t tb = (b % 5 == 1) ? 200 + b : b;

		assert_true(ta <= tb);
		assert_true(a % 4 != 0 || a % 5 == 1);
	}
	rf_loop_free(l);
}

/* A timer callback that arms one and stops another. */
static struct tmark chain_a, chain_b, chain_c;
static struct rf_loop *chain_loop;

static void
on_chain(struct rf_timer *t)
{
	on_mark(t);
	if (t == &chain_a.t) {
		rf_loop_timer_stop(chain_loop, &chain_c.t);
		rf_loop_timer_at(chain_loop, &chain_b.t, rf_mono_ms());
	}
}

static void
test_callback_arms_and_stops(void **state)
{
	int64_t now = rf_mono_ms();

	(void)state;
	norder = 0;
	chain_loop = rf_loop_new();
	chain_a = (struct tmark){ .t.cb = on_chain, .id = 1 };
	chain_b = (struct tmark){ .t.cb = on_chain, .id = 2 };
	chain_c = (struct tmark){ .t.cb = on_chain, .id = 3 };
	rf_loop_timer_at(chain_loop, &chain_a.t, now + 1);
	rf_loop_timer_at(chain_loop, &chain_c.t, now + 30);
	run_until(chain_loop, 2);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 2);
	/* c was stopped: nothing more fires. */
	assert_true(rf_loop_run_once(chain_loop, 60) >= 0);
	assert_int_equal(norder, 2);
	rf_loop_free(chain_loop);
}

/* ---- watches ---- */

struct pipew {
	struct rf_watch w;
	int rfd, wfd;
	int calls;
	struct pipew *victim; /* dropped and closed by this callback */
	struct rf_loop *l;
};

static void
on_pipe(struct rf_watch *w, uint32_t ev)
{
	struct pipew *p = (struct pipew *)w;
	char buf[16];

	p->calls++;
	assert_true(ev & EPOLLIN);
	assert_true(read(p->rfd, buf, sizeof(buf)) > 0); /* one byte waits */
	if (p->victim != NULL && p->victim->w.events != 0)
		rf_loop_watch(p->l, &p->victim->w, 0);
}

static void
pipe_init(struct pipew *p, struct rf_loop *l)
{
	int fd[2];

	assert_int_equal(pipe(fd), 0);
	*p = (struct pipew){ .w = { .fd = fd[0], .cb = on_pipe }, .rfd = fd[0],
		.wfd = fd[1], .l = l };
}

static void
test_watch_events_and_dropped_watch(void **state)
{
	struct rf_loop *l = rf_loop_new();
	struct pipew a, b;

	(void)state;
	pipe_init(&a, l);
	pipe_init(&b, l);
	assert_int_equal(rf_loop_watch(l, &a.w, EPOLLIN), 0);
	assert_int_equal(rf_loop_watch(l, &b.w, EPOLLIN), 0);
	/* Both readable in one batch; whichever runs first drops the other. */
	a.victim = &b;
	b.victim = &a;
	assert_int_equal(write(a.wfd, "x", 1), 1);
	assert_int_equal(write(b.wfd, "y", 1), 1);
	assert_true(rf_loop_run_once(l, 1000) >= 1);
	assert_int_equal(a.calls + b.calls, 1);
	/* The survivor still gets events; the dropped one never again. */
	if (a.w.events != 0) {
		assert_int_equal(write(a.wfd, "x", 1), 1);
		assert_int_equal(write(b.wfd, "y", 1), 1);
		a.victim = NULL;
		assert_true(rf_loop_run_once(l, 1000) >= 1);
		assert_int_equal(a.calls, 2);
		assert_int_equal(b.calls, 0);
		rf_loop_watch(l, &a.w, 0);
	} else {
		assert_int_equal(write(b.wfd, "y", 1), 1);
		assert_int_equal(write(a.wfd, "x", 1), 1);
		b.victim = NULL;
		assert_true(rf_loop_run_once(l, 1000) >= 1);
		assert_int_equal(b.calls, 2);
		assert_int_equal(a.calls, 0);
		rf_loop_watch(l, &b.w, 0);
	}
	close(a.rfd);
	close(a.wfd);
	close(b.rfd);
	close(b.wfd);
	rf_loop_free(l);
}

/* ---- posts ---- */

#define POSTERS 4
#define PER_POSTER 2000

static pthread_t loop_thread;
static int seen[POSTERS];
static bool in_order = true;
static int total;

struct post_arg {
	int poster, seq;
};

static struct post_arg args[POSTERS][PER_POSTER];

static void
on_post(void *arg)
{
	struct post_arg *a = arg;

	assert_true(pthread_equal(pthread_self(), loop_thread));
	if (a->seq != seen[a->poster])
		in_order = false;
	seen[a->poster] = a->seq + 1;
	total++;
}

static struct rf_loop *post_loop;

static void *
poster(void *arg)
{
	int p = (int)(intptr_t)arg;

	for (int i = 0; i < PER_POSTER; i++) {
		args[p][i] = (struct post_arg){ p, i };
		assert_int_equal(rf_loop_post(post_loop, on_post, &args[p][i]), 0);
	}
	return NULL;
}

static void
test_posts_from_threads(void **state)
{
	pthread_t t[POSTERS];
	int64_t end;

	(void)state;
	post_loop = rf_loop_new();
	loop_thread = pthread_self();
	for (int i = 0; i < POSTERS; i++)
		pthread_create(&t[i], NULL, poster, (void *)(intptr_t)i);
	end = rf_mono_ms() + 10000;
	/* -1: no timer armed, so only the posts' wake-up ends each wait. */
	while (total < POSTERS * PER_POSTER && rf_mono_ms() < end)
		assert_true(rf_loop_run_once(post_loop, -1) >= 0);
	for (int i = 0; i < POSTERS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(total, POSTERS * PER_POSTER);
	assert_true(in_order);
	rf_loop_free(post_loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_fire_in_deadline_order),
		cmocka_unit_test(test_callback_arms_and_stops),
		cmocka_unit_test(test_watch_events_and_dropped_watch),
		cmocka_unit_test(test_posts_from_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
