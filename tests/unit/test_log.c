/* Unit tests of log: the line format, NULL context left out, the length
 * bound, control characters neutralised, secret redaction, errno kept, and
 * whole lines from concurrent threads.  stderr is captured through a pipe
 * (dup2), so what is checked is exactly what the program would write. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "scrub.h"

#define CAP_MAX (1024 * 1024)

static int cap_pipe[2] = { -1, -1 };
static int cap_saved = -1;
static char cap_buf[CAP_MAX + 1];

static void
cap_begin(void)
{
	assert_int_equal(pipe(cap_pipe), 0);
	cap_saved = dup(STDERR_FILENO);
	assert_true(cap_saved >= 0);
	assert_int_equal(dup2(cap_pipe[1], STDERR_FILENO), STDERR_FILENO);
}

/* Restore stderr and return everything written since cap_begin. */
static const char *
cap_end(void)
{
	size_t len = 0;
	ssize_t n;

	assert_int_equal(dup2(cap_saved, STDERR_FILENO), STDERR_FILENO);
	close(cap_saved);
	close(cap_pipe[1]);
	while (len < CAP_MAX &&
	    (n = read(cap_pipe[0], cap_buf + len, CAP_MAX - len)) > 0)
		len += (size_t)n;
	close(cap_pipe[0]);
	cap_buf[len] = '\0';
	return cap_buf;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

static void
expect_line(const char *got, const char *rest)
{
	char want[RF_LOG_LINE_MAX + 64];

	snprintf(want, sizeof(want), "relayforge[%ld]: %s", (long)getpid(),
	    rest);
	assert_string_equal(got, want);
}

static void
test_format(void **state)
{
	(void)state;
	cap_begin();
	RF_LOG_ERR("abc123", "groq", "upstream %s after %d ms", "timeout", 250);
	expect_line(cap_end(), "error test_format: [rid=abc123] "
	    "[provider=groq] upstream timeout after 250 ms\n");
	cap_begin();
	RF_LOG_WARN("r1", "gemini", "w");
	expect_line(cap_end(), "warn test_format: [rid=r1] [provider=gemini] w\n");
	cap_begin();
	RF_LOG_INFO("r1", "mock", "i");
	expect_line(cap_end(), "info test_format: [rid=r1] [provider=mock] i\n");
}

static void
test_null_context_omitted(void **state)
{
	(void)state;
	cap_begin();
	RF_LOG_ERR(NULL, NULL, "store %s unavailable", "var/x.db");
	expect_line(cap_end(),
	    "error test_null_context_omitted: store var/x.db unavailable\n");
	cap_begin();
	RF_LOG_ERR("r9", NULL, "only a request");
	expect_line(cap_end(),
	    "error test_null_context_omitted: [rid=r9] only a request\n");
	cap_begin();
	RF_LOG_ERR(NULL, "cerebras", "only a provider");
	expect_line(cap_end(),
	    "error test_null_context_omitted: [provider=cerebras] "
	    "only a provider\n");
	cap_begin();
	rf_log_write(RF_LOG_LEVEL_INFO, NULL, NULL, NULL, "%s", "");
	expect_line(cap_end(), "info ?: \n");
}

static void
test_truncated(void **state)
{
	char *big = malloc(5000);
	const char *got;
	size_t len;

	(void)state;
	memset(big, 'a', 4999);
	big[4999] = '\0';
	cap_begin();
	RF_LOG_ERR("r", "p", "%s", big);
	got = cap_end();
	len = strlen(got);
	assert_int_equal(len, RF_LOG_LINE_MAX);
	assert_int_equal(count_lines(got), 1);
	assert_memory_equal(got + len - 4, "...\n", 4);
	assert_non_null(strstr(got, ": error test_truncated: [rid=r] "
	    "[provider=p] aaaa"));
	free(big);
}

/* A line that fits exactly is not cut; one byte more is. */
static void
test_fits_exactly(void **state)
{
	char prefix[128], msg[RF_LOG_LINE_MAX];
	size_t room;
	const char *got;

	(void)state;
	room = RF_LOG_LINE_MAX - 1 - (size_t)snprintf(prefix, sizeof(prefix),
	    "relayforge[%ld]: info test_fits_exactly: ", (long)getpid());
	memset(msg, 'b', room);
	msg[room] = '\0';
	cap_begin();
	RF_LOG_INFO(NULL, NULL, "%s", msg);
	got = cap_end();
	assert_int_equal(strlen(got), RF_LOG_LINE_MAX);
	assert_memory_equal(got + RF_LOG_LINE_MAX - 2, "b\n", 2);
	cap_begin();
	RF_LOG_INFO(NULL, NULL, "%sc", msg);
	got = cap_end();
	assert_int_equal(strlen(got), RF_LOG_LINE_MAX);
	assert_memory_equal(got + RF_LOG_LINE_MAX - 4, "...\n", 4);
}

/* A cut never leaves half a UTF-8 character before the ellipsis. */
static void
test_truncated_on_utf8_boundary(void **state)
{
	char msg[3001];
	const char *got, *dots;

	(void)state;
	for (int i = 0; i < 1000; i++)
		memcpy(msg + 3 * i, "\xe2\x82\xac", 3); /* U+20AC */
	msg[3000] = '\0';
	for (int shift = 0; shift < 3; shift++) {
		cap_begin();
		RF_LOG_INFO(NULL, NULL, "%.*s%s", shift, "xx", msg);
		got = cap_end();
		dots = got + strlen(got) - 4;
		assert_string_equal(dots, "...\n");
		/* the character before the dots is whole: it ends in 0xac */
		assert_int_equal((unsigned char)dots[-1], 0xac);
	}
}

static void
test_control_chars_neutralised(void **state)
{
	const char *got;

	(void)state;
	cap_begin();
	RF_LOG_WARN("r\n1", "p\r", "a\nrelayforge[1]: error forged: %s\tz\x7f",
	    "b\x1b[31m");
	got = cap_end();
	assert_int_equal(count_lines(got), 1);
	expect_line(got, "warn test_control_chars_neutralised: [rid=r?1] "
	    "[provider=p?] a?relayforge[1]: error forged: b?[31m?z?\n");
}

static void
test_secret_redacted(void **state)
{
	const char *key = "gsk_0123456789abcdefXYZ";
	const char *got;

	(void)state;
	assert_int_equal(rf_scrub_add_secret(key), 0);
	assert_int_equal(rf_scrub_add_secret(key), 0); /* again: harmless */
	assert_int_equal(rf_scrub_add_secret(NULL), 0);
	assert_int_equal(rf_scrub_add_secret(""), 0);
	cap_begin();
	RF_LOG_ERR("r", "groq", "sent Bearer %s!", key);
	expect_line(cap_end(), "error test_secret_redacted: [rid=r] "
	    "[provider=groq] sent Bearer [redacted]!\n");
	/* a piece of 8 bytes or more gives the key away */
	cap_begin();
	RF_LOG_ERR(NULL, NULL, "<%s>", "x3456789abcdefXq");
	expect_line(cap_end(), "error test_secret_redacted: <x[redacted]q>\n");
	/* 7 bytes do not */
	cap_begin();
	RF_LOG_ERR(NULL, NULL, "<%s>", "3456789");
	expect_line(cap_end(), "error test_secret_redacted: <3456789>\n");
	/* in the request id too, and twice in one line */
	cap_begin();
	RF_LOG_ERR(key, NULL, "%s %s", key + 4, key);
	got = cap_end();
	assert_null(strstr(got, "01234567"));
	expect_line(got, "error test_secret_redacted: [rid=[redacted]] "
	    "[redacted] [redacted]\n");
}

/* A secret shorter than 8 bytes goes only where it appears whole; a secret
 * with a newline matches the line as neutralised. */
static void
test_short_and_odd_secrets(void **state)
{
	(void)state;
	assert_int_equal(rf_scrub_add_secret("tok42"), 0);
	assert_int_equal(rf_scrub_add_secret("line1\nline2"), 0);
	cap_begin();
	RF_LOG_INFO(NULL, NULL, "a tok42 b tok4 c %s", "line1\nline2");
	expect_line(cap_end(), "info test_short_and_odd_secrets: "
	    "a [redacted] b tok4 c [redacted]\n");
}

/* Redaction that grows the line still respects the bound. */
static void
test_redaction_bounded(void **state)
{
	char msg[1500];
	const char *got;

	(void)state;
	for (size_t i = 0; i + 5 < sizeof(msg); i += 5)
		memcpy(msg + i, "tok42", 5);
	msg[sizeof(msg) - 1 - (sizeof(msg) - 1) % 5] = '\0';
	cap_begin();
	RF_LOG_INFO(NULL, NULL, "%s", msg);
	got = cap_end();
	assert_int_equal(strlen(got), RF_LOG_LINE_MAX);
	assert_int_equal(count_lines(got), 1);
	assert_null(strstr(got, "tok42"));
	assert_memory_equal(got + RF_LOG_LINE_MAX - 4, "...\n", 4);
}

static void
test_errno_kept(void **state)
{
	(void)state;
	cap_begin();
	errno = ENOSPC;
	RF_LOG_ERR(NULL, NULL, "disk: %s", strerror(errno));
	assert_int_equal(errno, ENOSPC);
	cap_end();
}

#define THREADS 4
#define PER_THREAD 200

static void *
writer_thread(void *arg)
{
	char msg[600];

	memset(msg, 'a' + (int)(intptr_t)arg, sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	for (int i = 0; i < PER_THREAD; i++)
		RF_LOG_INFO("rid", NULL, "%s", msg);
	return NULL;
}

static void *
drain_thread(void *arg)
{
	size_t len = 0;
	ssize_t n;

	(void)arg;
	while (len < CAP_MAX &&
	    (n = read(cap_pipe[0], cap_buf + len, CAP_MAX - len)) > 0)
		len += (size_t)n;
	cap_buf[len] = '\0';
	return NULL;
}

/* Lines written at once by several threads arrive whole. */
static void
test_concurrent_lines_whole(void **state)
{
	pthread_t th[THREADS], drain;
	char *line, *save = NULL;
	size_t n = 0;

	(void)state;
	cap_begin();
	pthread_create(&drain, NULL, drain_thread, NULL);
	for (intptr_t i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, writer_thread, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(dup2(cap_saved, STDERR_FILENO), STDERR_FILENO);
	close(cap_saved);
	close(cap_pipe[1]);
	pthread_join(drain, NULL);
	close(cap_pipe[0]);
	for (line = strtok_r(cap_buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), n++) {
		const char *msg = strstr(line, "[rid=rid] ");

		assert_non_null(msg);
		msg += strlen("[rid=rid] ");
		assert_int_equal(strlen(msg), 599);
		assert_true(msg[0] >= 'a' && msg[0] < 'a' + THREADS);
		for (size_t i = 1; i < 599; i++)
			assert_int_equal(msg[i], msg[0]);
	}
	assert_int_equal(n, THREADS * PER_THREAD);
}

/* Runs last: it fills the table. */
static void
test_secret_table_full(void **state)
{
	char s[32];
	int rc = 0, i;

	(void)state;
	for (i = 0; i < RF_SCRUB_SECRETS_MAX + 1 && rc == 0; i++) {
		snprintf(s, sizeof(s), "secret-number-%04d", i);
		rc = rf_scrub_add_secret(s);
	}
	assert_int_equal(rc, -1);
	/* the ones that fitted still work; already known ones are fine */
	assert_int_equal(rf_scrub_add_secret("secret-number-0000"), 0);
	cap_begin();
	RF_LOG_INFO(NULL, NULL, "%s", "secret-number-0000");
	expect_line(cap_end(), "info test_secret_table_full: [redacted]\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_null_context_omitted),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_fits_exactly),
		cmocka_unit_test(test_truncated_on_utf8_boundary),
		cmocka_unit_test(test_control_chars_neutralised),
		cmocka_unit_test(test_secret_redacted),
		cmocka_unit_test(test_short_and_odd_secrets),
		cmocka_unit_test(test_redaction_bounded),
		cmocka_unit_test(test_errno_kept),
		cmocka_unit_test(test_concurrent_lines_whole),
		cmocka_unit_test(test_secret_table_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
