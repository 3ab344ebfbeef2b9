/*
 * limits_rsd.h — every bound resortd enforces, in one place.
 *
 * Each size, count and timeout is a named constant with its unit last in the name, so a
 * reader can see at a glance what the server will accept and how long it will wait.
 * Values that an operator may tune are only the defaults of config keys (config.c).
 */
#ifndef RSD_LIMITS_H
#define RSD_LIMITS_H

/* HTTP */
#define HEADERS_BYTES_MAX	 (8 * 1024)
#define BODY_BYTES_LIMIT	 (64 * 1024 * 1024) /* the largest body_bytes_max accepted */
#define URI_BYTES_MAX		 4096
#define CONN_ADDR_SLOTS		 16384 /* >= 2 x conns_max: every live address fits */
#define SHUTDOWN_GRACE_MS	 8000  /* finish in-flight requests within this on SIGTERM */
#define REQUEST_ID_BYTES_MAX	 64
#define ROUTE_PARAMS_MAX	 4
#define ROUTE_PARAM_BYTES_MAX	 128
#define QUERY_PARAMS_MAX	 32
#define ACCESS_LOG_FLUSH_MS	 100	      /* buffered access lines reach stderr within this */
#define REQUEST_ARENA_BYTES	 2048	      /* inline first arena block of a request */
#define REQUEST_POOL_MAX	 256	      /* finished requests kept per worker for reuse */
#define READCACHE_SLOTS		 4096	      /* per worker */
#define READCACHE_BODY_BYTES_MAX (256 * 1024) /* larger replies are not cached */

/* JSON bodies */
#define JSON_DEPTH_MAX 32

/* Storage */
#define NODE_ID_BYTES_MAX	 31
#define ENTITY_ID_BYTES_MAX	 48
#define WRITER_QUEUE_MAX	 65536
#define WRITER_BATCH_MAX	 4096
#define PROJECTOR_BATCH_MAX	 1024
#define PROJECTOR_GATHER_MIN	 32 /* events in a batch that mean the log is busy */
#define PROJECTOR_STUCK_S	 10 /* lag without progress this long: not ready */
#define PROJECTOR_POLL_MS	 100
#define PROJECTOR_BACKOFF_MS_MAX 5000 /* longest wait between retries of a failing batch */
#define PROJECTOR_ERROR_LOG_S	 10   /* a failure that persists is logged this often */
#define SQLITE_BUSY_TIMEOUT_MS	 5000
#define READER_CACHE_KIB	 32768 /* SQLite page cache of each worker's read connection */
#define STMT_CACHE_MAX		 32

/* Config */
#define CONFIG_LINE_BYTES_MAX 1024
#define CONFIG_FILE_BYTES_MAX (256 * 1024)
#define WORKERS_MAX	      64

/* Resorts */
#define RESORT_NAME_CHARS_MAX	 200
#define RESORT_ADDRESS_CHARS_MAX 500
#define RESORTS_PAGE_MAX	 100
#define RESORTS_PAGE_DEFAULT	 20

/* Catalog */
#define PRODUCT_NAME_CHARS_MAX	      200
#define PRODUCT_DESCRIPTION_CHARS_MAX 20000
#define ATTR_KEYS_MAX		      64  /* members of a product's attributes object */
#define ATTR_KEY_BYTES_MAX	      32  /* [a-z0-9_], starting with a letter */
#define ATTR_VALUE_CHARS_MAX	      200 /* a string attribute value */
#define ATTR_ARRAY_ITEMS_MAX	      32  /* an attribute may be an array of scalars */
#define MEDIA_ITEMS_MAX		      32
#define URL_BYTES_MAX		      2048
#define PACKAGE_COMPONENTS_MAX	      16
#define CAPACITY_COUNT_MAX	      100000
#define PRICE_RULES_MAX		      64
#define PRICE_RULE_DAYS_MAX	      731	      /* one rule spans at most two years */
#define PRICE_AMOUNT_MAX	      1000000000000LL /* minor units */
#define PRICE_QUERY_DAYS_MAX	      366	      /* GET .../prices and stay searches */
#define REVIEW_TITLE_CHARS_MAX	      200
#define REVIEW_BODY_CHARS_MAX	      5000
#define CATALOG_PAGE_MAX	      100
#define CATALOG_PAGE_DEFAULT	      20

/* Search */
#define SEARCH_Q_CHARS_MAX	200
#define SEARCH_TERMS_MAX	8
#define SEARCH_FTS_BYTES_MAX	1024 /* the FTS5 expression built from q */
#define SEARCH_VALUES_MAX	16   /* comma-separated values of one filter */
#define SEARCH_ATTR_FILTERS_MAX 8
#define SEARCH_FACETS_MAX	8
#define SEARCH_FACET_VALUES_MAX 50   /* values reported per facet */
#define SEARCH_FACET_ROWS_MAX	2000 /* facets count at most this many matches */
#define SEARCH_RANKED_MAX	1000 /* relevance ranks at most this many candidates */
#define SEARCH_CURSOR_BYTES_MAX 1152

/* Inventory, holds and bookings */
#define INVENTORY_RANGE_DAYS_MAX  731  /* days one PUT /v1/inventory or GET covers */
#define STAY_NIGHTS_MAX		  60   /* nights of one item of a hold */
#define ADVANCE_DAYS_MAX	  1000 /* how far ahead an arrival may be */
#define HOLD_ITEMS_MAX		  8
#define HOLD_QTY_MAX		  100 /* units of one item */
#define GUEST_NAME_CHARS_MAX	  200
#define GUEST_EMAIL_BYTES_MAX	  254
#define GUEST_PHONE_BYTES_MAX	  32
#define IDEMPOTENCY_KEY_BYTES_MAX 128
#define IDEMPOTENCY_TTL_S	  86400 /* a key's first answer is kept this long */
#define PRINCIPAL_BYTES_MAX	  64
#define SWEEP_INTERVAL_MS	  500 /* how often expired holds and keys are looked for */
#define SWEEP_BATCH_MAX		  512 /* expiries handled per sweep command */
#define PAYMENT_TOKEN_BYTES_MAX	  256
#define BOOKINGS_PAGE_MAX	  100
#define BOOKINGS_PAGE_DEFAULT	  20
/* Sign-in and sessions */
#define USER_NAME_BYTES_MAX	 32  /* a local staff name */
#define USER_DISPLAY_BYTES_MAX	 128 /* a display name from the IdP */
#define PASSWORD_HASH_BYTES_MAX	 160 /* "pbkdf2-sha256$i=N$salt$hash" */
#define PASSWORD_BYTES_MAX	 1024
#define PASSWORD_CHARS_MIN	 8
#define TOKEN_CACHE_SLOTS	 2048  /* verified access tokens per worker */
#define KEY_CHECK_INTERVAL_MS	 1000  /* how often a rotated signing key is looked for */
#define KEY_RETIRED_KEEP_S	 86400 /* a retired key verifies tokens this long */
#define SESSION_TOUCH_EVERY	 8     /* a browser's use restarts its idle clock after idle/8 */
#define REFRESH_USED_KEEP_S	 86400 /* a used refresh token is known (as reuse) this long */
#define KEY_PUBLISH_LEAD_S	 300 /* what others verify is signed with a key published this long */
#define LOGIN_WINDOW_S		 900 /* failed logins are counted over this window */
#define LOGIN_FAILS_PER_USER_MAX 5
#define LOGIN_FAILS_PER_ADDR_MAX 20
#define THROTTLE_SLOTS		 4096
#define PASSWORD_JOBS_MAX	 64  /* password checks queued for the hashing thread */
#define LOGIN_STATE_TTL_S	 600 /* an OpenID login must come back within this */

/* The IdP checked again (idp_recheck.h). */
#define IDP_REFRESH_TOKEN_BYTES_MAX 4096 /* longer IdP refresh tokens are not kept */
#define IDP_RECHECK_BATCH	    64	 /* SSO sessions asked about per round at most */

#endif
