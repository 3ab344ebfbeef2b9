/*
 * config.c — the key table and the three sources (file, environment, flags).
 *
 * Invariant: a struct config that config_load returned RSD_OK for holds only values its
 * parsers accepted, so the rest of resortd never re-validates them.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rsd.h"
#include "banned.h"

/* A parser checks value and stores it into c; on error it writes why into why. */
typedef bool (*key_parser)(struct config *c, const char *value, char *why, size_t whylen);

struct config_key {
	const char *name;
	key_parser parse;
	const char *default_value;
	const char *help;
};

static bool parse_int_range(const char *value, long min, long max, long *out, char *why,
			    size_t whylen)
{
	char *end;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max) {
		snprintf(why, whylen, "expected an integer from %ld to %ld, got '%s'", min, max,
			 value);
		return false;
	}
	*out = v;
	return true;
}

#define INT_PARSER(fn, field, min, max)                                                            \
	static bool fn(struct config *c, const char *value, char *why, size_t whylen)              \
	{                                                                                          \
		long v;                                                                            \
		if (!parse_int_range(value, (min), (max), &v, why, whylen))                        \
			return false;                                                              \
		c->field = (int)v;                                                                 \
		return true;                                                                       \
	}

INT_PARSER(parse_workers, workers, 0, WORKERS_MAX)
INT_PARSER(parse_header_deadline, header_deadline_s, 1, 3600)
INT_PARSER(parse_idle_timeout, idle_timeout_s, 1, 3600)
/* The per-address table must hold every live address: at most half of its slots. */
INT_PARSER(parse_conns_max, conns_max, 16, CONN_ADDR_SLOTS / 2)
INT_PARSER(parse_conns_per_addr, conns_per_addr_max, 1, 1000000)
INT_PARSER(parse_map_size, map_size_mb, 1, 1024 * 1024)
INT_PARSER(parse_projector_wait, projector_wait_ms, 10, 600000)
INT_PARSER(parse_projector_gather, projector_gather_ms, 0, 1000)
INT_PARSER(parse_search_cache, search_cache_entries, 0, 65536)
INT_PARSER(parse_hold_ttl, hold_ttl_s, 1, 86400)
INT_PARSER(parse_payment_timeout, payment_timeout_ms, 50, 120000)
INT_PARSER(parse_payment_attempts, payment_attempts, 1, 50)
/* Below SHUTDOWN_GRACE_MS, so that a waiting booking is answered before shutdown ends. */
INT_PARSER(parse_booking_wait, booking_wait_ms, 0, SHUTDOWN_GRACE_MS - 1000)

INT_PARSER(parse_access_ttl, access_ttl_s, 30, 3600)
INT_PARSER(parse_refresh_grace, refresh_grace_s, 0, 300)
INT_PARSER(parse_session_idle, session_idle_s, 60, 31536000)
INT_PARSER(parse_session_max, session_max_s, 300, 31536000)
INT_PARSER(parse_password_iterations, password_iterations, 1000, 10000000)
INT_PARSER(parse_oidc_leeway, oidc_leeway_s, 0, 600)
INT_PARSER(parse_oidc_probe, oidc_probe_s, 0, 3600)
INT_PARSER(parse_oidc_recheck, oidc_recheck_s, 0, 86400)

/* A string of printable ASCII without spaces or quotes (URLs, ids, secrets, lists). */
static bool plain_string(const char *value, size_t cap, bool allow_space, char *why, size_t whylen)
{
	size_t n = strlen(value);
	bool ok = n < cap;
	for (size_t i = 0; ok && i < n; i++) {
		unsigned char ch = (unsigned char)value[i];
		ok = ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != '\'';
		ok = ok || (allow_space && ch == ' ');
	}
	if (!ok)
		snprintf(why, whylen, "expected up to %zu printable characters without quotes",
			 cap - 1);
	return ok;
}

#define STRING_PARSER(fn, field, allow_space)                                                      \
	static bool fn(struct config *c, const char *value, char *why, size_t whylen)              \
	{                                                                                          \
		if (!plain_string(value, sizeof(c->field), (allow_space), why, whylen))            \
			return false;                                                              \
		snprintf(c->field, sizeof(c->field), "%s", value);                                 \
		return true;                                                                       \
	}

STRING_PARSER(parse_oidc_client_id, oidc_client_id, false)
STRING_PARSER(parse_oidc_client_secret, oidc_client_secret, false)
STRING_PARSER(parse_oidc_ca_file, oidc_ca_file, false)
STRING_PARSER(parse_oidc_scopes, oidc_scopes, true)
STRING_PARSER(parse_oidc_role_map, oidc_role_map, false)

/* "" or an absolute URL of the given schemes, without a query, fragment or final '/'. */
static bool parse_url(char *dst, size_t cap, const char *value, bool https_only, char *why,
		      size_t whylen)
{
	bool ok = plain_string(value, cap, false, why, whylen);
	size_t n = strlen(value);
	if (ok && n) {
		bool https = strncmp(value, "https://", 8) == 0;
		bool http = strncmp(value, "http://", 7) == 0;
		ok = (https || (http && !https_only)) && value[https ? 8 : 7] != '\0' &&
		     !strpbrk(value, "?#") && value[n - 1] != '/';
		if (!ok)
			snprintf(why, whylen,
				 "expected %s://HOST[:PORT][/PATH] with no final '/', got '%.64s'",
				 https_only ? "https" : "http(s)", value);
	}
	if (ok)
		snprintf(dst, cap, "%s", value);
	return ok;
}

static bool parse_public_url(struct config *c, const char *value, char *why, size_t whylen)
{
	return parse_url(c->public_url, sizeof(c->public_url), value, false, why, whylen);
}

/* The IdP is reached over HTTPS only: the code exchange carries the client secret. */
static bool parse_oidc_issuer(struct config *c, const char *value, char *why, size_t whylen)
{
	return parse_url(c->oidc_issuer, sizeof(c->oidc_issuer), value, true, why, whylen);
}

/* "" or http://HOST:PORT[/PATH]: the payment service is on the resort's network. */
static bool parse_payment_url(struct config *c, const char *value, char *why, size_t whylen)
{
	if (value[0] && (strncmp(value, "http://", 7) != 0 || value[7] == '\0' ||
			 strlen(value) >= sizeof(c->payment_url) || strpbrk(value, " \t\"'"))) {
		snprintf(why, whylen, "expected http://HOST:PORT[/PATH] or nothing, got '%.64s'",
			 value);
		return false;
	}
	snprintf(c->payment_url, sizeof(c->payment_url), "%s", value);
	return true;
}

static bool parse_body_max(struct config *c, const char *value, char *why, size_t whylen)
{
	long v;
	if (!parse_int_range(value, 1024, BODY_BYTES_LIMIT, &v, why, whylen))
		return false;
	c->body_bytes_max = v;
	return true;
}

static bool parse_listen(struct config *c, const char *value, char *why, size_t whylen)
{
	const char *colon;
	size_t hostlen;
	const char *host = value;
	if (value[0] == '[') {
		const char *close = strchr(value, ']');
		if (close == NULL || close[1] != ':')
			goto bad;
		host = value + 1;
		hostlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(value, ':');
		if (colon == NULL)
			goto bad;
		hostlen = (size_t)(colon - value);
	}
	if (hostlen == 0 || hostlen >= sizeof(c->listen_host) || strlen(value) >= sizeof(c->listen))
		goto bad;
	long port;
	if (!parse_int_range(colon + 1, 0, 65535, &port, why, whylen))
		goto bad;
	memcpy(c->listen_host, host, hostlen);
	c->listen_host[hostlen] = '\0';
	c->listen_port = (int)port;
	snprintf(c->listen, sizeof(c->listen), "%s", value);
	return true;
bad:
	snprintf(why, whylen, "expected HOST:PORT (for example 127.0.0.1:8080), got '%s'", value);
	return false;
}

static bool parse_data_dir(struct config *c, const char *value, char *why, size_t whylen)
{
	size_t n = strlen(value);
	if (n == 0 || n >= sizeof(c->data_dir) - 32) {
		snprintf(why, whylen, "expected a directory path of 1 to %zu bytes",
			 sizeof(c->data_dir) - 33);
		return false;
	}
	memcpy(c->data_dir, value, n + 1);
	return true;
}

static bool parse_node_id(struct config *c, const char *value, char *why, size_t whylen)
{
	size_t n = strlen(value);
	bool ok = n <= NODE_ID_BYTES_MAX;
	for (size_t i = 0; ok && i < n; i++) {
		unsigned char ch = (unsigned char)value[i];
		ok = islower(ch) || isdigit(ch) || ch == '-' || ch == '_';
	}
	if (!ok) {
		snprintf(why, whylen,
			 "expected up to %d characters of a-z, 0-9, '-' and '_', got '%s'",
			 NODE_ID_BYTES_MAX, value);
		return false;
	}
	memcpy(c->node_id, value, n + 1);
	return true;
}

static bool parse_log_level(struct config *c, const char *value, char *why, size_t whylen)
{
	if (logger_parse_level(value, &c->log_level) != RSD_OK) {
		snprintf(why, whylen, "expected debug, info, warn or error, got '%s'", value);
		return false;
	}
	return true;
}

static bool parse_oidc_client_auth(struct config *c, const char *value, char *why, size_t whylen)
{
	bool jwt = strcmp(value, "private_key_jwt") == 0;
	if (!jwt && strcmp(value, "client_secret_basic") != 0) {
		snprintf(why, whylen, "expected client_secret_basic or private_key_jwt, got '%s'",
			 value);
		return false;
	}
	c->oidc_private_key_jwt = jwt;
	return true;
}

static const struct config_key keys[] = {
	{"listen", parse_listen, "127.0.0.1:8080", "address and port to serve HTTP on"},
	{"data_dir", parse_data_dir, "./data", "directory of the LMDB state and catalog.db"},
	{"workers", parse_workers, "0", "HTTP worker threads; 0 means one per core"},
	{"node_id", parse_node_id, "", "this node's id in the event log; empty: generated once"},
	{"log_level", parse_log_level, "info", "debug, info, warn or error"},
	{"body_bytes_max", parse_body_max, "1048576", "largest request body accepted"},
	{"header_deadline_s", parse_header_deadline, "10",
	 "seconds a client has to send a whole request"},
	{"idle_timeout_s", parse_idle_timeout, "30", "seconds a connection may stay silent"},
	{"conns_max", parse_conns_max, "8192", "open connections in all"},
	{"conns_per_addr_max", parse_conns_per_addr, "256", "open connections per client address"},
	{"map_size_mb", parse_map_size, "1024", "LMDB map size; writes past it answer 503"},
	{"projector_wait_ms", parse_projector_wait, "5000",
	 "how long a write waits to become readable before answering 202"},
	{"projector_gather_ms", parse_projector_gather, "25",
	 "under load, how long the read model lets commits gather between batches; 0: never"},
	{"search_cache_entries", parse_search_cache, "256",
	 "search pages each worker keeps until the catalog changes; 0: none"},
	{"hold_ttl_s", parse_hold_ttl, "600", "seconds a hold keeps its units before it expires"},
	{"payment_url", parse_payment_url, "",
	 "base URL of the payment service for payment method http; empty: desk only"},
	{"payment_timeout_ms", parse_payment_timeout, "3000",
	 "how long one call to the payment service may take"},
	{"payment_attempts", parse_payment_attempts, "4",
	 "calls of an authorize before the booking fails and is voided"},
	{"booking_wait_ms", parse_booking_wait, "5000",
	 "how long POST /v1/bookings waits for the payment before answering 202"},
	{"public_url", parse_public_url, "",
	 "how clients reach this server (https://desk.example); empty: http://LISTEN"},
	{"access_ttl_s", parse_access_ttl, "300", "lifetime of the access tokens resortd signs"},
	{"refresh_grace_s", parse_refresh_grace, "30",
	 "seconds a used refresh token still returns the same new pair"},
	{"session_idle_s", parse_session_idle, "86400",
	 "a session ends after this long without a refresh"},
	{"session_max_s", parse_session_max, "2592000", "a session ends this long after login"},
	{"password_iterations", parse_password_iterations, "600000",
	 "PBKDF2-SHA256 iterations for new local staff passwords"},
	{"oidc_issuer", parse_oidc_issuer, "",
	 "the group IdP's issuer URL (https); empty: local staff sign-in only"},
	{"oidc_client_id", parse_oidc_client_id, "", "resortd's client id at the IdP"},
	{"oidc_client_secret", parse_oidc_client_secret, "",
	 "resortd's client secret at the IdP (better in RESORTD_OIDC_CLIENT_SECRET)"},
	{"oidc_client_auth", parse_oidc_client_auth, "client_secret_basic",
	 "how resortd proves itself at the IdP's token endpoint"},
	{"oidc_ca_file", parse_oidc_ca_file, "",
	 "PEM file of CAs trusted for the IdP; empty: the system's"},
	{"oidc_scopes", parse_oidc_scopes, "openid profile email", "scopes asked of the IdP"},
	{"oidc_role_map", parse_oidc_role_map, "",
	 "IdP group to role: group=role,... (staff, manager, admin); others are guests"},
	{"oidc_leeway_s", parse_oidc_leeway, "60", "clock skew allowed on IdP token times"},
	{"oidc_probe_s", parse_oidc_probe, "30", "how often the IdP is probed (0: never)"},
	{"oidc_recheck_s", parse_oidc_recheck, "900",
	 "how often each SSO session's sign-in is checked again with the IdP (0: never)"},
};
#define KEYS_COUNT (sizeof(keys) / sizeof(keys[0]))
_Static_assert(KEYS_COUNT <= CONFIG_KEYS_MAX, "raise CONFIG_KEYS_MAX");

static int key_index(const char *name)
{
	for (size_t i = 0; i < KEYS_COUNT; i++)
		if (strcmp(keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < KEYS_COUNT; i++) {
		char why[256];
		bool ok = keys[i].parse(c, keys[i].default_value, why, sizeof(why));
		RSD_ASSERT(ok);
		snprintf(c->origin[i], sizeof(c->origin[i]), "default");
	}
}

int config_set(struct config *c, const char *key, const char *value, const char *origin, char *err,
	       size_t errlen)
{
	int i = key_index(key);
	if (i < 0) {
		snprintf(err, errlen, "%s: unknown key '%s'", origin, key);
		return RSD_EINVAL;
	}
	char why[512];
	if (!keys[i].parse(c, value, why, sizeof(why))) {
		snprintf(err, errlen, "%s: key '%s': %s", origin, key, why);
		return RSD_EINVAL;
	}
	snprintf(c->origin[i], sizeof(c->origin[i]), "%s", origin);
	return RSD_OK;
}

const char *config_origin(const struct config *c, const char *key)
{
	int i = key_index(key);
	return i < 0 ? "" : c->origin[i];
}

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static const char *trim_end(const char *start, const char *end)
{
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	return end;
}

/* Parses one line [p, end); writes key and value on success. */
static int parse_line(const char *p, const char *end, char *key, size_t keylen, char *value,
		      size_t valuelen, char *why, size_t whylen)
{
	const char *k = p;
	while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
		p++;
	size_t kn = (size_t)(p - k);
	if (kn == 0 || kn >= keylen) {
		snprintf(why, whylen, "expected 'key = value'");
		return RSD_EINVAL;
	}
	memcpy(key, k, kn);
	key[kn] = '\0';
	p = skip_space(p, end);
	if (p == end || *p != '=') {
		snprintf(why, whylen, "key '%s': expected '=' after the key", key);
		return RSD_EINVAL;
	}
	p = skip_space(p + 1, end);
	const char *v = p, *vend;
	if (p < end && *p == '"') {
		v = ++p;
		while (p < end && *p != '"')
			p++;
		if (p == end) {
			snprintf(why, whylen, "key '%s': unterminated quoted value", key);
			return RSD_EINVAL;
		}
		vend = p++;
		p = skip_space(p, end);
		if (p < end && *p != '#') {
			snprintf(why, whylen, "key '%s': text after the quoted value", key);
			return RSD_EINVAL;
		}
	} else {
		/* An unquoted value ends at a " #" comment. */
		vend = v;
		while (vend < end &&
		       !(*vend == '#' && (vend == v || vend[-1] == ' ' || vend[-1] == '\t')))
			vend++;
		vend = trim_end(v, vend);
	}
	size_t vn = (size_t)(vend - v);
	if (vn >= valuelen || memchr(v, '\0', vn) != NULL) {
		snprintf(why, whylen, "key '%s': value too long or not text", key);
		return RSD_EINVAL;
	}
	memcpy(value, v, vn);
	value[vn] = '\0';
	return RSD_OK;
}

int config_parse_text(struct config *c, const char *text, size_t len, const char *path, char *err,
		      size_t errlen)
{
	const char *p = text, *end = text + len;
	for (int lineno = 1; p < end; lineno++) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		char origin[CONFIG_ORIGIN_BYTES_MAX];
		snprintf(origin, sizeof(origin), "%.*s:%d", 250, path, lineno);
		if (eol - p >= CONFIG_LINE_BYTES_MAX) {
			snprintf(err, errlen, "%s: line longer than %d bytes", origin,
				 CONFIG_LINE_BYTES_MAX);
			return RSD_EINVAL;
		}
		const char *s = skip_space(p, eol);
		const char *e = trim_end(s, eol);
		if (s < e && *s != '#') {
			char key[64], value[CONFIG_LINE_BYTES_MAX], why[512];
			if (parse_line(s, e, key, sizeof(key), value, sizeof(value), why,
				       sizeof(why)) != RSD_OK) {
				snprintf(err, errlen, "%s: %s", origin, why);
				return RSD_EINVAL;
			}
			if (config_set(c, key, value, origin, err, errlen) != RSD_OK)
				return RSD_EINVAL;
		}
		p = eol < end ? eol + 1 : end;
	}
	return RSD_OK;
}

static int load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot read config file: %s", path, strerror(errno));
		return RSD_EINVAL;
	}
	char *buf = rsd_malloc(CONFIG_FILE_BYTES_MAX + 1);
	size_t n = fread(buf, 1, CONFIG_FILE_BYTES_MAX + 1, f);
	int bad_read = ferror(f);
	fclose(f);
	int rc;
	if (bad_read) {
		snprintf(err, errlen, "%s: cannot read config file", path);
		rc = RSD_EINVAL;
	} else if (n > CONFIG_FILE_BYTES_MAX) {
		snprintf(err, errlen, "%s: config file larger than %d bytes", path,
			 CONFIG_FILE_BYTES_MAX);
		rc = RSD_EINVAL;
	} else {
		rc = config_parse_text(c, buf, n, path, err, errlen);
	}
	free(buf);
	return rc;
}

/* Turns "RESORTD_DATA_DIR" into "data_dir"; false if name is not ours. */
static bool env_key(const char *name, size_t namelen, char *key, size_t keylen)
{
	static const char prefix[] = "RESORTD_";
	if (namelen <= sizeof(prefix) - 1 || strncmp(name, prefix, sizeof(prefix) - 1) != 0)
		return false;
	size_t n = namelen - (sizeof(prefix) - 1);
	if (n >= keylen)
		n = keylen - 1;
	for (size_t i = 0; i < n; i++)
		key[i] = (char)tolower((unsigned char)name[sizeof(prefix) - 1 + i]);
	key[n] = '\0';
	return true;
}

static int apply_env(struct config *c, char **envp, char *err, size_t errlen)
{
	for (char **e = envp; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		char key[64];
		if (eq == NULL || !env_key(*e, (size_t)(eq - *e), key, sizeof(key)))
			continue;
		if (strcmp(key, "config") == 0)
			continue;
		char origin[CONFIG_ORIGIN_BYTES_MAX];
		int namelen = eq - *e > 200 ? 200 : (int)(eq - *e);
		snprintf(origin, sizeof(origin), "environment %.*s", namelen, *e);
		if (config_set(c, key, eq + 1, origin, err, errlen) != RSD_OK)
			return RSD_EINVAL;
	}
	return RSD_OK;
}

static bool is_caller_flag(const char *arg, const char *const *caller_flags)
{
	for (const char *const *f = caller_flags; f && *f; f++)
		if (strcmp(arg, *f) == 0)
			return true;
	return false;
}

/* Splits "--data-dir=x" or "--data-dir x" into key "data_dir" and its value. */
static int flag_split(int argc, char **argv, int *i, char *key, size_t keylen, const char **value,
		      char *err, size_t errlen)
{
	const char *arg = argv[*i];
	if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
		snprintf(err, errlen, "unexpected argument '%s'", arg);
		return RSD_EINVAL;
	}
	const char *name = arg + 2;
	const char *eq = strchr(name, '=');
	size_t n = eq ? (size_t)(eq - name) : strlen(name);
	if (n >= keylen) {
		snprintf(err, errlen, "flag %s: unknown flag", arg);
		return RSD_EINVAL;
	}
	for (size_t k = 0; k < n; k++)
		key[k] = name[k] == '-' ? '_' : name[k];
	key[n] = '\0';
	if (eq) {
		*value = eq + 1;
	} else if (*i + 1 < argc) {
		*value = argv[++*i];
	} else {
		snprintf(err, errlen, "flag --%.*s: missing value", (int)n, name);
		return RSD_EINVAL;
	}
	return RSD_OK;
}

int config_load(struct config *c, int argc, char **argv, char **envp,
		const char *const *caller_flags, char *err, size_t errlen)
{
	config_defaults(c);
	const char *path = NULL;
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, "RESORTD_CONFIG=", 15) == 0)
			path = *e + 15;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
	}
	if (path && load_file(c, path, err, errlen) != RSD_OK)
		return RSD_EINVAL;
	if (apply_env(c, envp, err, errlen) != RSD_OK)
		return RSD_EINVAL;
	for (int i = 0; i < argc; i++) {
		if (is_caller_flag(argv[i], caller_flags))
			continue;
		char key[64];
		const char *value;
		if (flag_split(argc, argv, &i, key, sizeof(key), &value, err, errlen) != RSD_OK)
			return RSD_EINVAL;
		if (strcmp(key, "config") == 0)
			continue;
		char origin[CONFIG_ORIGIN_BYTES_MAX];
		snprintf(origin, sizeof(origin), "flag --%s", key);
		for (char *o = origin + 7; *o; o++)
			if (*o == '_')
				*o = '-';
		if (config_set(c, key, value, origin, err, errlen) != RSD_OK)
			return RSD_EINVAL;
	}
	return RSD_OK;
}

void config_print_help(FILE *out)
{
	fprintf(out,
		"Configuration keys (file `key = value`, environment RESORTD_KEY, flag --key):\n");
	for (size_t i = 0; i < KEYS_COUNT; i++) {
		char flag[64];
		snprintf(flag, sizeof(flag), "%s", keys[i].name);
		for (char *p = flag; *p; p++)
			if (*p == '_')
				*p = '-';
		fprintf(out, "  --%-22s %s (default \"%s\")\n", flag, keys[i].help,
			keys[i].default_value);
	}
}
