/*
 * log: every line the program writes to stderr.  A line names its level,
 * the function that wrote it, the request and the provider when there is
 * one, then the message:
 *
 *   relayforge[<pid>]: <level> <func>: [rid=<id>] [provider=<p>] <message>
 *
 * ("[rid=...] " and "[provider=...] " are left out when NULL).  A line is
 * at most RF_LOG_LINE_MAX bytes, newline included (longer ones end in
 * "..."), and leaves in one write(2), so lines of concurrent threads and
 * processes never interleave.  Control characters in the request id, the
 * provider and the message become '?', so a value cannot forge a second
 * line.  Secrets registered with rf_scrub_add_secret (scrub.h) are
 * replaced by "[redacted]" wherever 8 or more of their consecutive bytes
 * show up (a key cut short is still a key).  Callers still never pass an
 * API key, a token or an upstream body: redaction is the net, not the
 * rule.  errno is preserved.
 * Prefix: rf_log_.
 */
#ifndef RF_LOG_H
#define RF_LOG_H

#define RF_LOG_LINE_MAX 1024

enum rf_log_level { RF_LOG_LEVEL_ERR, RF_LOG_LEVEL_WARN, RF_LOG_LEVEL_INFO };

/* What the macros below call; func is __func__.  rid and provider may be
 * NULL. */
void rf_log_write(enum rf_log_level level, const char *func, const char *rid,
    const char *provider, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* RF_LOG_ERR(rid, provider, fmt, ...): rid and provider may be NULL. */
#define RF_LOG_ERR(rid, provider, ...) \
	rf_log_write(RF_LOG_LEVEL_ERR, __func__, (rid), (provider), __VA_ARGS__)
#define RF_LOG_WARN(rid, provider, ...) \
	rf_log_write(RF_LOG_LEVEL_WARN, __func__, (rid), (provider), __VA_ARGS__)
#define RF_LOG_INFO(rid, provider, ...) \
	rf_log_write(RF_LOG_LEVEL_INFO, __func__, (rid), (provider), __VA_ARGS__)

#endif
