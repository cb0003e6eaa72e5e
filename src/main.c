/*
 * main: the responder process.  Loads the configuration, then either serves
 * exactly one request as plain CGI, or runs RELAYFORGE_THREADS worker
 * threads that accept FastCGI requests (through fcgi.c) under a mutex and
 * hand them to the router; a request that runs the fallback engine is
 * then handed on to one of the relay's loop threads (relay.c, about one
 * per core), so a worker is free again as soon as it has parsed one.  It owns the process-wide pieces: the store
 * pool, the request-log spool and its writer thread (logq: started before
 * the first request, in CGI mode too; it also replays the spool files of
 * processes that died), the provider-state writer (pstate), the retention
 * janitor thread (which also publishes the process's live gauges).
 * `--copy-store FROM TO` copies a store's history into an empty one
 * (docs/several-machines.md) and exits.
 * SIGTERM / SIGINT stop accepting, let in-flight requests (streams
 * included) finish, join the threads and exit 0.  Threads and signals
 * are this file's, except the loop threads, which relay.c owns.
 */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "fcgi.h"
#include "gauges.h"
#include "log.h"
#include "logq.h"
#include "pstate.h"
#include "ratelimit.h"
#include "relay.h"
#include "request.h"
#include "router.h"
#include "scrub.h"
#include "store.h"
#include "upstream.h"

#define STORE_RETRY_MS 5000
/* SQLite connections per process: writes are serialised by SQLite anyway,
 * and each request holds one only for a few hundred microseconds. */
#define STORE_CONNS 8
#define PRUNE_EVERY_S 60
#define PRUNE_BATCH 500
/* Worker stacks: the router, SQLite and json-c need far less than the
 * 8 MiB default. */
#define WORKER_STACK (512 * 1024)

static struct rf_config g_cfg;
/* Set by the signal handler on the main thread, read by every worker:
 * a volatile sig_atomic_t is only safe within one thread, so an atomic
 * (lock-free, hence safe to store from a handler). */
_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2,
    "g_stop is stored by a signal handler");
static atomic_bool g_stop;
static pthread_mutex_t g_accept_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool g_store_warned;

static void
on_signal(int sig)
{
	(void)sig;
	atomic_store(&g_stop, true);
}

/* The process's store: one pool of SQLite connections shared by every
 * thread, opened on first use (after the web server's fork, never before)
 * and retried every few seconds while it cannot be opened; the reason goes
 * to stderr once per process. */
static pthread_mutex_t g_store_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rf_store *g_store;
static int64_t g_store_last_try = -STORE_RETRY_MS;

static struct rf_store *
shared_store(void)
{
	char err[256];
	struct rf_store *s;

	pthread_mutex_lock(&g_store_lock);
	if (g_store == NULL && rf_mono_ms() - g_store_last_try >= STORE_RETRY_MS) {
		int conns = g_cfg.threads < STORE_CONNS ? g_cfg.threads : STORE_CONNS;

		g_store_last_try = rf_mono_ms();
		g_store = rf_store_open_pool(g_cfg.db_path, conns + 1, err, sizeof(err));
		if (g_store == NULL && !atomic_exchange(&g_store_warned, true)) {
			char db[256];

			rf_store_redact(g_cfg.db_path, db, sizeof(db));
			RF_LOG_ERR(NULL, NULL, "store %s unavailable: %s", db, err);
		}
	}
	s = g_store;
	pthread_mutex_unlock(&g_store_lock);
	return s;
}

static void
worker_store(struct rf_worker *w)
{
	if (w->store == NULL)
		w->store = shared_store();
}

/* ---- retention and gauges ---------------------------------------------
 * A side job of its own thread: at start and then every minute, delete
 * rows older than RELAYFORGE_RETENTION_DAYS in small batches (each a short
 * transaction, so a request never waits long for the write lock), then let
 * SQLite give pages back and checkpoint the WAL; every few seconds, the
 * heartbeat that publishes this process's live gauges for /metrics.  It
 * never runs on a request's thread. */

static pthread_mutex_t g_stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_stop_cond = PTHREAD_COND_INITIALIZER;

/* Sleep up to s seconds; returns true when the process is stopping. */
static bool
nap(int s)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += s;
	pthread_mutex_lock(&g_stop_lock);
	while (!atomic_load(&g_stop) &&
	    pthread_cond_timedwait(&g_stop_cond, &g_stop_lock, &ts) == 0)
		;
	stop = atomic_load(&g_stop);
	pthread_mutex_unlock(&g_stop_lock);
	return stop;
}

static void
prune(struct rf_store *s)
{
	int64_t cutoff = rf_now_ms() - (int64_t)g_cfg.retention_days * 86400000;
	int n;

	do {
		n = rf_store_prune(s, cutoff, PRUNE_BATCH);
		if (n == PRUNE_BATCH)
			rf_sleep_ms(50); /* let request writers in */
	} while (n == PRUNE_BATCH && !atomic_load(&g_stop));
	rf_store_maintain(s);
}

static void *
janitor_main(void *arg)
{
	struct rf_worker w = { .cfg = &g_cfg };
	int64_t next_prune = rf_mono_ms();
	(void)arg;
	do {
		worker_store(&w);
		if (w.store == NULL)
			continue;
		rf_gauges_publish(w.store, true);
		if (rf_mono_ms() >= next_prune) {
			prune(w.store);
			next_prune = rf_mono_ms() + PRUNE_EVERY_S * 1000;
		}
	} while (!nap(RF_GAUGES_HEARTBEAT_MS / 1000));
	return NULL;
}

/* ---- the request log --------------------------------------------------
 * This process's spool (RELAYFORGE_SPOOL_DIR, RELAYFORGE_LOG_QUEUE rows)
 * and its writer; without them handlers write rows on their own thread
 * (the reason is on stderr, and /health says degraded). */

static void
start_log(void)
{
	struct rf_spool_conf sc = { .dir = g_cfg.spool_dir,
	    .max_rows = g_cfg.log_queue };

	rf_logq_start(shared_store, &sc);
}

/* ---- serving ---------------------------------------------------------- */

static void *
worker_main(void *arg)
{
	struct rf_worker *w = arg;
	struct rf_fcgi_conn *conn = rf_fcgi_conn_new();
	struct rf_request rq;

	/* No upstream handle: the chain runs on the relay's loops. */
	for (;;) {
		int rc;

		/* Without a connection (out of memory) this worker ends; the
		 * others go on serving. */
		pthread_mutex_lock(&g_accept_lock);
		rc = atomic_load(&g_stop) || conn == NULL ? -1 :
		    rf_fcgi_accept(conn, &rq);
		pthread_mutex_unlock(&g_accept_lock);
		if (rc < 0)
			break;
		worker_store(w);
		rf_router_serve(w, &rq);
		rf_fcgi_finish(conn);
	}
	rf_fcgi_conn_free(conn);
	return NULL;
}

static void
serve_one(void *arg, struct rf_request *rq)
{
	rf_router_serve(arg, rq);
}

static void
end_stdout(void)
{
	int fd;

	fflush(stdout);
	if ((fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0) {
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
}

static int
serve_cgi(void)
{
	struct rf_worker w = { .cfg = &g_cfg };
	struct rf_process_gauges g;
	int rc;

	w.up = rf_up_new();
	worker_store(&w);
	rf_rate_single_request();
	start_log();
	rc = rf_fcgi_serve_cgi(serve_one, &w);
	/* The answer is whole (its row spooled): let the web server see its
	 * end now, then write the provider state and the row to the store --
	 * the row stays in the spool for the next process when the store
	 * refuses it. */
	end_stdout();
	rf_pstate_stop(w.store, RF_PSTATE_CGI_MS);
	rf_logq_stop();
	/* A row per CGI process only when it has rows to report dropped:
	 * its queue is replayed by the next process anyway. */
	rf_gauges_read(&g);
	if (g.dropped_rows > 0)
		rf_gauges_publish(w.store, true);
	rf_up_free(w.up);
	return rc;
}

/* ---- the process ----------------------------------------------------- */

/* An open stream holds two descriptors here (the web server's connection
 * and the upstream's): take every descriptor the hard limit allows. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: a blocked accept() must return */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Start up to n worker threads (small stacks); returns how many run. */
static int
start_workers(pthread_t *tid, struct rf_worker *w, int n)
{
	pthread_attr_t attr;
	int started = 0;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	for (int i = 0; i < n; i++) {
		w[i] = (struct rf_worker){ .cfg = &g_cfg };
		if (pthread_create(&tid[i], &attr, worker_main, &w[i]) != 0)
			break;
		started++;
	}
	pthread_attr_destroy(&attr);
	return started;
}

/* After the stop signal: wake the janitor from its nap and the thread
 * blocked in accept(); the other workers see g_stop before their next
 * accept. */
static void
wake_all(void)
{
	pthread_mutex_lock(&g_stop_lock);
	pthread_cond_broadcast(&g_stop_cond);
	pthread_mutex_unlock(&g_stop_lock);
	rf_fcgi_shutdown();
}

/* Run the worker threads until a stop signal, then drain and join. */
static int
serve_fastcgi(void)
{
	int n = g_cfg.threads, started = 0;
	pthread_t *tid = calloc((size_t)n, sizeof(*tid));
	struct rf_worker *w = calloc((size_t)n, sizeof(*w));
	sigset_t block, old;
	pthread_t janitor;
	bool have_janitor = false;

	if (tid == NULL || w == NULL) {
		RF_LOG_ERR(NULL, NULL, "out of memory");
		goto out;
	}
	/* Workers start with the stop signals blocked, so they land on main. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	start_log();
	if (rf_pstate_start(shared_store) != 0)
		RF_LOG_WARN(NULL, NULL, "no provider-state writer thread; requests retry waiting writes");
	if (rf_relay_start(&g_cfg, shared_store, 0) != 0)
		RF_LOG_ERR(NULL, NULL, "no loop thread: requests run on the "
		    "worker threads");
	started = start_workers(tid, w, n);
	if (started > 0 && pthread_create(&janitor, NULL, janitor_main, NULL) == 0)
		have_janitor = true;
	/* Still blocked here, so no signal slips in between test and wait. */
	while (!atomic_load(&g_stop) && started > 0)
		sigsuspend(&old);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	wake_all();
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	rf_relay_stop(); /* every open request finishes first */
	rf_logq_stop(); /* after the loops: no row comes after it */
	rf_pstate_stop(g_store, RF_PSTATE_WRITE_MS);
	if (have_janitor)
		pthread_join(janitor, NULL);
	rf_gauges_publish(g_store, true); /* the last word: nothing open */
out:
	free(tid);
	free(w);
	return started > 0 ? 0 : 1;
}

/* Every key and token the process holds, registered once before any
 * thread starts: the log and the scrubber of upstream strings redact them
 * (and long pieces of them) wherever one shows up. */
static void
register_secrets(const struct rf_config *cfg)
{
	for (int i = 0; i < cfg->nproviders; i++)
		if (cfg->providers[i].key != NULL)
			rf_scrub_add_secret(cfg->providers[i].key);
	if (cfg->api_token != NULL)
		rf_scrub_add_secret(cfg->api_token);
	if (cfg->admin_token != NULL)
		rf_scrub_add_secret(cfg->admin_token);
}

/* --copy-store FROM TO: every request row of the store FROM (a file path
 * or a URI) into the empty store TO, through the store API, so any backend
 * copies to any other; rows without a node get RELAYFORGE_NODE.  Says how
 * many on stdout; 0, or 1 with the reason on stderr. */
static int
copy_store(const char *from, const char *to)
{
	char err[256], a[256], b[256];
	struct rf_store *src, *dst = NULL;
	long rows = 0;
	int rc = 1;

	rf_store_redact(from, a, sizeof a);
	rf_store_redact(to, b, sizeof b);
	if ((src = rf_store_open(from, err, sizeof err)) == NULL ||
	    (dst = rf_store_open(to, err, sizeof err)) == NULL) {
		RF_LOG_ERR(NULL, NULL, "cannot open %s: %s", src == NULL ? a : b,
		    err);
		goto out;
	}
	if (rf_store_copy(src, dst, &rows, err, sizeof err) != 0) {
		RF_LOG_ERR(NULL, NULL, "copy %s -> %s: %s (%ld rows copied)",
		    a, b, err, rows);
		goto out;
	}
	printf("relayforge: copied %ld requests from %s to %s\n", rows, a, b);
	rc = 0;
out:
	rf_store_close(src);
	rf_store_close(dst);
	return rc;
}

int
main(int argc, char **argv)
{
	char err[512];
	int rc;

	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		puts("relayforge 0.1.0");
		return 0;
	}
	if (rf_config_load(&g_cfg, err, sizeof(err)) != 0) {
		RF_LOG_ERR(NULL, NULL, "configuration error: %s", err);
		return 1;
	}
	rf_store_set_node(g_cfg.node);
	if (argc > 1 && strcmp(argv[1], "--copy-store") == 0) {
		rc = argc == 4 ? copy_store(argv[2], argv[3]) : 2;
		if (argc != 4)
			fputs("usage: relayforge.fcgi --copy-store FROM_DB TO_DB\n",
			    stderr);
		rf_config_free(&g_cfg);
		return rc;
	}
	if (argc > 1 && strcmp(argv[1], "--check-config") == 0) {
		printf("relayforge: configuration ok (%d providers in the chain)\n", g_cfg.chain_len);
		rf_config_free(&g_cfg);
		return 0;
	}
	register_secrets(&g_cfg);
	install_signals();
	/* With glibc's default of 8 arenas per core, free memory of the
	 * worker and loop threads spreads over many arenas; two keep the RSS
	 * down. */
	mallopt(M_ARENA_MAX, 2);
	raise_fd_limit();
	rf_up_global_init();
	rf_fcgi_set_write_timeout(g_cfg.stream_idle_timeout_ms);
	if (rf_fcgi_is_cgi())
		rc = serve_cgi();
	else if (rf_fcgi_init() != 0)
		rc = 1;
	else
		rc = serve_fastcgi();
	rf_store_close(g_store);
	rf_up_global_cleanup();
	rf_config_free(&g_cfg);
	return rc;
}
