/*
 * config: every setting of docs/configuration.md, read once at start.  A key is
 * looked up in the environment first, then in the file named by
 * RELAYFORGE_CONFIG (KEY=VALUE lines).  Scalar settings are one table, one
 * line per key with its type, default and bounds (redis' static_configs[]
 * idea), so a new setting is one line; the providers' settings, the chain
 * and the CORS list have their own small parsers below.  The providers are
 * the catalog (provider.h, catalog.c): for each entry with an env prefix P
 * the keys P_API_KEY, RELAYFORGE_P_URL and RELAYFORGE_P_MODEL are read, so
 * a new provider needs no line here.
 *
 * Failure contract: rf_config_load() either fills the whole config or
 * leaves it zeroed with a message that names the key.  A value is never
 * copied into a message: the same file holds API keys.
 */
#include "config.h"
#include "provider.h"
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef RF_DEFAULT_DB
#define RF_DEFAULT_DB "var/relayforge.db"
#endif

/* The spool directory when RELAYFORGE_DB is a URI (no file to be beside). */
#ifndef RF_DEFAULT_SPOOL_DIR
#define RF_DEFAULT_SPOOL_DIR "var/relayforge.spool"
#endif

#define RF_MODEL_MAX 128

enum key_type {
	KT_INT,    /* int field, decimal, within [min, max] */
	KT_LONG,   /* long field, decimal, within [min, max] */
	KT_SWITCH, /* bool field from one of two words (off/on) */
	KT_PATH,   /* owned string, not empty */
	KT_STR,    /* owned string, may be empty */
	KT_SECRET  /* owned string or NULL when empty; never printed */
};

struct key_def {
	const char *name;
	enum key_type type;
	size_t off;
	long def, min, max;  /* numbers and switches (def 0/1) */
	const char *sdef;    /* strings */
	const char *no, *yes;/* switches: the words for false and true */
};

#define NUM(k, t, f, d, lo, hi) \
	{ k, t, offsetof(struct rf_config, f), d, lo, hi, NULL, NULL, NULL }
#define SW(k, f, d, n, y) \
	{ k, KT_SWITCH, offsetof(struct rf_config, f), d, 0, 1, NULL, n, y }
#define STR(k, t, f, d) \
	{ k, t, offsetof(struct rf_config, f), 0, 0, 0, d, NULL, NULL }

/*
 * Scalar settings.  Bounds, and why:
 * - timeouts 1..86400000 ms (a day): 0 would mean "no timeout" to curl;
 * - cooldown 0..86400000 (0 = no cooldown), Retry-After wait 0..600000
 *   (the 10 minute cooldown cap of docs/api.md);
 * - retries 0..5: each retry adds latency for the user who waits;
 * - body 1 KiB..64 MiB, prompt and maxTokens 1..1000000;
 * - rate limit 0..1000000 per minute (0 = off), threads 1..1024,
 *   retention 1..3650 days, failure threshold 1..1000,
 *   mock delay 0..60000 ms;
 * - log queue 1..10000000 rows waiting in the spool (a million rows is
 *   about 0.5 GB of disk);
 * - max streams 1..1000000 open requests per process: each costs a few
 *   kilobytes and two file descriptors at the web server, so a million is
 *   past what any one machine's fd limits allow; 1 is a valid (tiny) cap.
 */
static const struct key_def keys[] = {
	STR("RELAYFORGE_DB", KT_PATH, db_path, RF_DEFAULT_DB),
	SW("RELAYFORGE_MOCK", mock_on, 1, "off", "on"),
	NUM("RELAYFORGE_MOCK_DELAY_MS", KT_LONG, mock_delay_ms, 15, 0, 60000),
	NUM("RELAYFORGE_CONNECT_TIMEOUT_MS", KT_LONG, connect_timeout_ms,
	    3000, 1, 86400000),
	NUM("RELAYFORGE_TIMEOUT_MS", KT_LONG, timeout_ms, 60000, 1, 86400000),
	NUM("RELAYFORGE_FIRST_TOKEN_TIMEOUT_MS", KT_LONG,
	    first_token_timeout_ms, 10000, 1, 86400000),
	NUM("RELAYFORGE_STREAM_IDLE_TIMEOUT_MS", KT_LONG,
	    stream_idle_timeout_ms, 20000, 1, 86400000),
	NUM("RELAYFORGE_STREAM_TIMEOUT_MS", KT_LONG, stream_timeout_ms,
	    300000, 1, 86400000),
	NUM("RELAYFORGE_RETRIES", KT_INT, retries, 1, 0, 5),
	NUM("RELAYFORGE_RETRY_AFTER_MAX_MS", KT_LONG, retry_after_max_ms,
	    2000, 0, 600000),
	NUM("RELAYFORGE_COOLDOWN_MS", KT_LONG, cooldown_ms, 30000, 0, 86400000),
	NUM("RELAYFORGE_FAILURE_THRESHOLD", KT_INT, failure_threshold, 3, 1, 1000),
	NUM("RELAYFORGE_MAX_BODY_BYTES", KT_LONG, max_body_bytes, 65536,
	    1024, 67108864),
	NUM("RELAYFORGE_MAX_PROMPT_CHARS", KT_LONG, max_prompt_chars, 32000,
	    1, 1000000),
	NUM("RELAYFORGE_MAX_TOKENS_LIMIT", KT_INT, max_tokens_limit, 4096,
	    1, 1000000),
	STR("RELAYFORGE_CORS_ORIGINS", KT_STR, cors_origins, ""),
	STR("RELAYFORGE_API_TOKEN", KT_SECRET, api_token, ""),
	STR("RELAYFORGE_ADMIN_TOKEN", KT_SECRET, admin_token, ""),
	NUM("RELAYFORGE_RATE_LIMIT", KT_INT, rate_limit, 60, 0, 1000000),
	SW("RELAYFORGE_LOG_PROMPTS", log_prompts, 0, "off", "preview"),
	NUM("RELAYFORGE_RETENTION_DAYS", KT_INT, retention_days, 30, 1, 3650),
	NUM("RELAYFORGE_THREADS", KT_INT, threads, 8, 1, 1024),
	NUM("RELAYFORGE_LOG_QUEUE", KT_LONG, log_queue, 100000, 1, 10000000),
	NUM("RELAYFORGE_MAX_STREAMS", KT_INT, max_streams, 10000, 1, 1000000),
	STR("RELAYFORGE_SPOOL_DIR", KT_STR, spool_dir, ""), /* see spool_default */
	STR("RELAYFORGE_NODE", KT_STR, node, ""),             /* see node_default */
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
#define KEY_CHAIN "RELAYFORGE_CHAIN"

/* The KEY=VALUE pairs of the RELAYFORGE_CONFIG file (owned). */
struct file_kv {
	char **k;
	char **v;
	size_t n;
};

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Values may be API keys: wipe them before the memory goes back. */
static void
free_secret(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void
kv_free(struct file_kv *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->k[i]);
		free_secret(f->v[i]);
	}
	free(f->k);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

/* Trim spaces and tabs at both ends, in place; returns the new start. */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* true when name is a RELAYFORGE_* key this program reads. */
static bool
known_key(const char *name)
{
	char buf[64];
	size_t i;

	if (strcmp(name, KEY_CHAIN) == 0)
		return true;
	for (i = 0; i < NKEYS; i++)
		if (strcmp(name, keys[i].name) == 0)
			return true;
	for (i = 0; i < (size_t)rf_nproviders; i++) {
		if (rf_providers[i].env == NULL)
			continue;
		snprintf(buf, sizeof(buf), "RELAYFORGE_%s_URL",
		    rf_providers[i].env);
		if (strcmp(name, buf) == 0)
			return true;
		snprintf(buf, sizeof(buf), "RELAYFORGE_%s_MODEL",
		    rf_providers[i].env);
		if (strcmp(name, buf) == 0)
			return true;
	}
	return false;
}

static int
kv_add(struct file_kv *f, const char *k, const char *v)
{
	char **nk, **nv;

	if ((nk = realloc(f->k, (f->n + 1) * sizeof(*nk))) == NULL)
		return -1;
	f->k = nk;
	if ((nv = realloc(f->v, (f->n + 1) * sizeof(*nv))) == NULL)
		return -1;
	f->v = nv;
	f->k[f->n] = strdup(k);
	f->v[f->n] = strdup(v);
	if (f->k[f->n] == NULL || f->v[f->n] == NULL) {
		free(f->k[f->n]);
		free_secret(f->v[f->n]);
		return -1;
	}
	f->n++;
	return 0;
}

/* One line of the file: blank, comment, or KEY=VALUE. */
static int
kv_line(struct file_kv *f, char *line, size_t lineno, char *err,
    size_t errlen)
{
	char *s, *eq, *k, *v;
	size_t vl;

	s = trim(line);
	if (*s == '\0' || *s == '#')
		return 0;
	if ((eq = strchr(s, '=')) == NULL || eq == s) {
		seterr(err, errlen, "RELAYFORGE_CONFIG: line %zu: expected "
		    "KEY=VALUE", lineno);
		return -1;
	}
	*eq = '\0';
	k = trim(s);
	v = trim(eq + 1);
	vl = strlen(v);
	if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
		v[vl - 1] = '\0';
		v++;
	}
	if (*k == '\0') {
		seterr(err, errlen, "RELAYFORGE_CONFIG: line %zu: expected "
		    "KEY=VALUE", lineno);
		return -1;
	}
	if (strncmp(k, "RELAYFORGE_", 11) == 0 && !known_key(k)) {
		seterr(err, errlen, "RELAYFORGE_CONFIG: line %zu: unknown key "
		    "%.64s", lineno, k);
		return -1;
	}
	if (kv_add(f, k, v) == -1) {
		seterr(err, errlen, "RELAYFORGE_CONFIG: out of memory");
		return -1;
	}
	return 0;
}

/* Read the file named by RELAYFORGE_CONFIG, if any, into f. */
static int
kv_load(struct file_kv *f, char *err, size_t errlen)
{
	const char *path = getenv("RELAYFORGE_CONFIG");
	FILE *fp = NULL;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	int rc = -1;

	if (path == NULL || *path == '\0')
		return 0;
	if ((fp = fopen(path, "re")) == NULL) {
		seterr(err, errlen, "RELAYFORGE_CONFIG: cannot read the file: %s",
		    strerror(errno));
		goto out;
	}
	while (getline(&line, &cap, fp) != -1)
		if (kv_line(f, line, ++lineno, err, errlen) == -1)
			goto out;
	if (ferror(fp)) {
		seterr(err, errlen, "RELAYFORGE_CONFIG: cannot read the file");
		goto out;
	}
	rc = 0;
out:
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	if (fp != NULL)
		fclose(fp);
	return rc;
}

/* The value of name: the environment wins, then the file (its last
 * occurrence), else NULL. */
static const char *
lookup(const struct file_kv *f, const char *name)
{
	const char *v = getenv(name);
	size_t i;

	if (v != NULL)
		return v;
	for (i = f->n; i > 0; i--)
		if (strcmp(f->k[i - 1], name) == 0)
			return f->v[i - 1];
	return NULL;
}

/* Decimal only (optional '-', digits), the whole string, no overflow. */
static int
parse_long(const char *s, long *out)
{
	const char *p = s;
	char *end;
	long v;

	if (*p == '-')
		p++;
	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int
set_number(struct rf_config *cfg, const struct key_def *d, const char *val,
    char *err, size_t errlen)
{
	long v = d->def;

	if (val != NULL && (parse_long(val, &v) == -1 || v < d->min ||
	    v > d->max)) {
		seterr(err, errlen, "%s: must be an integer between %ld and %ld",
		    d->name, d->min, d->max);
		return -1;
	}
	if (d->type == KT_INT)
		*(int *)(void *)((char *)cfg + d->off) = (int)v;
	else
		*(long *)(void *)((char *)cfg + d->off) = v;
	return 0;
}

static int
set_switch(struct rf_config *cfg, const struct key_def *d, const char *val,
    char *err, size_t errlen)
{
	bool v = d->def != 0;

	if (val != NULL) {
		if (strcasecmp(val, d->yes) == 0)
			v = true;
		else if (strcasecmp(val, d->no) == 0)
			v = false;
		else {
			seterr(err, errlen, "%s: must be %s or %s", d->name,
			    d->no, d->yes);
			return -1;
		}
	}
	*(bool *)(void *)((char *)cfg + d->off) = v;
	return 0;
}

/* true when s holds a byte below 0x20 or DEL (header injection, log
 * forgery); tokens and keys travel in HTTP headers. */
static bool
has_ctl(const char *s, bool allow_space)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f ||
		    (!allow_space && *s == ' '))
			return true;
	return false;
}

static int
set_string(struct rf_config *cfg, const struct key_def *d, const char *val,
    char *err, size_t errlen)
{
	char **dst = (char **)(void *)((char *)cfg + d->off);

	if (val == NULL)
		val = d->sdef;
	if (d->type == KT_PATH && *val == '\0') {
		seterr(err, errlen, "%s: must not be empty", d->name);
		return -1;
	}
	if (has_ctl(val, d->type != KT_SECRET)) {
		seterr(err, errlen, "%s: must not contain control characters%s",
		    d->name, d->type == KT_SECRET ? " or spaces" : "");
		return -1;
	}
	if (d->type == KT_SECRET && *val == '\0') {
		*dst = NULL;
		return 0;
	}
	if ((*dst = strdup(val)) == NULL) {
		seterr(err, errlen, "%s: out of memory", d->name);
		return -1;
	}
	return 0;
}

/* RELAYFORGE_SPOOL_DIR unset: beside the SQLite file ("/x/relayforge.db"
 * gives "/x/relayforge.spool"), or RF_DEFAULT_SPOOL_DIR when RELAYFORGE_DB
 * is a URI.  One spool directory per store: rows replayed from it go to
 * the store of whoever replays them. */
static int
spool_default(struct rf_config *cfg, char *err, size_t errlen)
{
	const char *db = cfg->db_path;
	size_t n = strlen(db);
	char *dir;

	if (cfg->spool_dir[0] != '\0')
		return 0;
	if (strstr(db, "://") != NULL) {
		dir = strdup(RF_DEFAULT_SPOOL_DIR);
	} else {
		if (n > 3 && strcmp(db + n - 3, ".db") == 0)
			n -= 3;
		if ((dir = malloc(n + sizeof ".spool")) != NULL)
			snprintf(dir, n + sizeof ".spool", "%.*s.spool", (int)n, db);
	}
	if (dir == NULL) {
		seterr(err, errlen, "RELAYFORGE_SPOOL_DIR: out of memory");
		return -1;
	}
	free(cfg->spool_dir);
	cfg->spool_dir = dir;
	return 0;
}

/* RELAYFORGE_NODE: [A-Za-z0-9._-]{1,64} (it names the machine in every
 * log row, shown to operators); unset, the host name as the store makes
 * it fit that form. */
static int
node_default(struct rf_config *cfg, char *err, size_t errlen)
{
	char *node;

	if (cfg->node[0] != '\0') {
		if (rf_store_node_valid(cfg->node))
			return 0;
		seterr(err, errlen, "RELAYFORGE_NODE: must be 1 to %d of"
		    " A-Z a-z 0-9 . _ -", RF_STORE_NODE_MAX);
		return -1;
	}
	if ((node = strdup(rf_store_node())) == NULL) {
		seterr(err, errlen, "RELAYFORGE_NODE: out of memory");
		return -1;
	}
	free(cfg->node);
	cfg->node = node;
	return 0;
}

static int
load_table(struct rf_config *cfg, const struct file_kv *f, char *err,
    size_t errlen)
{
	const struct key_def *d;
	const char *val;
	size_t i;
	int rc;

	for (i = 0; i < NKEYS; i++) {
		d = &keys[i];
		val = lookup(f, d->name);
		if (d->type == KT_INT || d->type == KT_LONG)
			rc = set_number(cfg, d, val, err, errlen);
		else if (d->type == KT_SWITCH)
			rc = set_switch(cfg, d, val, err, errlen);
		else
			rc = set_string(cfg, d, val, err, errlen);
		if (rc == -1)
			return -1;
	}
	return 0;
}

/* http:// or https:// (any case), a host, no spaces or control bytes;
 * trailing slashes are dropped in place.  0 or -1. */
static int
check_url(char *url)
{
	size_t skip, n;

	if (strncasecmp(url, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		skip = 8;
	else
		return -1;
	if (has_ctl(url, false))
		return -1;
	n = strlen(url);
	while (n > skip && url[n - 1] == '/')
		url[--n] = '\0';
	n = strcspn(url + skip, "/?#");
	if (n == 0 || url[skip] == '@' || url[skip] == ':')
		return -1;
	return 0;
}

static int
check_model(const char *m)
{
	size_t n = strlen(m);

	if (n == 0 || n > RF_MODEL_MAX || has_ctl(m, true))
		return -1;
	return 0;
}

/* The URL and model of one provider with an env prefix. */
static int
load_endpoint(struct rf_provider_conf *pc, const struct rf_provider *c,
    const struct file_kv *f, char *err, size_t errlen)
{
	char name[64];
	const char *v;

	snprintf(name, sizeof(name), "RELAYFORGE_%s_URL", c->env);
	v = lookup(f, name);
	if ((pc->url = strdup(v ? v : c->url)) == NULL)
		goto nomem;
	if (check_url(pc->url) == -1) {
		seterr(err, errlen, "%s: must be an http:// or https:// URL "
		    "with a host", name);
		return -1;
	}
	snprintf(name, sizeof(name), "RELAYFORGE_%s_MODEL", c->env);
	v = lookup(f, name);
	if ((pc->model = strdup(v ? v : c->model)) == NULL)
		goto nomem;
	if (check_model(pc->model) == -1) {
		seterr(err, errlen, "%s: must be 1 to %d characters without "
		    "control characters", name, RF_MODEL_MAX);
		return -1;
	}
	return 0;
nomem:
	seterr(err, errlen, "%s: out of memory", name);
	return -1;
}

/* The API key of one provider with an env prefix: empty counts as unset. */
static int
load_key(struct rf_provider_conf *pc, const struct rf_provider *c,
    const struct file_kv *f, char *err, size_t errlen)
{
	char name[64];
	const char *v;

	snprintf(name, sizeof(name), "%s_API_KEY", c->env);
	v = lookup(f, name);
	if (v == NULL || *v == '\0')
		return 0;
	if (has_ctl(v, false)) {
		seterr(err, errlen, "%s: must not contain spaces or control "
		    "characters", name);
		return -1;
	}
	if ((pc->key = strdup(v)) == NULL) {
		seterr(err, errlen, "%s: out of memory", name);
		return -1;
	}
	pc->configured = true;
	return 0;
}

/* A provider without settings (no env prefix): its defaults.  It is
 * configured only when built in (it needs no key). */
static int
load_defaults(struct rf_provider_conf *pc, const struct rf_provider *c,
    char *err, size_t errlen)
{
	pc->url = strdup(c->url);
	pc->model = strdup(c->model);
	pc->configured = c->builtin;
	if (pc->url == NULL || pc->model == NULL) {
		seterr(err, errlen, "config: out of memory");
		return -1;
	}
	return 0;
}

static int
load_providers(struct rf_config *cfg, const struct file_kv *f, char *err,
    size_t errlen)
{
	struct rf_provider_conf *pc;
	const struct rf_provider *c;
	int i;

	cfg->nproviders = rf_nproviders;
	for (i = 0; i < rf_nproviders; i++) {
		pc = &cfg->providers[i];
		c = &rf_providers[i];
		pc->id = c->id;
		pc->name = c->name;
		pc->def = c;
		if (c->builtin || c->env == NULL) {
			if (load_defaults(pc, c, err, errlen) == -1)
				return -1;
			continue;
		}
		if (load_endpoint(pc, c, f, err, errlen) == -1 ||
		    load_key(pc, c, f, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/* Put the built-in providers where docs/configuration.md wants the mock: last
 * (in catalog order) when RELAYFORGE_MOCK is on, gone when off. */
static void
chain_place_builtins(struct rf_config *cfg)
{
	int i, j = 0;

	for (i = 0; i < cfg->chain_len; i++)
		if (!cfg->providers[cfg->chain[i]].def->builtin)
			cfg->chain[j++] = cfg->chain[i];
	for (i = 0; cfg->mock_on && i < cfg->nproviders; i++)
		if (cfg->providers[i].def->builtin)
			cfg->chain[j++] = i;
	cfg->chain_len = j;
}

/* "groq, sambanova, ..., mock": the ids a chain may name. */
static void
known_ids(char *out, size_t outlen)
{
	size_t used = 0;
	int i, n;

	out[0] = '\0';
	for (i = 0; i < rf_nproviders && used < outlen; i++) {
		n = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "",
		    rf_providers[i].id);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* One trimmed id of the list, appended to the chain. */
static int
chain_add(struct rf_config *cfg, const char *id, char *err, size_t errlen)
{
	int pid = rf_config_pid(id);
	char known[256];

	if (pid < 0) {
		known_ids(known, sizeof(known));
		seterr(err, errlen, "%s: unknown provider id (known: %s)",
		    KEY_CHAIN, known);
		return -1;
	}
	if (rf_config_chain_pos(cfg, pid) >= 0) {
		seterr(err, errlen, "%s: %s is listed more than once", KEY_CHAIN,
		    rf_providers[pid].id);
		return -1;
	}
	cfg->chain[cfg->chain_len++] = pid;
	return 0;
}

/* -1 with a message when the chain came out empty (only the mock named
 * and the mock off), else 0. */
static int
empty_chain(const struct rf_config *cfg, char *err, size_t errlen)
{
	if (cfg->chain_len > 0)
		return 0;
	seterr(err, errlen, "%s: the chain is empty (list at least one "
	    "provider, or turn RELAYFORGE_MOCK on)", KEY_CHAIN);
	return -1;
}

/* Without RELAYFORGE_CHAIN the chain is the whole catalog, in its order. */
static void
default_chain(struct rf_config *cfg)
{
	int i;

	for (i = 0; i < cfg->nproviders; i++)
		cfg->chain[i] = i;
	cfg->chain_len = cfg->nproviders;
	chain_place_builtins(cfg);
}

static int
load_chain(struct rf_config *cfg, const struct file_kv *f, char *err,
    size_t errlen)
{
	const char *v = lookup(f, KEY_CHAIN);
	char *copy, *save = NULL, *tok;
	int rc = -1;

	if (v == NULL) {
		default_chain(cfg);
		return empty_chain(cfg, err, errlen);
	}
	if ((copy = strdup(v)) == NULL) {
		seterr(err, errlen, "%s: out of memory", KEY_CHAIN);
		return -1;
	}
	cfg->chain_len = 0;
	/* Empty items ("groq,,mock", a trailing comma) are skipped. */
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		tok = trim(tok);
		if (*tok != '\0' && chain_add(cfg, tok, err, errlen) == -1)
			goto out;
	}
	if (cfg->chain_len == 0) {
		seterr(err, errlen, "%s: must list at least one provider id",
		    KEY_CHAIN);
		goto out;
	}
	chain_place_builtins(cfg);
	rc = empty_chain(cfg, err, errlen);
out:
	free(copy);
	return rc;
}

/* Rewrite cors_origins as trimmed, non-empty entries joined by ','
 * without trailing slashes (browsers send an Origin without one). */
static int
normalise_origins(struct rf_config *cfg, char *err, size_t errlen)
{
	char *src = cfg->cors_origins, *out, *save = NULL, *tok;
	size_t n = 0, l;

	if ((out = calloc(1, strlen(src) + 1)) == NULL) {
		seterr(err, errlen, "RELAYFORGE_CORS_ORIGINS: out of memory");
		return -1;
	}
	for (tok = strtok_r(src, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		tok = trim(tok);
		l = strlen(tok);
		while (l > 1 && tok[l - 1] == '/')
			tok[--l] = '\0';
		if (l == 0)
			continue;
		if (n > 0)
			out[n++] = ',';
		memcpy(out + n, tok, l);
		n += l;
	}
	out[n] = '\0';
	free(cfg->cors_origins);
	cfg->cors_origins = out;
	return 0;
}

int
rf_config_load(struct rf_config *cfg, char *err, size_t errlen)
{
	struct file_kv f = { NULL, NULL, 0 };

	memset(cfg, 0, sizeof(*cfg));
	seterr(err, errlen, "%s", "");
	if (kv_load(&f, err, errlen) == -1 ||
	    load_table(cfg, &f, err, errlen) == -1 ||
	    spool_default(cfg, err, errlen) == -1 ||
	    node_default(cfg, err, errlen) == -1 ||
	    normalise_origins(cfg, err, errlen) == -1 ||
	    load_providers(cfg, &f, err, errlen) == -1 ||
	    load_chain(cfg, &f, err, errlen) == -1)
		goto fail;
	kv_free(&f);
	return 0;
fail:
	kv_free(&f);
	rf_config_free(cfg);
	return -1;
}

void
rf_config_free(struct rf_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	free(cfg->db_path);
	for (i = 0; i < RF_MAX_PROVIDERS; i++) {
		free(cfg->providers[i].url);
		free(cfg->providers[i].model);
		free_secret(cfg->providers[i].key);
	}
	free(cfg->cors_origins);
	free(cfg->spool_dir);
	free(cfg->node);
	free_secret(cfg->api_token);
	free_secret(cfg->admin_token);
	memset(cfg, 0, sizeof(*cfg));
}

int
rf_config_pid(const char *id)
{
	int i;

	if (id == NULL)
		return -1;
	for (i = 0; i < rf_nproviders; i++)
		if (strcmp(id, rf_providers[i].id) == 0)
			return i;
	return -1;
}

const char *
rf_config_id(int pid)
{
	if (pid < 0 || pid >= rf_nproviders)
		return NULL;
	return rf_providers[pid].id;
}

int
rf_config_chain_pos(const struct rf_config *cfg, int pid)
{
	int i;

	for (i = 0; i < cfg->chain_len; i++)
		if (cfg->chain[i] == pid)
			return i;
	return -1;
}

bool
rf_config_origin_allowed(const struct rf_config *cfg, const char *origin)
{
	const char *p, *e;
	size_t ol;

	if (origin == NULL || *origin == '\0' || cfg->cors_origins == NULL)
		return false;
	ol = strlen(origin);
	for (p = cfg->cors_origins; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		if (e - p == 1 && *p == '*')
			return true;
		if ((size_t)(e - p) == ol && memcmp(p, origin, ol) == 0)
			return true;
	}
	return false;
}
