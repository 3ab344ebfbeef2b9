/*
 * config.h — resortd's settings: one key table (name, parser, default, help) read from a
 * file (`key = value`, # comments), then the environment (RESORTD_KEY), then flags
 * (--key value or --key=value, underscores as dashes). Later sources win.
 *
 * Every error is one line naming the key and where it came from (file and line, variable
 * or flag), so main() can print it and exit with status 2.
 */
#ifndef RSD_CONFIG_H
#define RSD_CONFIG_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "limits_rsd.h"
#include "logger.h"

#define CONFIG_ORIGIN_BYTES_MAX 300
#define CONFIG_KEYS_MAX		48

struct config {
	char listen[300];      /* as given, e.g. "127.0.0.1:8080" or "[::1]:8080" */
	char listen_host[256]; /* parsed from listen */
	int listen_port;
	char data_dir[PATH_MAX];
	int workers;			     /* 0: one per core */
	char node_id[NODE_ID_BYTES_MAX + 1]; /* "": keep the stored one, or make one at init */
	enum logger_level log_level;
	long body_bytes_max;
	int header_deadline_s;
	int idle_timeout_s;
	int conns_max;
	int conns_per_addr_max;
	int map_size_mb;
	int projector_wait_ms;
	int projector_gather_ms;  /* projector.h projector_start */
	int search_cache_entries; /* per worker; 0: searches are never cached */
	int hold_ttl_s;
	char payment_url[512]; /* "" : no external payment service (method http refused) */
	int payment_timeout_ms;
	int payment_attempts;
	int booking_wait_ms;
	/* Sign-in (auth.c, oidc.c) */
	char public_url[512]; /* how clients reach us: issuer of our tokens, redirect URI base */
	int access_ttl_s;
	int refresh_grace_s;
	int session_idle_s;
	int session_max_s;
	int password_iterations;
	char oidc_issuer[512]; /* "" : no single sign-on (local staff logins only) */
	char oidc_client_id[256];
	char oidc_client_secret[256];
	int oidc_private_key_jwt; /* oidc_client_auth: 1 private_key_jwt, 0 client_secret_basic */
	char oidc_ca_file[1024];  /* "" : the system's trust store */
	char oidc_scopes[256];
	char oidc_role_map[1024]; /* "group=role,group=role" */
	int oidc_leeway_s;
	int oidc_probe_s;
	int oidc_recheck_s;
	/* Where each key's value came from, indexed like the key table: for error messages. */
	char origin[CONFIG_KEYS_MAX][CONFIG_ORIGIN_BYTES_MAX];
};

/* Fills c with the embedded defaults (listen 127.0.0.1:8080, data in ./data). */
void config_defaults(struct config *c);

/*
 * Sets key to value; origin says where it came from ("file:line", "environment X", "flag
 * --x"). Returns RSD_OK, or RSD_EINVAL with a one-line message in err.
 */
int config_set(struct config *c, const char *key, const char *value, const char *origin, char *err,
	       size_t errlen);

/*
 * Parses text (len bytes, need not be terminated) as a config file named path.
 * Stops at the first error. Returns RSD_OK or RSD_EINVAL with the message in err.
 */
int config_parse_text(struct config *c, const char *text, size_t len, const char *path, char *err,
		      size_t errlen);

/*
 * The whole load: defaults, then --config FILE (or RESORTD_CONFIG), then RESORTD_* from
 * envp, then the flags in argv[0..argc). Flags named in caller_flags (NULL-terminated list
 * of "--name") are the caller's booleans and are skipped here. Returns RSD_OK or
 * RSD_EINVAL with the message in err.
 */
int config_load(struct config *c, int argc, char **argv, char **envp,
		const char *const *caller_flags, char *err, size_t errlen);

/* Returns where key's value came from ("default" if never set), or "" for an unknown key. */
const char *config_origin(const struct config *c, const char *key);

/* Prints every key with its default and help, for `resortd help`. */
void config_print_help(FILE *out);

#endif
