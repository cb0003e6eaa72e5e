/*
 * spool: the per-process append-only files that make a request's log row
 * durable before its answer completes, the record format, and the claim
 * of dead processes' files for replay (the design is in include/spool.h
 * and docs/operations.md, "Durability of the request log").
 *
 * Appends happen under the spool's mutex: one write(2) of a whole record,
 * then the committed end moves past it, so the drain thread reads only
 * whole records and the row counts stay exact.  A short write (no space)
 * is cut back off the file with ftruncate, so the file never holds half a
 * record of a live process.  The mutex is held for that one write(2) --
 * a few microseconds; the record is encoded before taking it.
 *
 * Reading decodes a chunk of the file in place: the strings of a row point
 * into the batch's buffer (the format stores them with their NUL), so a
 * batch of rows costs one pread(2) and no copy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "util.h"

#define REC_MAGIC 0x70734652u  /* "RFsp" little-endian */
#define REC_HEAD 12            /* magic, payload length, CRC-32 */
#define REC_VERSION 1
#define CHUNK (256 * 1024)     /* bytes read per batch (more for a long record) */
#define SUFFIX ".spool"
#define STALE_NEW_S 60         /* an unrenamed new file older than this is dead */
/* The smallest encoded attempt: three NULL strings, status, latency, retry. */
#define ATT_MIN 28

/* ---- record encoding ---- */

/* CRC-32 (IEEE, reflected), four bits at a time. */
static uint32_t
crc32(const unsigned char *p, size_t n)
{
	static const uint32_t t[16] = {
		0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
		0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
		0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
		0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
	};
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		c = (c >> 4) ^ t[c & 15];
		c = (c >> 4) ^ t[c & 15];
	}
	return ~c;
}

struct enc {
	struct rf_buf b;
	int err;
};

static void
put_uint(struct enc *w, uint64_t v, int bytes)
{
	unsigned char x[8];

	for (int i = 0; i < bytes; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	if (rf_buf_append(&w->b, x, (size_t)bytes) != 0)
		w->err = 1;
}

/* A string with its NUL (length 0 = NULL), so a reader can point at it. */
static void
put_str(struct enc *w, const char *s)
{
	size_t n = s != NULL ? strlen(s) + 1 : 0;

	put_uint(w, n, 4);
	if (n > 0 && rf_buf_append(&w->b, s, n) != 0)
		w->err = 1;
}

static void
put_attempts(struct enc *w, const struct rf_log_entry *e)
{
	put_uint(w, e->nattempts, 4);
	for (size_t i = 0; i < e->nattempts; i++) {
		const struct rf_log_attempt *a = &e->attempts[i];

		put_str(w, a->provider);
		put_str(w, a->outcome);
		put_str(w, a->reason);
		put_uint(w, (uint32_t)a->http_status, 4);
		put_uint(w, (uint64_t)(int64_t)a->latency_ms, 8);
		put_uint(w, (uint32_t)a->retry, 4);
	}
}

/* The payload, version 1: the field order is the format. */
static void
put_entry(struct enc *w, const struct rf_log_entry *e)
{
	put_uint(w, REC_VERSION, 1);
	put_uint(w, (uint64_t)e->ts_ms, 8);
	put_uint(w, (unsigned)e->fallback | (unsigned)e->degraded << 1 |
	    (unsigned)e->demo << 2 | (unsigned)e->success << 3, 1);
	put_uint(w, (uint32_t)e->http_status, 4);
	put_uint(w, (uint64_t)(int64_t)e->latency_ms, 8);
	put_uint(w, (uint64_t)(int64_t)e->ttft_ms, 8);
	put_uint(w, (uint64_t)(int64_t)e->prompt_chars, 8);
	put_uint(w, (uint64_t)(int64_t)e->prompt_tokens, 8);
	put_uint(w, (uint64_t)(int64_t)e->completion_tokens, 8);
	put_uint(w, (uint64_t)(int64_t)e->partial_chars, 8);
	put_uint(w, (uint32_t)e->skipped_chunks, 4);
	put_uint(w, (uint32_t)e->restarts, 4);
	put_str(w, e->request_id);
	put_str(w, e->endpoint);
	put_str(w, e->strategy);
	put_str(w, e->attempted_provider);
	put_str(w, e->final_provider);
	put_str(w, e->error_code);
	put_str(w, e->model);
	put_str(w, e->source);
	put_str(w, e->prompt_preview);
	put_str(w, e->streamed);
	put_attempts(w, e);
}

/* The whole record of e into w->b (freed by the caller).  0 or -1. */
static int
encode(struct enc *w, const struct rf_log_entry *e)
{
	static const char head[REC_HEAD];
	unsigned char *h;
	uint32_t len, crc;

	rf_buf_init(&w->b, REC_HEAD + RF_SPOOL_RECORD_MAX);
	w->err = rf_buf_append(&w->b, head, sizeof head) != 0;
	put_entry(w, e);
	if (w->err)
		return -1;
	h = (unsigned char *)w->b.data;
	len = (uint32_t)(w->b.len - REC_HEAD);
	crc = crc32(h + REC_HEAD, len);
	for (int i = 0; i < 4; i++) {
		h[i] = (unsigned char)(REC_MAGIC >> (8 * i));
		h[4 + i] = (unsigned char)(len >> (8 * i));
		h[8 + i] = (unsigned char)(crc >> (8 * i));
	}
	return 0;
}

/* ---- record decoding ---- */

struct dec {
	const unsigned char *p;
	size_t left;
	bool bad;
};

static uint64_t
get_uint(struct dec *d, int bytes)
{
	uint64_t v = 0;

	if (d->bad || d->left < (size_t)bytes) {
		d->bad = true;
		return 0;
	}
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)d->p[i] << (8 * i);
	d->p += bytes;
	d->left -= (size_t)bytes;
	return v;
}

static int32_t
get_i32(struct dec *d)
{
	return (int32_t)(uint32_t)get_uint(d, 4);
}

static long
get_long(struct dec *d)
{
	return (long)(int64_t)get_uint(d, 8);
}

/* A string in place: it must end with its NUL and hold no other. */
static const char *
get_str(struct dec *d)
{
	size_t n = (size_t)get_uint(d, 4);
	const char *s = (const char *)d->p;

	if (d->bad || n == 0)
		return NULL;
	if (n > d->left || s[n - 1] != '\0' || memchr(s, '\0', n - 1) != NULL) {
		d->bad = true;
		return NULL;
	}
	d->p += n;
	d->left -= n;
	return s;
}

static uint64_t
le32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint64_t)u[0] | (uint64_t)u[1] << 8 | (uint64_t)u[2] << 16 |
	    (uint64_t)u[3] << 24;
}

static int
grow(void **p, size_t *cap, size_t want, size_t size)
{
	void *q;

	if (want <= *cap)
		return 0;
	if ((q = realloc(*p, want * size)) == NULL)
		return -1;
	*p = q;
	*cap = want;
	return 0;
}

/* The attempts of the row being decoded, after the batch's others. */
static int
get_attempts(struct dec *d, struct rf_spool_batch *b, size_t *na)
{
	size_t n = (size_t)get_uint(d, 4);

	if (d->bad || n > d->left / ATT_MIN ||
	    grow((void **)&b->att, &b->att_cap, b->natt + n, sizeof *b->att))
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct rf_log_attempt *a = &b->att[b->natt + i];

		a->provider = get_str(d);
		a->outcome = get_str(d);
		a->reason = get_str(d);
		a->http_status = get_i32(d);
		a->latency_ms = get_long(d);
		a->retry = get_i32(d);
	}
	*na = n;
	return d->bad ? -1 : 0;
}

/* Decode one payload into row b->n of the batch; 0, or -1 when it is not
 * a version-1 row (nothing counted). */
static int
decode(struct rf_spool_batch *b, const char *p, size_t len)
{
	struct dec d = { (const unsigned char *)p, len, false };
	struct rf_log_entry *e = &b->ents[b->n];
	unsigned flags;
	size_t na = 0;

	if (get_uint(&d, 1) != REC_VERSION)
		return -1;
	memset(e, 0, sizeof *e);
	e->ts_ms = (int64_t)get_uint(&d, 8);
	flags = (unsigned)get_uint(&d, 1);
	e->fallback = flags & 1;
	e->degraded = flags >> 1 & 1;
	e->demo = flags >> 2 & 1;
	e->success = flags >> 3 & 1;
	e->http_status = get_i32(&d);
	e->latency_ms = get_long(&d);
	e->ttft_ms = get_long(&d);
	e->prompt_chars = get_long(&d);
	e->prompt_tokens = get_long(&d);
	e->completion_tokens = get_long(&d);
	e->partial_chars = get_long(&d);
	e->skipped_chunks = get_i32(&d);
	e->restarts = get_i32(&d);
	e->request_id = get_str(&d);
	e->endpoint = get_str(&d);
	e->strategy = get_str(&d);
	e->attempted_provider = get_str(&d);
	e->final_provider = get_str(&d);
	e->error_code = get_str(&d);
	e->model = get_str(&d);
	e->source = get_str(&d);
	e->prompt_preview = get_str(&d);
	e->streamed = get_str(&d);
	if (get_attempts(&d, b, &na) != 0 || d.left != 0)
		return -1;
	e->nattempts = na;
	b->att_at[b->n] = b->natt;
	b->natt += na;
	return 0;
}

/* ---- reading a file ---- */

/* pread until n bytes or the end of the file; *got the bytes read. */
static int
pread_full(int fd, char *p, size_t n, int64_t off, size_t *got)
{
	*got = 0;
	while (*got < n) {
		ssize_t r = pread(fd, p + *got, n - *got, (off_t)off + (off_t)*got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

/* Read [from, limit) into the buffer: a chunk, or the whole first record
 * when it is longer than that. */
static int
load(struct rf_spool_batch *b, int fd, int64_t from, int64_t limit)
{
	size_t want = limit - from < CHUNK ? (size_t)(limit - from) : CHUNK;
	size_t whole;

	if (grow((void **)&b->buf, &b->cap, want, 1) != 0 ||
	    pread_full(fd, b->buf, want, from, &b->len) != 0)
		return -1;
	if (b->len < REC_HEAD || le32(b->buf) != REC_MAGIC ||
	    le32(b->buf + 4) > RF_SPOOL_RECORD_MAX)
		return 0;
	whole = REC_HEAD + (size_t)le32(b->buf + 4);
	if (whole <= b->len || (int64_t)whole > limit - from)
		return 0;
	if (grow((void **)&b->buf, &b->cap, whole, 1) != 0 ||
	    pread_full(fd, b->buf, whole, from, &b->len) != 0)
		return -1;
	return 0;
}

/* The record at pos: 1 whole in the buffer (*len its payload), 0 not
 * whole in it, -1 not a record (bad magic or length). */
static int
head_at(const struct rf_spool_batch *b, size_t pos, uint32_t *len)
{
	if (b->len - pos < REC_HEAD)
		return 0;
	*len = (uint32_t)le32(b->buf + pos + 4);
	if (le32(b->buf + pos) != REC_MAGIC || *len == 0 ||
	    *len > RF_SPOOL_RECORD_MAX)
		return -1;
	return b->len - pos - REC_HEAD >= *len ? 1 : 0;
}

static int
batch_reserve(struct rf_spool_batch *b, size_t max)
{
	size_t cap = b->ents_cap;

	if (grow((void **)&b->ents, &cap, max, sizeof *b->ents) != 0)
		return -1;
	cap = b->ents_cap;
	if (grow((void **)&b->rows, &cap, max, sizeof *b->rows) != 0)
		return -1;
	cap = b->ents_cap;
	if (grow((void **)&b->att_at, &cap, max, sizeof *b->att_at) != 0)
		return -1;
	b->ents_cap = cap;
	return 0;
}

/* Point the rows at their attempts (the array may have moved). */
static void
batch_finish(struct rf_spool_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		b->ents[i].attempts = b->ents[i].nattempts > 0 ?
		    &b->att[b->att_at[i]] : NULL;
		b->rows[i] = &b->ents[i];
	}
}

/* Up to max rows of fd in [from, limit) into b.  At a record that cannot
 * be read (bad magic or length), or one cut short by limit, b->tail. */
static int
read_batch(int fd, int64_t from, int64_t limit, size_t max,
    struct rf_spool_batch *b)
{
	size_t pos = 0;
	uint32_t len = 0;
	int h = 0;

	b->n = b->natt = 0;
	b->bad = 0;
	b->tail = false;
	b->eof = limit <= from;
	b->from = b->end = from;
	b->len = 0;
	if (limit <= from || max == 0)
		return 0;
	if (batch_reserve(b, max) != 0 || load(b, fd, from, limit) != 0)
		return -1;
	while (b->n < max && (h = head_at(b, pos, &len)) == 1) {
		const char *pl = b->buf + pos + REC_HEAD;

		if (crc32((const unsigned char *)pl, len) != le32(b->buf + pos + 8) ||
		    decode(b, pl, len) != 0)
			b->bad++;
		else
			b->n++;
		pos += REC_HEAD + len;
	}
	b->end = from + (int64_t)pos;
	if (b->n < max && (h < 0 || (h == 0 && from + (int64_t)b->len >= limit &&
	    pos < b->len)))
		b->tail = true;
	b->eof = b->tail || b->end >= limit;
	batch_finish(b);
	return 0;
}

void
rf_spool_batch_free(struct rf_spool_batch *b)
{
	if (b == NULL)
		return;
	free(b->buf);
	free(b->ents);
	free(b->rows);
	free(b->att);
	free(b->att_at);
	memset(b, 0, sizeof *b);
}

/* ---- this process's files ---- */

struct sfile {
	int fd;
	char name[RF_SPOOL_NAME_MAX];
	int64_t end;      /* the end of the last whole record */
	int64_t drained;  /* bytes before it are in the store */
	long rows;        /* records in [drained, end) */
};

struct rf_spool {
	pthread_mutex_t lock;
	char dir[PATH_MAX];
	long max_rows, rotate_bytes;
	struct sfile *cur;  /* appends go here */
	struct sfile *old;  /* rotated out, still draining; NULL */
	long dropped;
	bool failing;       /* the last append failed (logged once a spell) */
};

static int
join(char *out, size_t len, const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);

	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* "<host>-<pid>-<16 hex>.spool": unique across processes and machines. */
static void
new_name(char out[RF_SPOOL_NAME_MAX])
{
	char host[64] = "", rnd[33];
	size_t i;

	if (gethostname(host, sizeof host - 1) != 0)
		host[0] = '\0';
	host[40] = '\0';
	for (i = 0; host[i] != '\0'; i++)
		if (!((host[i] >= 'a' && host[i] <= 'z') ||
		    (host[i] >= 'A' && host[i] <= 'Z') ||
		    (host[i] >= '0' && host[i] <= '9') || host[i] == '.'))
			host[i] = '_';
	rf_request_id(rnd);
	snprintf(out, RF_SPOOL_NAME_MAX, "%s-%ld-%.16s" SUFFIX,
	    host[0] ? host : "host", (long)getpid(), rnd);
}

/* A new, locked, empty file: created under a hidden name, locked, then
 * renamed into place, so a scanning process never finds it unlocked. */
static struct sfile *
create_file(const char *dir)
{
	struct sfile *f = calloc(1, sizeof *f);
	char tmp[PATH_MAX], path[PATH_MAX], hidden[RF_SPOOL_NAME_MAX + 8];
	int fd = -1;

	if (f == NULL)
		return NULL;
	new_name(f->name);
	snprintf(hidden, sizeof hidden, ".%s.new", f->name);
	if (join(tmp, sizeof tmp, dir, hidden) != 0 ||
	    join(path, sizeof path, dir, f->name) != 0)
		goto fail;
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		goto fail;
	}
	f->fd = fd;
	return f;
fail:
	RF_LOG_ERR(NULL, NULL, "cannot create a spool file in %s: %s", dir,
	    strerror(errno));
	if (fd >= 0)
		close(fd);
	free(f);
	return NULL;
}

/* Remove f's file, then close it (the lock goes with the last close, after
 * the name is gone: no other process can claim it half-way). */
static void
remove_file(const struct rf_spool *sp, struct sfile *f)
{
	char path[PATH_MAX];

	if (join(path, sizeof path, sp->dir, f->name) == 0 && unlink(path) != 0)
		RF_LOG_WARN(NULL, NULL, "cannot remove spool file %s: %s",
		    f->name, strerror(errno));
	close(f->fd);
	free(f);
}

/* The directory, made (0700) when missing; its parent must exist. */
static int
make_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int e = 0;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		e = errno;
	else if (stat(dir, &st) != 0)
		e = errno;
	else if (!S_ISDIR(st.st_mode))
		e = ENOTDIR;
	if (e != 0)
		snprintf(err, errlen, "spool directory %s: %s", dir, strerror(e));
	return e != 0 ? -1 : 0;
}

struct rf_spool *
rf_spool_open(const struct rf_spool_conf *c, char *err, size_t errlen)
{
	struct rf_spool *sp = calloc(1, sizeof *sp);

	if (sp == NULL || c->dir == NULL || c->max_rows < 1 ||
	    snprintf(sp->dir, sizeof sp->dir, "%s", c->dir) >= (int)sizeof sp->dir) {
		snprintf(err, errlen, "spool: bad directory or size");
		goto fail;
	}
	if (make_dir(c->dir, err, errlen) != 0)
		goto fail;
	sp->max_rows = c->max_rows;
	sp->rotate_bytes = c->rotate_bytes > 0 ? c->rotate_bytes :
	    RF_SPOOL_ROTATE_BYTES;
	if ((sp->cur = create_file(c->dir)) == NULL) {
		snprintf(err, errlen, "spool directory %s: cannot create a file"
		    " there", c->dir);
		goto fail;
	}
	pthread_mutex_init(&sp->lock, NULL);
	return sp;
fail:
	free(sp);
	return NULL;
}

/* One write(2) of the whole record; a short one is cut back off. */
static int
write_record(struct rf_spool *sp, const struct rf_buf *rec)
{
	struct sfile *f = sp->cur;
	ssize_t n;

	do
		n = write(f->fd, rec->data, rec->len);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)rec->len) {
		f->end += (int64_t)rec->len;
		f->rows++;
		sp->failing = false;
		return 0;
	}
	if (n > 0 && ftruncate(f->fd, (off_t)f->end) != 0)
		n = -1;
	if (!sp->failing)
		RF_LOG_ERR(NULL, NULL, "spool file %s: %s", f->name,
		    n < 0 ? strerror(errno) : "short write");
	sp->failing = true;
	return -1;
}

static long
rows_locked(const struct rf_spool *sp)
{
	return sp->cur->rows + (sp->old != NULL ? sp->old->rows : 0);
}

int
rf_spool_append(struct rf_spool *sp, const struct rf_log_entry *e)
{
	struct enc w;
	int rc = RF_SPOOL_ERROR;

	if (encode(&w, e) != 0)
		goto out;
	pthread_mutex_lock(&sp->lock);
	if (rows_locked(sp) >= sp->max_rows) {
		sp->dropped++;
		rc = RF_SPOOL_FULL;
	} else if (write_record(sp, &w.b) == 0) {
		rc = 0;
	}
	pthread_mutex_unlock(&sp->lock);
out:
	rf_buf_free(&w.b);
	return rc;
}

void
rf_spool_counts(struct rf_spool *sp, long *rows, long *dropped, bool *full)
{
	pthread_mutex_lock(&sp->lock);
	if (rows != NULL)
		*rows = rows_locked(sp);
	if (dropped != NULL)
		*dropped = sp->dropped;
	if (full != NULL)
		*full = rows_locked(sp) >= sp->max_rows;
	pthread_mutex_unlock(&sp->lock);
}

int
rf_spool_next(struct rf_spool *sp, size_t max, struct rf_spool_batch *b)
{
	struct sfile *f;
	int64_t from, limit;
	int rc;

	pthread_mutex_lock(&sp->lock);
	f = sp->old != NULL ? sp->old : sp->cur;
	from = f->drained;
	limit = f->end;
	pthread_mutex_unlock(&sp->lock);
	/* Only this thread moves drained or swaps files: f stays valid. */
	rc = read_batch(f->fd, from, limit, max, b);
	b->name = f->name;
	if (rc != 0)
		RF_LOG_ERR(NULL, NULL, "spool file %s: %s", f->name,
		    strerror(errno));
	return rc;
}

/* Appends move to a new file; the current one drains on as sp->old. */
static void
rotate(struct rf_spool *sp)
{
	struct sfile *f = create_file(sp->dir);

	if (f == NULL)
		return; /* logged; appends stay where they are */
	sp->old = sp->cur;
	sp->cur = f;
}

bool
rf_spool_commit(struct rf_spool *sp, const struct rf_spool_batch *b,
    char gone[RF_SPOOL_NAME_MAX])
{
	struct sfile *f;
	bool removed = false;

	pthread_mutex_lock(&sp->lock);
	f = sp->old != NULL ? sp->old : sp->cur;
	if (b->name != f->name)
		goto out; /* not a batch of this file: nothing to do */
	f->drained = b->end;
	f->rows -= (long)b->n + b->bad;
	if (f == sp->cur && f->end >= sp->rotate_bytes)
		rotate(sp);
	if (sp->old != NULL && sp->old->drained == sp->old->end) {
		snprintf(gone, RF_SPOOL_NAME_MAX, "%s", sp->old->name);
		remove_file(sp, sp->old);
		sp->old = NULL;
		removed = true;
	}
out:
	pthread_mutex_unlock(&sp->lock);
	return removed;
}

bool
rf_spool_close(struct rf_spool *sp, char gone[RF_SPOOL_NAME_MAX])
{
	bool removed = false;

	if (sp == NULL)
		return false;
	if (rows_locked(sp) == 0 && sp->old == NULL) {
		snprintf(gone, RF_SPOOL_NAME_MAX, "%s", sp->cur->name);
		remove_file(sp, sp->cur);
		removed = true;
	} else {
		/* Rows wait: the files stay for the next process. */
		close(sp->cur->fd);
		free(sp->cur);
		if (sp->old != NULL) {
			close(sp->old->fd);
			free(sp->old);
		}
	}
	pthread_mutex_destroy(&sp->lock);
	free(sp);
	return removed;
}

/* ---- the files of dead processes ---- */

struct rf_spool_file {
	int fd;
	int64_t size;
	char name[RF_SPOOL_NAME_MAX];
	char path[PATH_MAX];
};

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n > k && strcmp(s + n - k, suffix) == 0;
}

static bool
spool_name(const char *n)
{
	return n[0] != '.' && strlen(n) < RF_SPOOL_NAME_MAX &&
	    ends_with(n, SUFFIX);
}

/* A hidden file of create_file that a process killed before its rename
 * left behind.  It never held a row; a young one may be in the short
 * window between open and flock of a live process's creation: left. */
static void
remove_stale_new(int dfd, const char *name)
{
	struct stat st;
	int fd;

	if (name[0] != '.' || !ends_with(name, SUFFIX ".new"))
		return;
	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
	    st.st_mtime < time(NULL) - STALE_NEW_S)
		unlinkat(dfd, name, 0);
	close(fd);
}

/* Take name's lock if its owner is gone and it is still linked there.
 * 1 claimed (*out), 0 passed over. */
static int
try_claim(const char *dir, int dfd, const char *name,
    struct rf_spool_file **out)
{
	struct rf_spool_file *f;
	struct stat a, b;
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &a) != 0 ||
	    fstatat(dfd, name, &b, 0) != 0 || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev)
		goto pass;
	if (a.st_size == 0) {
		unlinkat(dfd, name, 0); /* never held a row */
		goto pass;
	}
	if ((f = calloc(1, sizeof *f)) == NULL ||
	    join(f->path, sizeof f->path, dir, name) != 0) {
		free(f);
		goto pass;
	}
	f->fd = fd;
	f->size = (int64_t)a.st_size;
	snprintf(f->name, sizeof f->name, "%s", name);
	*out = f;
	return 1;
pass:
	close(fd);
	return 0;
}

int
rf_spool_claim(const char *dir, struct rf_spool_file **out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	*out = NULL;
	if (d == NULL)
		return -1;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (spool_name(de->d_name))
			rc = try_claim(dir, dirfd(d), de->d_name, out);
		else
			remove_stale_new(dirfd(d), de->d_name);
	}
	closedir(d);
	return rc;
}

const char *
rf_spool_file_name(const struct rf_spool_file *f)
{
	return f->name;
}

long
rf_spool_file_rows(struct rf_spool_file *f, int64_t from)
{
	struct rf_spool_batch b = { 0 };
	long rows = 0;

	while (read_batch(f->fd, from, f->size, 1024, &b) == 0 && b.end > from) {
		rows += (long)b.n;
		from = b.end;
	}
	rf_spool_batch_free(&b);
	return rows;
}

int
rf_spool_file_read(struct rf_spool_file *f, int64_t from, size_t max,
    struct rf_spool_batch *b)
{
	int rc = read_batch(f->fd, from, f->size, max, b);

	b->name = f->name;
	if (rc != 0)
		RF_LOG_ERR(NULL, NULL, "spool file %s: %s", f->name,
		    strerror(errno));
	return rc;
}

void
rf_spool_file_finish(struct rf_spool_file *f)
{
	if (unlink(f->path) != 0)
		RF_LOG_WARN(NULL, NULL, "cannot remove spool file %s: %s",
		    f->name, strerror(errno));
	rf_spool_file_release(f);
}

void
rf_spool_file_release(struct rf_spool_file *f)
{
	if (f == NULL)
		return;
	close(f->fd);
	free(f);
}
