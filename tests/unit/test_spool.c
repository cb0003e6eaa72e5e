/* Unit tests of the spool (src/spool.c) and of the store's side of it
 * (rf_store_log_spooled, the progress, the writable probe, the version-2
 * migration), in a mkdtemp directory each.
 *
 * Covers: a row comes back field for field (NULLs, attempts, a record
 * longer than a read chunk); draining with progress writes each row once,
 * also when a batch is written again after a "crash" between the store's
 * commit and the spool's; a record cut short at the end of a dead file is
 * ignored and a corrupt one skipped and counted; a killed process's file
 * is claimed and replayed, a live one never; the bound and the drop
 * count; rotation; two processes replaying the same directory at once
 * write every row exactly once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "schema_sqlite.h"
#include "spool.h"
#include "store.h"

#define MAX_ATT 3

struct fixture {
	char dir[64];       /* the test's directory */
	char spool[96];     /* the spool directory in it */
	char db[96];
	struct rf_store *store;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/rf-spool-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->spool, sizeof(f->spool), "%s/relayforge.spool", f->dir);
	snprintf(f->db, sizeof(f->db), "%s/relayforge.db", f->dir);
	f->store = rf_store_open(f->db, err, sizeof(err));
	if (f->store == NULL) {
		fprintf(stderr, "store: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static void
rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (unlink(p) != 0)
			rm_dir(p);
	}
	closedir(d);
	rmdir(dir);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	rf_store_close(f->store);
	rm_dir(f->dir);
	free(f);
	return 0;
}

/* ---- entries ---- */

struct entry_buf {
	char rid[48];
	char model[32];
	struct rf_log_attempt att[MAX_ATT];
	struct rf_log_entry e;
};

static const char *const att_providers[MAX_ATT] = { "groq", "cerebras",
    "mock" };

/* Entry i of tag t: i % 4 attempts, NULLs where i is odd. */
static const struct rf_log_entry *
make_entry(struct entry_buf *b, const char *t, int i)
{
	size_t n = (size_t)(i % (MAX_ATT + 1));

	snprintf(b->rid, sizeof(b->rid), "%s-%d", t, i);
	snprintf(b->model, sizeof(b->model), "model-%d", i);
	for (size_t k = 0; k < n; k++)
		b->att[k] = (struct rf_log_attempt){ att_providers[k],
		    k + 1 == n ? "ok" : "provider_timeout",
		    k == 0 && i % 2 ? "cooling_down" : NULL,
		    k + 1 == n ? 200 : 0, k == 0 && i % 2 ? -1 : i * 10 + (long)k,
		    (int)k };
	b->e = (struct rf_log_entry){ .request_id = b->rid,
	    .ts_ms = 1700000000000 + i, .endpoint = i % 2 ? "stream" : "chat",
	    .strategy = "auto", .attempted_provider = n > 0 ? "groq" : NULL,
	    .final_provider = n > 0 ? att_providers[n - 1] : NULL,
	    .fallback = n > 1, .degraded = i % 3 == 0, .demo = n == 3,
	    .success = n > 0, .error_code = n > 0 ? NULL : "provider_unavailable",
	    .http_status = n > 0 ? 200 : 502, .latency_ms = i, .ttft_ms = i % 2 ? 7 : -1,
	    .model = i % 2 ? NULL : b->model, .prompt_chars = 5 + i,
	    .prompt_tokens = i % 2 ? -1 : 11, .completion_tokens = -1,
	    .source = i % 2 ? "web" : NULL,
	    .prompt_preview = i % 2 ? "a preview \xc3\xa9" : NULL,
	    .partial_chars = i % 5, .skipped_chunks = i % 3, .restarts = i % 2,
	    .streamed = i % 2 ? "groq,mock" : NULL,
	    .attempts = n > 0 ? b->att : NULL, .nattempts = n };
	return &b->e;
}

static void
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

/* Every stored field of e equals those of want (finish_reason is not
 * stored). */
static void
same_entry(const struct rf_log_entry *e, const struct rf_log_entry *want)
{
	same_str(e->request_id, want->request_id);
	assert_int_equal(e->ts_ms, want->ts_ms);
	same_str(e->endpoint, want->endpoint);
	same_str(e->strategy, want->strategy);
	same_str(e->attempted_provider, want->attempted_provider);
	same_str(e->final_provider, want->final_provider);
	assert_int_equal(e->fallback, want->fallback);
	assert_int_equal(e->degraded, want->degraded);
	assert_int_equal(e->demo, want->demo);
	assert_int_equal(e->success, want->success);
	same_str(e->error_code, want->error_code);
	assert_int_equal(e->http_status, want->http_status);
	assert_int_equal(e->latency_ms, want->latency_ms);
	assert_int_equal(e->ttft_ms, want->ttft_ms);
	same_str(e->model, want->model);
	assert_int_equal(e->prompt_chars, want->prompt_chars);
	assert_int_equal(e->prompt_tokens, want->prompt_tokens);
	assert_int_equal(e->completion_tokens, want->completion_tokens);
	same_str(e->source, want->source);
	same_str(e->prompt_preview, want->prompt_preview);
	assert_int_equal(e->partial_chars, want->partial_chars);
	assert_int_equal(e->skipped_chunks, want->skipped_chunks);
	assert_int_equal(e->restarts, want->restarts);
	same_str(e->streamed, want->streamed);
	assert_int_equal(e->nattempts, want->nattempts);
	for (size_t k = 0; k < e->nattempts; k++) {
		same_str(e->attempts[k].provider, want->attempts[k].provider);
		same_str(e->attempts[k].outcome, want->attempts[k].outcome);
		same_str(e->attempts[k].reason, want->attempts[k].reason);
		assert_int_equal(e->attempts[k].http_status,
		    want->attempts[k].http_status);
		assert_int_equal(e->attempts[k].latency_ms,
		    want->attempts[k].latency_ms);
		assert_int_equal(e->attempts[k].retry, want->attempts[k].retry);
	}
}

static struct rf_spool *
open_spool(const struct fixture *f, long max_rows, long rotate)
{
	struct rf_spool_conf c = { f->spool, max_rows, rotate };
	char err[256] = "";
	struct rf_spool *sp = rf_spool_open(&c, err, sizeof(err));

	if (sp == NULL)
		fprintf(stderr, "spool: %s\n", err);
	assert_non_null(sp);
	return sp;
}

/* The .spool files in the spool directory. */
static int
count_files(const struct fixture *f)
{
	DIR *d = opendir(f->spool);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".spool") != NULL && de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* The one .spool file's path. */
static void
only_file(const struct fixture *f, char *out, size_t len)
{
	DIR *d = opendir(f->spool);
	struct dirent *de;

	assert_non_null(d);
	out[0] = '\0';
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".spool") != NULL && de->d_name[0] != '.')
			snprintf(out, len, "%s/%s", f->spool, de->d_name);
	closedir(d);
	assert_true(out[0] != '\0');
}

/* The one figure a query on the test's store returns. */
static long
db_count(const struct fixture *f, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long v = -1;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* ---- the file itself ---- */

static void
test_append_and_read_back(void **state)
{
	struct fixture *f = *state;
	struct rf_spool *sp = open_spool(f, 100, 0);
	struct rf_spool_batch b = { 0 };
	struct entry_buf eb[8];
	char gone[RF_SPOOL_NAME_MAX];
	long rows, dropped;
	bool full;

	for (int i = 0; i < 8; i++)
		assert_int_equal(rf_spool_append(sp, make_entry(&eb[i], "t", i)), 0);
	rf_spool_counts(sp, &rows, &dropped, &full);
	assert_int_equal(rows, 8);
	assert_int_equal(dropped, 0);
	assert_false(full);
	assert_int_equal(rf_spool_next(sp, 5, &b), 0);
	assert_int_equal(b.n, 5);
	assert_int_equal(b.from, 0);
	assert_false(b.tail);
	assert_false(b.eof);
	assert_int_equal(b.bad, 0);
	for (int i = 0; i < 5; i++)
		same_entry(b.rows[i], &eb[i].e);
	assert_false(rf_spool_commit(sp, &b, gone));
	assert_int_equal(rf_spool_next(sp, 5, &b), 0);
	assert_int_equal(b.n, 3);
	assert_true(b.eof); /* caught up with what was committed */
	for (int i = 0; i < 3; i++)
		same_entry(b.rows[i], &eb[5 + i].e);
	rf_spool_commit(sp, &b, gone);
	rf_spool_counts(sp, &rows, NULL, NULL);
	assert_int_equal(rows, 0);
	assert_int_equal(rf_spool_next(sp, 5, &b), 0);
	assert_int_equal(b.n, 0);
	assert_int_equal(b.end, b.from);
	/* Drained: closing removes the file. */
	assert_int_equal(count_files(f), 1);
	assert_true(rf_spool_close(sp, gone));
	assert_non_null(strstr(gone, ".spool"));
	assert_int_equal(count_files(f), 0);
	rf_spool_batch_free(&b);
}

/* A record longer than a read chunk (256 KiB) comes back whole; one over
 * RF_SPOOL_RECORD_MAX is refused without touching the file. */
static void
test_long_records(void **state)
{
	struct fixture *f = *state;
	struct rf_spool *sp = open_spool(f, 100, 0);
	struct rf_spool_batch b = { 0 };
	struct entry_buf eb[2];
	char gone[RF_SPOOL_NAME_MAX];
	size_t big = 300 * 1024;
	char *s = malloc(RF_SPOOL_RECORD_MAX + 10);

	assert_non_null(s);
	memset(s, 'x', big);
	s[big] = '\0';
	make_entry(&eb[0], "long", 0);
	eb[0].e.prompt_preview = s;
	assert_int_equal(rf_spool_append(sp, &eb[0].e), 0);
	assert_int_equal(rf_spool_append(sp, make_entry(&eb[1], "long", 1)), 0);
	memset(s, 'y', RF_SPOOL_RECORD_MAX + 1);
	s[RF_SPOOL_RECORD_MAX + 1] = '\0';
	make_entry(&eb[0], "long", 2);
	eb[0].e.model = s;
	assert_int_equal(rf_spool_append(sp, &eb[0].e), RF_SPOOL_ERROR);
	assert_int_equal(rf_spool_next(sp, 10, &b), 0);
	assert_int_equal(b.n, 1); /* the long one alone fills the read */
	assert_int_equal(strlen(b.rows[0]->prompt_preview), big);
	rf_spool_commit(sp, &b, gone);
	assert_int_equal(rf_spool_next(sp, 10, &b), 0);
	assert_int_equal(b.n, 1);
	same_entry(b.rows[0], &eb[1].e);
	rf_spool_commit(sp, &b, gone);
	assert_true(rf_spool_close(sp, gone));
	rf_spool_batch_free(&b);
	free(s);
}

/* max_rows rows wait, the next is dropped and counted; once rows drain,
 * appends work again. */
static void
test_bound_and_drop_count(void **state)
{
	struct fixture *f = *state;
	struct rf_spool *sp = open_spool(f, 3, 0);
	struct rf_spool_batch b = { 0 };
	struct entry_buf eb;
	char gone[RF_SPOOL_NAME_MAX];
	long rows, dropped;
	bool full;

	for (int i = 0; i < 3; i++)
		assert_int_equal(rf_spool_append(sp, make_entry(&eb, "b", i)), 0);
	assert_int_equal(rf_spool_append(sp, make_entry(&eb, "b", 3)),
	    RF_SPOOL_FULL);
	assert_int_equal(rf_spool_append(sp, make_entry(&eb, "b", 4)),
	    RF_SPOOL_FULL);
	rf_spool_counts(sp, &rows, &dropped, &full);
	assert_int_equal(rows, 3);
	assert_int_equal(dropped, 2);
	assert_true(full);
	assert_int_equal(rf_spool_next(sp, 2, &b), 0);
	rf_spool_commit(sp, &b, gone);
	assert_int_equal(rf_spool_append(sp, make_entry(&eb, "b", 5)), 0);
	rf_spool_counts(sp, &rows, &dropped, &full);
	assert_int_equal(rows, 2);
	assert_int_equal(dropped, 2); /* a count, never reset */
	assert_false(full);
	/* What waits is what was accepted: 2 then 5. */
	assert_int_equal(rf_spool_next(sp, 10, &b), 0);
	assert_int_equal(b.n, 2);
	assert_string_equal(b.rows[0]->request_id, "b-2");
	assert_string_equal(b.rows[1]->request_id, "b-5");
	rf_spool_commit(sp, &b, gone);
	rf_spool_close(sp, gone);
	rf_spool_batch_free(&b);
}

/* A small rotate_bytes: appends move to new files, drained ones go, and
 * every row is read once, in order. */
static void
test_rotation(void **state)
{
	struct fixture *f = *state;
	struct rf_spool *sp = open_spool(f, 1000, 2000);
	struct rf_spool_batch b = { 0 };
	struct entry_buf eb;
	char gone[RF_SPOOL_NAME_MAX];
	int next = 0, removed = 0;

	for (int i = 0; i < 200; i++) {
		assert_int_equal(rf_spool_append(sp, make_entry(&eb, "r", i)), 0);
		if (i % 7 != 6)
			continue;
		assert_int_equal(rf_spool_next(sp, 5, &b), 0);
		for (size_t k = 0; k < b.n; k++) {
			char want[32];

			snprintf(want, sizeof(want), "r-%d", next++);
			assert_string_equal(b.rows[k]->request_id, want);
		}
		if (rf_spool_commit(sp, &b, gone))
			removed++;
		assert_true(count_files(f) <= 2);
	}
	for (;;) {
		assert_int_equal(rf_spool_next(sp, 50, &b), 0);
		if (b.n == 0)
			break;
		for (size_t k = 0; k < b.n; k++) {
			char want[32];

			snprintf(want, sizeof(want), "r-%d", next++);
			assert_string_equal(b.rows[k]->request_id, want);
		}
		if (rf_spool_commit(sp, &b, gone))
			removed++;
	}
	assert_int_equal(next, 200);
	assert_true(removed >= 5); /* ~100 KiB through 2 KB files */
	assert_true(rf_spool_close(sp, gone));
	assert_int_equal(count_files(f), 0);
	rf_spool_batch_free(&b);
}

/* ---- dead processes' files ---- */

/* A child that opens a spool, appends n rows of tag t and is killed
 * (SIGKILL: no clean-up at all).  Returns when it is dead. */
static void
dead_process(const struct fixture *f, const char *t, int n)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct rf_spool_conf c = { f->spool, 100000, 0 };
		char err[256];
		struct rf_spool *sp = rf_spool_open(&c, err, sizeof(err));
		struct entry_buf eb;

		if (sp == NULL)
			_exit(2);
		for (int i = 0; i < n; i++)
			if (rf_spool_append(sp, make_entry(&eb, t, i)) != 0)
				_exit(3);
		raise(SIGKILL);
		_exit(4);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* A live process's file is never claimed; once it is killed, it is, once;
 * its rows all come back. */
static void
test_claim_only_dead_files(void **state)
{
	struct fixture *f = *state;
	struct rf_spool *mine = open_spool(f, 100, 0);
	struct rf_spool_file *d = NULL, *d2 = NULL;
	struct rf_spool_batch b = { 0 };
	struct entry_buf eb;
	int go[2], ready[2];
	pid_t pid;
	char c = 0;

	assert_int_equal(rf_spool_append(mine, make_entry(&eb, "mine", 0)), 0);
	/* Nothing dead yet: my own file is locked by me. */
	assert_int_equal(rf_spool_claim(f->spool, &d), 0);
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rf_spool_conf sc = { f->spool, 100, 0 };
		char err[256];
		struct rf_spool *sp = rf_spool_open(&sc, err, sizeof(err));

		for (int i = 0; sp != NULL && i < 4; i++)
			rf_spool_append(sp, make_entry(&eb, "live", i));
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		_exit(0); /* dies without closing: the kernel drops the lock */
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(count_files(f), 2);
	assert_int_equal(rf_spool_claim(f->spool, &d), 0); /* alive: not his */
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(rf_spool_claim(f->spool, &d), 1);
	assert_non_null(strstr(rf_spool_file_name(d), ".spool"));
	assert_int_equal(rf_spool_file_rows(d, 0), 4);
	/* Claimed: nobody else gets it. */
	assert_int_equal(rf_spool_claim(f->spool, &d2), 0);
	assert_int_equal(rf_spool_file_read(d, 0, 100, &b), 0);
	assert_int_equal(b.n, 4);
	for (int i = 0; i < 4; i++)
		same_entry(b.rows[i], make_entry(&eb, "live", i));
	rf_spool_file_finish(d);
	assert_int_equal(count_files(f), 1); /* mine */
	close(go[0]);
	close(go[1]);
	close(ready[0]);
	close(ready[1]);
	rf_spool_close(mine, (char[RF_SPOOL_NAME_MAX]){ 0 });
	rf_spool_batch_free(&b);
}

/* The last record cut short by a kill mid-write is ignored (the rows
 * before it come back, tail is set); a record whose bytes were damaged
 * is skipped and counted, the ones after it still read. */
static void
test_torn_tail_and_bad_record(void **state)
{
	struct fixture *f = *state;
	struct rf_spool_file *d = NULL;
	struct rf_spool_batch b = { 0 };
	char path[512];
	struct stat st;
	int fd;

	dead_process(f, "torn", 5);
	only_file(f, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	/* Cut into the last record, and flip a byte of the second's payload. */
	assert_int_equal(truncate(path, st.st_size - 9), 0);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	{
		struct rf_spool_batch one = { 0 };
		char x;

		/* Find where record 1 starts: read record 0 alone. */
		assert_int_equal(rf_spool_claim(f->spool, &d), 1);
		assert_int_equal(rf_spool_file_read(d, 0, 1, &one), 0);
		assert_int_equal(one.n, 1);
		assert_int_equal(pread(fd, &x, 1, one.end + 20), 1);
		x ^= 0x5a;
		assert_int_equal(pwrite(fd, &x, 1, one.end + 20), 1);
		rf_spool_batch_free(&one);
	}
	close(fd);
	assert_int_equal(rf_spool_file_rows(d, 0), 3);
	assert_int_equal(rf_spool_file_read(d, 0, 100, &b), 0);
	assert_int_equal(b.n, 3);
	assert_int_equal(b.bad, 1);
	assert_true(b.tail);
	assert_string_equal(b.rows[0]->request_id, "torn-0");
	assert_string_equal(b.rows[1]->request_id, "torn-2");
	assert_string_equal(b.rows[2]->request_id, "torn-3");
	/* From there on: nothing more, the file is done. */
	assert_int_equal(rf_spool_file_read(d, b.end, 100, &b), 0);
	assert_int_equal(b.n, 0);
	assert_int_equal(b.end, b.from);
	rf_spool_file_finish(d);
	assert_int_equal(count_files(f), 0);
	rf_spool_batch_free(&b);
}

/* A hidden new file that a process killed before renaming it left is
 * removed once it is old; a young one (a creation in progress) stays. */
static void
test_stale_new_files(void **state)
{
	struct fixture *f = *state;
	struct rf_spool *sp = open_spool(f, 10, 0);
	struct rf_spool_file *d = NULL;
	struct timespec old[2] = { { 1000, 0 }, { 1000, 0 } };
	char a[160], b[160];
	int fd;

	snprintf(a, sizeof(a), "%s/.h-1-aa.spool.new", f->spool);
	snprintf(b, sizeof(b), "%s/.h-2-bb.spool.new", f->spool);
	assert_true((fd = open(a, O_CREAT | O_WRONLY, 0600)) >= 0);
	assert_int_equal(futimens(fd, old), 0);
	close(fd);
	assert_true((fd = open(b, O_CREAT | O_WRONLY, 0600)) >= 0);
	close(fd);
	assert_int_equal(rf_spool_claim(f->spool, &d), 0);
	assert_int_equal(access(a, F_OK), -1);
	assert_int_equal(access(b, F_OK), 0);
	unlink(b);
	rf_spool_close(sp, (char[RF_SPOOL_NAME_MAX]){ 0 });
}

/* ---- the store's side ---- */

/* Drained with progress: every row once; a batch written again (the
 * process died after the store's commit, before the spool's) writes
 * nothing; the progress says how far the file is in. */
static void
test_drain_with_progress(void **state)
{
	struct fixture *f = *state;
	struct rf_spool *sp = open_spool(f, 100, 0);
	struct rf_spool_batch b = { 0 };
	struct entry_buf eb;
	char gone[RF_SPOOL_NAME_MAX];
	int64_t at;
	long refused;

	for (int i = 0; i < 10; i++)
		assert_int_equal(rf_spool_append(sp, make_entry(&eb, "p", i)), 0);
	assert_int_equal(rf_spool_next(sp, 4, &b), 0);
	assert_int_equal(rf_store_log_spooled(f->store, b.name, b.from, b.end,
	    b.rows, b.n, &refused), 0);
	assert_int_equal(refused, 0);
	assert_int_equal(rf_store_spool_progress(f->store, b.name, &at), 0);
	assert_int_equal(at, b.end);
	/* The same batch again: a no-op. */
	assert_int_equal(rf_store_log_spooled(f->store, b.name, b.from, b.end,
	    b.rows, b.n, &refused), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM requests"), 4);
	rf_spool_commit(sp, &b, gone);
	while (rf_spool_next(sp, 4, &b) == 0 && b.n > 0) {
		assert_int_equal(rf_store_log_spooled(f->store, b.name, b.from,
		    b.end, b.rows, b.n, &refused), 0);
		rf_spool_commit(sp, &b, gone);
	}
	assert_int_equal(db_count(f, "SELECT count(*) FROM requests"), 10);
	assert_int_equal(db_count(f, "SELECT count(DISTINCT request_id)"
	    " FROM requests"), 10);
	/* Attempts came along: i % 4 of them for i = 0..9. */
	assert_int_equal(db_count(f, "SELECT count(*) FROM attempts"), 13);
	assert_true(rf_spool_close(sp, gone));
	assert_int_equal(rf_store_spool_forget(f->store, gone), 0);
	assert_int_equal(rf_store_spool_progress(f->store, gone, &at), 0);
	assert_int_equal(at, 0);
	rf_spool_batch_free(&b);
}

/* A row the store refuses (request_id is NOT NULL) is left out and
 * counted; the rest of its batch is written, with the progress. */
static void
test_refused_row_alone(void **state)
{
	struct fixture *f = *state;
	struct rf_spool *sp = open_spool(f, 100, 0);
	struct rf_spool_batch b = { 0 };
	struct entry_buf eb;
	char gone[RF_SPOOL_NAME_MAX];
	long refused;
	int64_t at;

	for (int i = 0; i < 5; i++) {
		make_entry(&eb, "x", i);
		if (i == 2)
			eb.e.request_id = NULL;
		assert_int_equal(rf_spool_append(sp, &eb.e), 0);
	}
	assert_int_equal(rf_spool_next(sp, 10, &b), 0);
	assert_int_equal(b.n, 5);
	assert_null(b.rows[2]->request_id);
	assert_int_equal(rf_store_log_spooled(f->store, b.name, b.from, b.end,
	    b.rows, b.n, &refused), 0);
	assert_int_equal(refused, 1);
	assert_int_equal(db_count(f, "SELECT count(*) FROM requests"), 4);
	assert_int_equal(rf_store_spool_progress(f->store, b.name, &at), 0);
	assert_int_equal(at, b.end);
	rf_spool_commit(sp, &b, gone);
	rf_spool_close(sp, gone);
	rf_spool_batch_free(&b);
}

/* The replay loop of a process (what logq's writer does): claim, read the
 * progress, write batches of 7 with it, remove, forget. */
static void
replay_all(const char *spool, struct rf_store *s)
{
	struct rf_spool_file *d;
	struct rf_spool_batch b = { 0 };
	char name[RF_SPOOL_NAME_MAX];
	long refused;
	int64_t at;

	while (rf_spool_claim(spool, &d) == 1) {
		snprintf(name, sizeof(name), "%s", rf_spool_file_name(d));
		if (rf_store_spool_progress(s, name, &at) != 0)
			_exit(5);
		for (;;) {
			if (rf_spool_file_read(d, at, 7, &b) != 0)
				_exit(6);
			if (b.end == at)
				break;
			if (rf_store_log_spooled(s, name, b.from, b.end, b.rows,
			    b.n, &refused) != 0)
				_exit(7);
			at = b.end;
		}
		rf_spool_file_finish(d);
		rf_store_spool_forget(s, name);
	}
	rf_spool_batch_free(&b);
}

/* Six dead processes' files; two processes replay the directory at once
 * (each with its own store connection): every row is in the store exactly
 * once and the directory is empty. */
static void
test_two_processes_replay_at_once(void **state)
{
	struct fixture *f = *state;
	char tag[16];
	int go[2];
	pid_t kid[2];

	for (int i = 0; i < 6; i++) {
		snprintf(tag, sizeof(tag), "d%d", i);
		dead_process(f, tag, 60 + i);
	}
	assert_int_equal(count_files(f), 6);
	assert_int_equal(pipe(go), 0);
	for (int k = 0; k < 2; k++) {
		kid[k] = fork();
		assert_true(kid[k] >= 0);
		if (kid[k] == 0) {
			char err[256], c;
			struct rf_store *s;

			close(go[1]);
			if (read(go[0], &c, 1) != 0) /* EOF: both start now */
				_exit(8);
			if ((s = rf_store_open(f->db, err, sizeof(err))) == NULL)
				_exit(9);
			replay_all(f->spool, s);
			rf_store_close(s);
			_exit(0);
		}
	}
	close(go[0]);
	close(go[1]);
	for (int k = 0; k < 2; k++) {
		int st;

		assert_int_equal(waitpid(kid[k], &st, 0), kid[k]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(count_files(f), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM requests"),
	    6 * 60 + 15);
	assert_int_equal(db_count(f, "SELECT count(*) FROM (SELECT request_id"
	    " FROM requests GROUP BY request_id HAVING count(*) > 1)"), 0);
	assert_int_equal(db_count(f, "SELECT count(*) FROM spool_progress"), 0);
}

/* The store side of a kill between the two commits: the store took a
 * batch (with its progress), the process died before its spool knew.
 * The next process replays from the stored progress: no row twice. */
static void
test_replay_after_kill_between_commits(void **state)
{
	struct fixture *f = *state;
	struct rf_spool_batch b = { 0 };
	struct rf_spool_file *d;
	char name[RF_SPOOL_NAME_MAX];
	long refused;
	int64_t at;

	dead_process(f, "k", 20);
	assert_int_equal(rf_spool_claim(f->spool, &d), 1);
	snprintf(name, sizeof(name), "%s", rf_spool_file_name(d));
	assert_int_equal(rf_spool_file_read(d, 0, 8, &b), 0);
	assert_int_equal(rf_store_log_spooled(f->store, b.name, b.from, b.end,
	    b.rows, b.n, &refused), 0);
	rf_spool_file_release(d); /* "dies" here */
	replay_all(f->spool, f->store);
	assert_int_equal(db_count(f, "SELECT count(*) FROM requests"), 20);
	assert_int_equal(db_count(f, "SELECT count(DISTINCT request_id)"
	    " FROM requests"), 20);
	assert_int_equal(rf_store_spool_progress(f->store, name, &at), 0);
	assert_int_equal(at, 0); /* forgotten with the file */
	rf_spool_batch_free(&b);
}

/* The probe takes the write lock: refused while another connection holds
 * it, fine before and after. */
static void
test_writable_probe(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;
	char why[160] = "";

	assert_int_equal(rf_store_writable(f->store, 100, why, sizeof(why)), 0);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(rf_store_writable(f->store, 50, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "locked"));
	/* Reads still work (WAL): the store answers, it only cannot write. */
	assert_int_equal(rf_store_ping(f->store), 0);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(rf_store_writable(f->store, 100, why, sizeof(why)), 0);
	assert_int_equal(rf_store_writable(NULL, 100, why, sizeof(why)), -1);
}

/* A version-1 file (the schema up to version 2, a row in it) opens: it is
 * migrated to the current version, keeps its row and takes spooled rows. */
static void
test_version_1_file_migrates(void **state)
{
	struct fixture *f = *state;
	const char *v2 = strstr(rf_schema_sqlite, "-- Version 2");
	char path[160], err[256], *v1;
	struct rf_spool *sp;
	struct rf_spool_batch b = { 0 };
	struct entry_buf eb;
	struct rf_store *s;
	sqlite3 *db;
	long refused;

	assert_non_null(v2);
	v1 = strndup(rf_schema_sqlite, (size_t)(v2 - rf_schema_sqlite));
	assert_non_null(v1);
	snprintf(path, sizeof(path), "%s/v1.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO requests (request_id,"
	    " ts_ms, endpoint, strategy, fallback, degraded, demo, status,"
	    " http_status, latency_ms, prompt_chars) VALUES ('old', 1, 'chat',"
	    " 'auto', 0, 0, 0, 'success', 200, 5, 2)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	free(v1);
	s = rf_store_open(path, err, sizeof(err));
	assert_non_null(s);
	sp = open_spool(f, 10, 0);
	assert_int_equal(rf_spool_append(sp, make_entry(&eb, "new", 1)), 0);
	assert_int_equal(rf_spool_next(sp, 10, &b), 0);
	assert_int_equal(rf_store_log_spooled(s, b.name, b.from, b.end, b.rows,
	    b.n, &refused), 0);
	rf_spool_commit(sp, &b, (char[RF_SPOOL_NAME_MAX]){ 0 });
	rf_spool_close(sp, (char[RF_SPOOL_NAME_MAX]){ 0 });
	rf_store_close(s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	{
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_prepare_v2(db, "SELECT (SELECT"
		    " user_version FROM pragma_user_version), (SELECT"
		    " group_concat(request_id) FROM (SELECT request_id FROM"
		    " requests ORDER BY id))", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 4);
		assert_string_equal((const char *)sqlite3_column_text(st, 1),
		    "old,new-1");
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	rf_spool_batch_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_and_read_back,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_records, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bound_and_drop_count,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_only_dead_files,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_and_bad_record,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_new_files, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_drain_with_progress,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_row_alone, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_two_processes_replay_at_once,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_replay_after_kill_between_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writable_probe, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_version_1_file_migrates,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
