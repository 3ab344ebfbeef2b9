/*
 * cli_auth.c — managing local staff and signing keys from the command line.
 */
#include "cli_auth.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "jose.h"
#include "password.h"
#include "session.h"
#include "store.h"
#include "writer.h"
#include "banned.h"

#define EXIT_USAGE 2

/* Opens the store and a writer over it. */
static int open_rw(const struct config *c, struct store *s, struct writer **w)
{
	struct rsd_fail f = {0};
	if (store_open(s, c->data_dir, (uint64_t)c->map_size_mb * 1024 * 1024, c->node_id, &f)) {
		fprintf(stderr, "resortd: %s\n", f.detail);
		return 1;
	}
	if (writer_start(w, s, NULL, NULL) != RSD_OK) {
		fprintf(stderr, "resortd: cannot read the event log\n");
		store_close(s);
		return 1;
	}
	return 0;
}

static void close_rw(struct store *s, struct writer *w)
{
	writer_free(w);
	store_close(s);
}

/* Reads one line of standard input (the password), without its line end. */
static bool read_password(char *out, size_t cap)
{
	if (fgets(out, (int)cap, stdin) == NULL)
		return false;
	size_t n = strcspn(out, "\r\n");
	bool whole = out[n] != '\0' || feof(stdin);
	out[n] = '\0';
	return whole;
}

static int hash_from_stdin(const struct config *c, char *hash, size_t cap)
{
	char pw[PASSWORD_BYTES_MAX + 2];
	struct rsd_fail f = {0};
	int rc = 0;
	if (!read_password(pw, sizeof(pw))) {
		fprintf(stderr, "resortd: user: cannot read a password line from standard input\n");
		rc = EXIT_USAGE;
	} else if (password_acceptable(pw, &f) != RSD_OK) {
		fprintf(stderr, "resortd: user: %s\n", f.detail);
		rc = EXIT_USAGE;
	} else if (password_hash(pw, c->password_iterations, hash, cap) != RSD_OK) {
		fprintf(stderr, "resortd: user: cannot hash the password\n");
		rc = 1;
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	return rc;
}

/* Checks --role, --resort and --all-resorts (add, role) and sets rec's role and resort
 * (none given: empty, the whole group). */
static int role_from_opts(const char *verb, const struct cli_user_opts *o, struct user_rec *rec)
{
	rec->role = session_role_parse(o->role);
	if (rec->role < ROLE_STAFF) {
		fprintf(stderr, "resortd: user %s: --role must be staff, manager or admin\n", verb);
		return EXIT_USAGE;
	}
	if (o->resort && (strlen(o->resort) == 0 || strlen(o->resort) > ENTITY_ID_BYTES_MAX)) {
		fprintf(stderr, "resortd: user %s: --resort must be a resort id\n", verb);
		return EXIT_USAGE;
	}
	if (o->all_resorts && o->resort) {
		fprintf(stderr, "resortd: user %s: --all-resorts or --resort, not both\n", verb);
		return EXIT_USAGE;
	}
	snprintf(rec->resort, sizeof(rec->resort), "%s", o->resort ? o->resort : "");
	return 0;
}

/* Fills the fields the command writes (*set for an update: the writer merges them into the
 * stored record in its own transaction, so a concurrent passwd is never undone). */
static int user_record(const struct config *c, const char *verb, const char *name,
		       const struct cli_user_opts *o, struct user_rec *rec, unsigned *set)
{
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	int rc;
	if (strcmp(verb, "disable") == 0) {
		rec->disabled = true;
		*set = USER_SET_DISABLED;
		return 0;
	}
	if (strcmp(verb, "role") == 0) { /* the resort only when one is named */
		*set = USER_SET_ROLE | (o->resort || o->all_resorts ? USER_SET_RESORT : 0u);
		return role_from_opts(verb, o, rec);
	}
	if (strcmp(verb, "add") == 0 && (rc = role_from_opts(verb, o, rec)))
		return rc;
	*set = USER_SET_PASSWORD;
	return hash_from_stdin(c, rec->hash, sizeof(rec->hash));
}

int cli_auth_user(const struct config *c, int argc, char **argv, const struct cli_user_opts *o)
{
	const char *verb = argc > 0 ? argv[0] : "";
	bool add = strcmp(verb, "add") == 0, passwd = strcmp(verb, "passwd") == 0;
	bool role = strcmp(verb, "role") == 0;
	if ((!add && !passwd && !role && strcmp(verb, "disable") != 0) || argc < 2) {
		fprintf(stderr,
			"resortd: usage: resortd user add NAME --role ROLE [--resort ID] "
			"--password-stdin | passwd NAME --password-stdin | role NAME --role "
			"ROLE [--resort ID | --all-resorts] | disable NAME\n");
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!session_user_name_ok(name)) {
		fprintf(stderr, "resortd: user: a name is 1 to %d of a-z, 0-9, '.', '_', '-'\n",
			USER_NAME_BYTES_MAX);
		return EXIT_USAGE;
	}
	if (o->all_resorts && !role) {
		fprintf(stderr, "resortd: user %s: --all-resorts is for user role\n", verb);
		return EXIT_USAGE;
	}
	if ((add || passwd) && !o->password_stdin) {
		fprintf(stderr,
			"resortd: user %s: give the password on standard input with "
			"--password-stdin\n",
			verb);
		return EXIT_USAGE;
	}
	struct store s;
	struct writer *w;
	if (open_rw(c, &s, &w))
		return 1;
	struct session_cmd sc;
	session_cmd_init(&sc, add ? SESSION_USER_ADD : SESSION_USER_UPDATE, rsd_now_ms());
	int rc = user_record(c, verb, name, o, &sc.rec, &sc.user_set);
	if (rc == 0) {
		int err = writer_run(w, &sc.cmd);
		if (err) {
			fprintf(stderr, "resortd: user %s: %s\n", verb,
				sc.cmd.fail.detail[0] ? sc.cmd.fail.detail : rsd_strerror(err));
			rc = 1;
		} else {
			printf("user %s: %s (%s%s%s)%s\n", name,
			       add	? "added"
			       : passwd ? "password set"
			       : role	? "role set"
					: "disabled",
			       session_role_name(sc.rec.role), sc.rec.resort[0] ? ", resort " : "",
			       sc.rec.resort, sc.revoked_count ? ", sessions revoked" : "");
		}
	}
	OPENSSL_cleanse(sc.rec.hash, sizeof(sc.rec.hash));
	session_cmd_release(&sc);
	close_rw(&s, w);
	return rc;
}

int cli_auth_keys(const struct config *c, int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "rotate") != 0) {
		fprintf(stderr, "resortd: usage: resortd keys rotate\n");
		return EXIT_USAGE;
	}
	struct store s;
	struct writer *w;
	if (open_rw(c, &s, &w))
		return 1;
	char kid[JOSE_KID_BYTES_MAX + 1];
	int err = auth_keys_rotate(w, rsd_now_ms(), kid);
	close_rw(&s, w);
	if (err) {
		fprintf(stderr, "resortd: keys rotate: %s\n", rsd_strerror(err));
		return 1;
	}
	printf("keys: new signing key %s; the previous one verifies for %d s more\n", kid,
	       KEY_RETIRED_KEEP_S);
	return 0;
}
