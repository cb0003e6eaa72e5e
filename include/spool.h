/*
 * spool: the request log's durable waiting room (docs/configuration.md,
 * docs/operations.md,
 * docs/several-machines.md).
 * A request's row is appended to this process's spool file before its
 * answer completes -- one write(2) of one record, no fsync: a process that
 * dies loses nothing, only a machine crash could -- and the log writer
 * (logq.c) moves the rows into the store in batches, recording in the same
 * transaction how far it got (rf_store_log_spooled), so no row is written
 * twice.  A spool file whose process died is replayed by the next process
 * that finds it (rf_spool_claim).
 *
 * The directory holds one file per live process, "<host>-<pid>-<random>
 * .spool", each locked with flock(2) by its owner for its whole life: a
 * file whose lock can be taken belongs to a dead process.  A file is
 * created under a hidden temporary name, locked, then renamed into place,
 * so no other process can see it unlocked.
 *
 * A record is a 12-byte head (magic "RFsp", payload length, CRC-32 of the
 * payload, little-endian) and a payload that starts with its format
 * version (1) and holds every field of a struct rf_log_entry except
 * finish_reason (not stored).  A record cut short by a kill mid-write --
 * only possible at the end of a dead process's file -- is detected (its
 * length runs past the end of the file) and ignored; a record whose CRC
 * does not match is skipped and counted in the batch's `bad`.
 *
 * The file of a live process is only ever read below its committed end
 * (the end of its last whole record, kept under the spool's lock), so a
 * reader never sees a record being written.  When a file passes
 * rotate_bytes, appends move to a new file and the old one is removed
 * once it is drained.
 *
 * Thread safety: rf_spool_append and rf_spool_counts may be called from any
 * thread; everything that reads or drains (next, commit, close) from one
 * thread at a time (the log writer).  Prefix: rf_spool_.
 */
#ifndef RF_SPOOL_H
#define RF_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Rotate the current file once it is this long (bytes), by default. */
#define RF_SPOOL_ROTATE_BYTES (16L * 1024 * 1024)
/* A record longer than this is never written (nor read back). */
#define RF_SPOOL_RECORD_MAX (1024 * 1024)
/* The longest spool file name ("<host>-<pid>-<hex>.spool"). */
#define RF_SPOOL_NAME_MAX 128

struct rf_spool_conf {
	const char *dir;    /* created (mode 0700) if missing; not its parents */
	long max_rows;      /* rows that may wait (>= 1); past it appends fail */
	long rotate_bytes;  /* 0 = RF_SPOOL_ROTATE_BYTES */
};

/* This process's spool: its current file (and, after a rotation, the one
 * still being drained).  Opaque. */
struct rf_spool;

/* Rows read back from a spool file, in file order, with the byte range
 * they came from.  Zero-initialised is an empty batch; the rows and their
 * strings belong to the batch until the next read into it or
 * rf_spool_batch_free. */
struct rf_spool_batch {
	const char *name;                   /* the spool file's name (its key;
	                                       the file's memory: valid while
	                                       the file is open) */
	const struct rf_log_entry **rows;   /* n rows */
	size_t n;
	int64_t from, end;  /* [from, end): the bytes these rows (and any bad
	                       records among them) take in the file */
	long bad;           /* records in the range that could not be read */
	bool tail;          /* what follows end is not a whole record: the
	                       rest of a dead process's file is lost */
	bool eof;           /* nothing readable follows end (tail, or end is
	                       the end of the file / of what was committed) */
	/* private */
	char *buf;
	size_t cap, len;
	struct rf_log_entry *ents;
	size_t ents_cap;
	struct rf_log_attempt *att;
	size_t natt, att_cap;
	size_t *att_at;
};

void rf_spool_batch_free(struct rf_spool_batch *b);

/* Create this process's spool file in c->dir.  NULL with the reason in err
 * (which names the directory: a path, never a secret). */
struct rf_spool *rf_spool_open(const struct rf_spool_conf *c, char *err,
    size_t errlen);

/* What rf_spool_append returns besides 0. */
#define RF_SPOOL_FULL (-1)  /* max_rows wait: the row is dropped (counted) */
#define RF_SPOOL_ERROR (-2) /* not written (no space, I/O error, a record
                               over RF_SPOOL_RECORD_MAX, no memory): the
                               caller keeps the row; nothing is counted */

/* Append e as one record with one write(2).  0 when it is in the file
 * (durable against the death of this process). */
int rf_spool_append(struct rf_spool *sp, const struct rf_log_entry *e);

/* Rows waiting (appended, not yet committed), rows dropped because the
 * spool was full (since rf_spool_open), and whether it is full now.  Any
 * pointer may be NULL. */
void rf_spool_counts(struct rf_spool *sp, long *rows, long *dropped,
    bool *full);

/* The drain side.  Read up to max of the oldest waiting rows into b
 * (b->n 0 when none wait).  0, or -1 on a read error (logged). */
int rf_spool_next(struct rf_spool *sp, size_t max, struct rf_spool_batch *b);
/* b (from rf_spool_next) is in the store: its rows no longer wait.  When
 * that empties a rotated-out file, the file is removed and its name copied
 * to gone (the caller forgets its progress in the store): returns true. */
bool rf_spool_commit(struct rf_spool *sp, const struct rf_spool_batch *b,
    char gone[RF_SPOOL_NAME_MAX]);
/* Close the spool.  When no row waits, its file is removed first and its
 * name copied to gone: returns true.  Otherwise the file stays, unlocked,
 * for the next process to replay.  NULL is a no-op (false). */
bool rf_spool_close(struct rf_spool *sp, char gone[RF_SPOOL_NAME_MAX]);

/* ---- the files of dead processes ---- */

/* One claimed (locked) spool file of a dead process.  Opaque. */
struct rf_spool_file;

/* Claim the first spool file in dir whose owner is gone: its lock is free
 * and it is still linked under its name (a file another process finished
 * meanwhile is passed over).  Empty ones are removed on the way.  1 with
 * *out set, 0 when there is none, -1 when dir cannot be read. */
int rf_spool_claim(const char *dir, struct rf_spool_file **out);
const char *rf_spool_file_name(const struct rf_spool_file *f);
/* Whole records from byte from to the end of the file (for /health). */
long rf_spool_file_rows(struct rf_spool_file *f, int64_t from);
/* Read up to max rows from byte from.  b->n 0 and b->end == from: the
 * file is done (nothing more, or only a cut-short tail).  0 or -1. */
int rf_spool_file_read(struct rf_spool_file *f, int64_t from, size_t max,
    struct rf_spool_batch *b);
/* Done with a replayed file: remove it, then release it. */
void rf_spool_file_finish(struct rf_spool_file *f);
/* Let another process have it (stopping half-way). */
void rf_spool_file_release(struct rf_spool_file *f);

#endif
