/*
 * Unit tests for auth.c's bearer path against a real LMDB in a temporary directory: an
 * access token signed by auth_sign_access for a session made through the writer, then
 * auth_bearer as a worker calls it. What is tested is the per-worker cache: a token is
 * verified once, and its session's verdict is reused only while nothing is committed and
 * the session has time left, so a revocation applies to the very next request, a session
 * still runs out of time while the cache holds it, even when the request lands inside the
 * revoking commit (a pwrite stand-in holds LMDB's meta page write open).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "jose.h"
#include "session.h"
#include "store.h"
#include "testutil.h"
#include "writer.h"

struct fixture {
	char dir[64];
	struct config config;
	struct store store;
	struct writer *writer;
	struct auth *auth;
	struct auth_cache *cache;
	struct store_reader reader;
	struct session_limits lim;
	uint64_t t0; /* ms: the login of every test */
};

/*
 * LMDB writes a commit's meta page with pwrite, and only afterwards lets new readers see
 * the commit. This pwrite (it takes the place of libc's for the whole test binary) holds a
 * meta page write open for a while when asked, so a test can act inside that gap.
 */
static _Atomic int hold_meta;	  /* 1: hold the next meta page write */
static _Atomic int meta_holding;  /* set while it is held */
static _Atomic int meta_released; /* set by the test to let it go */

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (real == NULL)
		real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	ssize_t r = real(fd, buf, n, off);
	int one = 1;
	/* The two meta pages are LMDB's pages 0 and 1, of the OS page size. */
	if (off < 2 * sysconf(_SC_PAGESIZE) &&
	    atomic_compare_exchange_strong(&hold_meta, &one, 0)) {
		atomic_store(&meta_holding, 1);
		while (!atomic_load(&meta_released))
			usleep(1000);
	}
	return r;
}

static int open_fixture(void **state, const char *public_url)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	tmpdir_make(fx->dir, sizeof(fx->dir));
	config_defaults(&fx->config);
	char why[256];
	struct rsd_fail f;
	if (config_set(&fx->config, "public_url", public_url, "test", why, sizeof(why)) ||
	    store_open(&fx->store, fx->dir, 64u << 20, "w1", &f) != RSD_OK ||
	    writer_start(&fx->writer, &fx->store, NULL, NULL) != RSD_OK ||
	    auth_open(&fx->auth, &fx->config, &fx->store, fx->writer, &f) != RSD_OK)
		return -1;
	auth_limits(fx->auth, &fx->lim);
	fx->cache = auth_cache_new();
	fx->reader.store = &fx->store;
	fx->t0 = rsd_now_ms();
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return open_fixture(state, "https://resort.example");
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	store_reader_close(&fx->reader);
	auth_cache_free(fx->cache);
	auth_free(fx->auth);
	writer_free(fx->writer);
	store_close(&fx->store);
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

/* The browser cookie of the last login(): "SID.SECRET". */
static char last_cookie[SESSION_ID_BYTES + 1 + SESSION_TOKEN_BYTES + 1];

/* Logs sub in through the writer at now_ms and signs its access token (caller frees). */
static char *login(struct fixture *fx, const char *sub, uint64_t now_ms, struct principal *who)
{
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_LOGIN, now_ms);
	sc.lim = fx->lim;
	snprintf(sc.who.sub, sizeof(sc.who.sub), "%s", sub);
	session_new_id(sc.who.sid);
	sc.who.role = ROLE_STAFF;
	snprintf(sc.who.resort, sizeof(sc.who.resort), "%s", "rs_alpine");
	snprintf(sc.who.name, sizeof(sc.who.name), "Name of %s", sub);
	snprintf(sc.via, sizeof(sc.via), "%s", "oidc");
	char token[SESSION_TOKEN_BYTES + 1], cookie[SESSION_TOKEN_BYTES + 1];
	session_new_token(token);
	session_new_token(cookie);
	session_hash(token, sc.token_hash);
	session_hash(cookie, sc.cookie_hash);
	sc.access = strdup("access-login");
	assert_int_equal(writer_run(fx->writer, &sc.cmd), RSD_OK);
	*who = sc.who;
	snprintf(last_cookie, sizeof(last_cookie), "%s.%s", sc.who.sid, cookie);
	session_cmd_release(&sc);
	char *access = NULL;
	assert_int_equal(auth_sign_access(fx->auth, who, now_ms, &access), RSD_OK);
	return access;
}

static int bearer(struct fixture *fx, const char *token, uint64_t now_ms, struct principal *out)
{
	struct rsd_fail f;
	memset(&f, 0, sizeof(f));
	memset(out, 0, sizeof(*out));
	int err = auth_bearer(fx->auth, fx->cache, &fx->reader, token, now_ms, out, &f);
	if (err)
		assert_true(f.detail[0] != '\0');
	return err;
}

static void logout(struct fixture *fx, const struct principal *who)
{
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_LOGOUT, rsd_now_ms());
	snprintf(sc.who.sub, sizeof(sc.who.sub), "%s", who->sub);
	snprintf(sc.who.sid, sizeof(sc.who.sid), "%s", who->sid);
	assert_int_equal(writer_run(fx->writer, &sc.cmd), RSD_OK);
	assert_int_equal(sc.revoked_count, 1);
	session_cmd_release(&sc);
}

struct submitted {
	struct session_cmd sc;
	_Atomic int done;
};

static void submitted_done(struct command *cmd)
{
	atomic_store(&((struct submitted *)cmd->arg)->done, 1);
}

/* A request arriving while a logout's commit is half made (its meta page written, the
 * commit not yet visible to new readers) must not let the session outlive the logout. */
static void test_a_logout_caught_mid_commit_still_applies(void **state)
{
	struct fixture *fx = *state;
	struct principal who, got;
	char *token = login(fx, "staff:ivan", fx->t0, &who);
	uint64_t now = fx->t0 + 1000;
	assert_int_equal(bearer(fx, token, now, &got), RSD_OK);

	struct submitted *lo = calloc(1, sizeof(*lo));
	session_cmd_init(&lo->sc, SESSION_LOGOUT, rsd_now_ms());
	snprintf(lo->sc.who.sub, sizeof(lo->sc.who.sub), "%s", who.sub);
	snprintf(lo->sc.who.sid, sizeof(lo->sc.who.sid), "%s", who.sid);
	lo->sc.cmd.arg = lo;
	lo->sc.cmd.done = submitted_done;
	atomic_store(&meta_released, 0);
	atomic_store(&hold_meta, 1);
	assert_int_equal(writer_submit(fx->writer, &lo->sc.cmd), RSD_OK);
	while (!atomic_load(&meta_holding))
		usleep(1000);
	/* In the gap: the meta page names the logout's commit, readers do not see it yet. */
	assert_int_equal(bearer(fx, token, now, &got), RSD_OK);
	atomic_store(&meta_released, 1);
	while (!atomic_load(&lo->done))
		usleep(1000);
	assert_int_equal(lo->sc.cmd.result, RSD_OK);
	assert_int_equal(lo->sc.revoked_count, 1);
	atomic_store(&meta_holding, 0);
	session_cmd_release(&lo->sc);
	free(lo);
	/* Committed: from now on refused, whatever the cache saw in the gap. */
	assert_int_equal(bearer(fx, token, now, &got), RSD_EAUTH);
	assert_int_equal(bearer(fx, token, now, &got), RSD_EAUTH);
	free(token);
}

static void test_the_principal_comes_from_the_token(void **state)
{
	struct fixture *fx = *state;
	struct principal who, got;
	char *token = login(fx, "staff:alice", fx->t0, &who);
	for (int i = 0; i < 3; i++) { /* verified, then from the cache */
		assert_int_equal(bearer(fx, token, fx->t0 + 1000, &got), RSD_OK);
		assert_string_equal(got.sub, "staff:alice");
		assert_string_equal(got.sid, who.sid);
		assert_string_equal(got.resort, "rs_alpine");
		assert_int_equal(got.role, ROLE_STAFF);
	}
	/* One byte changed (in the signature) is another token: refused, cache or not. */
	size_t n = strlen(token);
	token[n - 5] = token[n - 5] == 'A' ? 'B' : 'A';
	assert_int_equal(bearer(fx, token, fx->t0 + 1000, &got), RSD_EAUTH);
	assert_string_equal(got.sub, "");
	free(token);
}

/* Nothing is committed between the reads: the verdict is reused, yet time still counts. */
static void test_a_cached_session_still_runs_out_of_time(void **state)
{
	struct fixture *fx = *state;
	struct principal who, got;
	/* The least idle limit, 60 s: within the access token's 300 s. */
	fx->config.session_idle_s = 60;
	auth_limits(fx->auth, &fx->lim);
	char *token = login(fx, "staff:bob", fx->t0, &who);
	uint64_t idle_end = fx->t0 + 60 * 1000;
	assert_int_equal(bearer(fx, token, fx->t0 + 1000, &got), RSD_OK);
	assert_int_equal(bearer(fx, token, idle_end - 1, &got), RSD_OK);
	assert_int_equal(bearer(fx, token, idle_end, &got), RSD_EAUTH);
	assert_int_equal(bearer(fx, token, idle_end + 1000, &got), RSD_EAUTH);
	free(token);
}

static void test_a_logout_applies_to_the_next_request(void **state)
{
	struct fixture *fx = *state;
	struct principal a, b, got;
	char *ta = login(fx, "staff:carol", fx->t0, &a);
	char *tb = login(fx, "staff:dave", fx->t0, &b);
	uint64_t now = fx->t0 + 1000;
	assert_int_equal(bearer(fx, ta, now, &got), RSD_OK);
	assert_int_equal(bearer(fx, tb, now, &got), RSD_OK);
	/* An unrelated commit: both are read again, and both still hold. */
	struct principal c;
	free(login(fx, "staff:erin", fx->t0, &c));
	assert_int_equal(bearer(fx, ta, now, &got), RSD_OK);
	assert_int_equal(bearer(fx, tb, now, &got), RSD_OK);
	logout(fx, &a);
	assert_int_equal(bearer(fx, ta, now, &got), RSD_EAUTH);
	assert_int_equal(bearer(fx, ta, now, &got), RSD_EAUTH);
	assert_int_equal(bearer(fx, tb, now, &got), RSD_OK);
	assert_string_equal(got.sub, "staff:dave");
	free(ta);
	free(tb);
}

static int cookie_at(struct fixture *fx, const char *cookie, uint64_t now_ms)
{
	struct principal who;
	struct rsd_fail f;
	return auth_cookie(fx->auth, &fx->reader, cookie, now_ms, &who, &f);
}

/* A browser never refreshes: its use restarts the idle clock (through the writer, after the
 * request; so this waits for it). */
static void test_a_browser_session_slides(void **state)
{
	struct fixture *fx = *state;
	fx->config.session_idle_s = 60;
	auth_limits(fx->auth, &fx->lim);
	struct principal who;
	free(login(fx, "staff:hana", fx->t0, &who));
	char cookie[sizeof(last_cookie)];
	snprintf(cookie, sizeof(cookie), "%s", last_cookie);
	assert_int_equal(cookie_at(fx, cookie, fx->t0 + 1000), RSD_OK); /* too soon: no touch */
	uint64_t used = fx->t0 + 50 * 1000;
	assert_int_equal(cookie_at(fx, cookie, used), RSD_OK); /* touches */
	/* Past the login's idle end, live only once the touch has committed. */
	uint64_t after = fx->t0 + 61 * 1000;
	int err = RSD_EAUTH;
	for (int i = 0; i < 5000 && err != RSD_OK; i++) {
		err = cookie_at(fx, cookie, after);
		if (err)
			usleep(1000);
	}
	assert_int_equal(err, RSD_OK);
	assert_int_equal(cookie_at(fx, cookie, used + 60 * 1000 - 1), RSD_OK);
	assert_int_equal(cookie_at(fx, cookie, used + 60 * 1000), RSD_EAUTH);
	/* A bad secret is refused, and touches nothing. */
	cookie[strlen(cookie) - 1] ^= 1;
	assert_int_equal(cookie_at(fx, cookie, used + 1000), RSD_EAUTH);
}

/* The kid in a compact token's header. */
static void kid_of(const char *token, char *out, size_t cap)
{
	const char *dot = strchr(token, '.');
	unsigned char raw[512];
	long n = jose_b64url_decode(token, (size_t)(dot - token), raw);
	assert_true(n > 0);
	cJSON *h = cJSON_ParseWithLength((const char *)raw, (size_t)n);
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
	assert_true(cJSON_IsString(kid));
	snprintf(out, cap, "%s", kid->valuestring);
	cJSON_Delete(h);
}

static void sign_published_at(struct fixture *fx, uint64_t now_ms, char *kid, size_t cap)
{
	cJSON *claims = cJSON_CreateObject();
	cJSON_AddStringToObject(claims, "iss", "resortd-client");
	char *jwt = NULL;
	assert_int_equal(auth_sign_published(fx->auth, claims, now_ms, &jwt), RSD_OK);
	kid_of(jwt, kid, cap);
	free(jwt);
	cJSON_Delete(claims);
}

/* What others verify from our cached JWKS is signed with a key published long enough. */
static void test_published_signing_waits_for_a_new_key(void **state)
{
	struct fixture *fx = *state;
	const uint64_t lead = KEY_PUBLISH_LEAD_S * 1000ull;
	char first[JOSE_KID_BYTES_MAX + 1], kid[JOSE_KID_BYTES_MAX + 1];
	sign_published_at(fx, fx->t0, first, sizeof(first)); /* the only key: it signs */
	uint64_t t1 = fx->t0 + 2 * lead;
	char rotated[JOSE_KID_BYTES_MAX + 1];
	assert_int_equal(auth_keys_rotate(fx->writer, t1, rotated), RSD_OK);
	assert_string_not_equal(rotated, first);
	/* The server notices at its next look (KEY_CHECK_INTERVAL_MS later). */
	uint64_t t2 = t1 + KEY_CHECK_INTERVAL_MS + 1;
	struct principal who;
	char *access = login(fx, "staff:gina", t2, &who);
	kid_of(access, kid, sizeof(kid));
	assert_string_equal(kid, rotated); /* access tokens: the new key at once */
	free(access);
	sign_published_at(fx, t2, kid, sizeof(kid));
	assert_string_equal(kid, first);
	sign_published_at(fx, t1 + lead - 1, kid, sizeof(kid));
	assert_string_equal(kid, first);
	sign_published_at(fx, t1 + lead, kid, sizeof(kid));
	assert_string_equal(kid, rotated);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_the_principal_comes_from_the_token, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_cached_session_still_runs_out_of_time, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_logout_applies_to_the_next_request, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_published_signing_waits_for_a_new_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_browser_session_slides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_logout_caught_mid_commit_still_applies,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
