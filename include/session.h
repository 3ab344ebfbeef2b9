/*
 * session.h — who is signed in: sessions, refresh-token families and local staff
 * credentials, all in LMDB so that every check is a local read.
 *
 * A session is created by a login (OpenID Connect or a local staff password) and named by
 * a random id (`sid`) that every access token carries; revoking it (logout, an admin, a
 * reused refresh token) takes effect at the next request, because every authenticated
 * request reads it. A session's refresh tokens form its family: each is stored as its
 * SHA-256 only, used once, and replaced by its successor in one writer command (the
 * writer's single thread makes the state check and the swap one compare-and-swap).
 *
 * Records (store.h): sessions 's' sid -> struct session_hdr (with the mark of its role and
 * resort, session_principal_mark) then JSON {sub, name, resort, via}; sessions 'u' sub NUL
 * sid -> "" (a user's sessions, for "log out everywhere"); sessions 'i' sid -> when the IdP
 * was last asked (be64 ms) then the IdP's refresh token (SSO sessions, idp_recheck.h; gone
 * with the session); refresh hash -> JSON {sid, gen, used_ms, access}; users name -> JSON
 * user record.
 */
#ifndef RSD_SESSION_H
#define RSD_SESSION_H

#include <cjson/cJSON.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "limits_rsd.h"
#include "rsd.h"
#include "store.h"
#include "writer.h"

/* Roles, each including the ones below it; a route names the least it needs. */
enum role { ROLE_PUBLIC = 0, ROLE_GUEST, ROLE_STAFF, ROLE_MANAGER, ROLE_ADMIN };

/* "guest", "staff", "manager", "admin" ("public" for ROLE_PUBLIC). */
const char *session_role_name(enum role r);
/* The role named name; ROLE_PUBLIC when it names none. */
enum role session_role_parse(const char *name);

#define SESSION_ID_BYTES    22 /* base64url of 16 random bytes */
#define SESSION_TOKEN_BYTES 43 /* base64url of 32 random bytes */

/* Who a request acts for. sub is the idempotency namespace and the owner of holds,
 * bookings and reviews: "staff:NAME" for local staff, "u_..." for IdP users. */
struct principal {
	char sub[PRINCIPAL_BYTES_MAX + 1];
	char sid[SESSION_ID_BYTES + 1];
	enum role role;
	char resort[ENTITY_ID_BYTES_MAX + 1]; /* "" : not tied to one resort */
	char name[USER_DISPLAY_BYTES_MAX + 1];
};

/* The lifetimes a check applies (from the config, so a change applies at once). */
struct session_limits {
	uint64_t idle_ms;  /* since the last login or refresh */
	uint64_t max_ms;   /* since the login */
	uint64_t grace_ms; /* a used refresh token still answers with its successor */
};

/* Fills out with a fresh random session id or token (SESSION_*_BYTES + 1). */
void session_new_id(char out[SESSION_ID_BYTES + 1]);
void session_new_token(char out[SESSION_TOKEN_BYTES + 1]);
/* A non-zero digest of who's role and resort: an access token made for who still speaks for
 * the session while the session's mark is the same (the IdP can change both, idp_recheck.h). */
uint32_t session_principal_mark(const struct principal *who);
/* SHA-256 of text, the form in which refresh tokens and cookie secrets are stored. */
void session_hash(const char *text, unsigned char out[32]);

/*
 * Checks that session sid is live at now_ms: it exists, is not revoked, and neither its
 * idle nor its absolute lifetime has run out. When cookie_secret is not NULL, it must be
 * the session's cookie secret. When who is not NULL it is filled from the session. When
 * times is not NULL it is filled too (a caller may reuse the verdict before until_ms while
 * nothing is committed). Errors: RSD_EAUTH with f saying why, RSD_EIO.
 */
struct session_times {
	uint64_t until_ms; /* when the session runs out of time (idle or absolute) */
	uint64_t last_ms;  /* its login, last refresh or last touch: idle time counts from here */
	uint32_t mark;	   /* session_principal_mark of its role and resort now; 0: unknown */
};
int session_check(MDB_txn *txn, struct store *s, const char *sid, const char *cookie_secret,
		  const struct session_limits *lim, uint64_t now_ms, struct principal *who,
		  struct session_times *times, struct rsd_fail *f);

/* The session that refresh token hash belongs to (a read, before signing the next access
 * token). Errors: RSD_EAUTH (unknown token or dead session), RSD_EIO. */
int session_of_refresh(MDB_txn *txn, struct store *s, const unsigned char hash[32],
		       const struct session_limits *lim, uint64_t now_ms, struct principal *who,
		       struct rsd_fail *f);

/*
 * SSO sessions whose IdP sign-in is due a check (idp_recheck.h): live sessions with an IdP
 * refresh token last asked about every_ms or more before now_ms, and those that ran out of
 * time (ended: their IdP part can go). Walks round from the session after `after` (a sid,
 * or NULL: from the first). Fills up to max of out; returns how many, or -1 when the store
 * cannot be read.
 */
struct session_idp_check {
	struct principal who; /* as the session has it now (ended: only who.sid) */
	bool ended;
	char token[IDP_REFRESH_TOKEN_BYTES_MAX + 1];
};
int session_idp_due(MDB_txn *txn, struct store *s, const struct session_limits *lim,
		    uint64_t now_ms, uint64_t every_ms, const char *after,
		    struct session_idp_check *out, int max);

/* --- local staff --- */

struct user_rec {
	char name[USER_NAME_BYTES_MAX + 1];
	enum role role;
	char resort[ENTITY_ID_BYTES_MAX + 1];
	bool disabled;
	char hash[PASSWORD_HASH_BYTES_MAX + 1];
	uint64_t created_ms, changed_ms;
};

/* True when name is 1..USER_NAME_BYTES_MAX of [a-z0-9._-], starting with a letter/digit. */
bool session_user_name_ok(const char *name);
/* Reads user name. Errors: RSD_ENOTFOUND, RSD_EIO. */
int session_user_get(MDB_txn *txn, struct store *s, const char *name, struct user_rec *out);

/* --- commands (writer thread) --- */

enum session_op {
	SESSION_LOGIN,	      /* create who's session with its first refresh token */
	SESSION_REFRESH,      /* rotate a refresh token */
	SESSION_LOGOUT,	      /* the session who.sid, or every session of who.sub */
	SESSION_REVOKE,	      /* the same, by an admin (by names the admin) */
	SESSION_LOGIN_FAILED, /* audit only */
	SESSION_USER_ADD,     /* a new local user (fails when the name is taken) */
	SESSION_USER_UPDATE,  /* change fields of a local user (user_set); revokes its sessions */
	SESSION_TOUCH,	      /* who.sid was used at now_ms: its idle time counts from then */
	SESSION_IDP_CHECKED,  /* the IdP confirmed who.sid (idp_recheck.h); profile: new claims */
};

struct session_cmd {
	struct command cmd; /* first: the writer hands back this pointer */
	enum session_op op;
	uint64_t now_ms;
	struct session_limits lim; /* LOGIN, REFRESH: the config's (auth_limits) */
	struct principal who;
	char via[16];			    /* LOGIN: "password" or "oidc" */
	char ip[64];			    /* the client address, for the audit trail */
	char by[PRINCIPAL_BYTES_MAX + 1];   /* REVOKE: the admin */
	char user[USER_NAME_BYTES_MAX + 1]; /* LOGIN via password / LOGIN_FAILED: name */
	char reason[64];		    /* LOGIN_FAILED */
	bool all;			    /* LOGOUT/REVOKE: every session of who.sub */
	unsigned char token_hash[32];	    /* LOGIN: first refresh; REFRESH: presented */
	unsigned char next_hash[32];	    /* REFRESH: the successor's hash */
	unsigned char cookie_hash[32];	    /* LOGIN: the browser cookie's secret */
	char *access;			    /* LOGIN/REFRESH: signed access token (owned) */
	cJSON *profile;			    /* LOGIN: profile event data or NULL (owned) */
	char *idp_token; /* LOGIN via oidc, IDP_CHECKED: the IdP's refresh token or NULL (owned) */
	bool idp_forget; /* IDP_CHECKED: drop the IdP's part, the session is no longer checked */
	struct user_rec rec; /* USER_ADD/UPDATE; after UPDATE, the record written */
	unsigned user_set;   /* USER_UPDATE: which of rec's fields (USER_SET_*) */
	/* Outputs: */
	bool reuse;	   /* REFRESH: an already used token: the family is now revoked */
	bool replayed;	   /* REFRESH: within the grace period; access_out is the first answer */
	char *access_out;  /* REFRESH replayed: owned */
	int revoked_count; /* LOGOUT/REVOKE/USER_UPDATE */
};

/* The fields a SESSION_USER_UPDATE takes from rec; the others stay as stored, read in the
 * writer's transaction, so two updates at once never undo each other. */
enum {
	USER_SET_PASSWORD = 1, /* hash, and enabled again */
	USER_SET_DISABLED = 2,
	USER_SET_ROLE = 4,
	USER_SET_RESORT = 8,
};

/* Prepares sc for op (zeroes it, sets apply); the caller fills the inputs, then submits
 * &sc->cmd (setting cmd.done) and releases it with session_cmd_release. */
void session_cmd_init(struct session_cmd *sc, enum session_op op, uint64_t now_ms);

/* The sweeper's part (writer thread): removes a session (kind EXPIRY_SESSION, id its sid)
 * with its per-user index entry, or a refresh record (EXPIRY_REFRESH, id its hash), when
 * its expiry entry comes due. A record already gone is fine. Errors: RSD_EIO. */
int session_expire(MDB_txn *txn, struct store *s, uint8_t kind, const void *id, size_t len);
void session_cmd_release(struct session_cmd *sc);

#endif
