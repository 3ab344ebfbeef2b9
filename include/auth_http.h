/*
 * auth_http.h — the sign-in routes: the token endpoint (local staff passwords, refresh
 * tokens), logout, the current session, an admin's revocation, and our public keys.
 */
#ifndef RSD_AUTH_HTTP_H
#define RSD_AUTH_HTTP_H

struct http_req;
struct server;

/* Starts and stops the thread that checks passwords (PBKDF2 would stall a worker's
 * loop). Stop after the workers' loops have stopped and before http_free. */
void auth_http_start(struct server *srv);
void auth_http_stop(void);

void auth_http_jwks(struct http_req *req);
void auth_http_token(struct http_req *req);
void auth_http_logout(struct http_req *req);
void auth_http_session(struct http_req *req);
void auth_http_revoke(struct http_req *req);
/* OpenID Connect: GET /auth/login[?return_to=] redirects to the IdP; GET /auth/callback
 * finishes the login (a session, its cookies, and the token pair or a redirect). */
void auth_http_login(struct http_req *req);
void auth_http_callback(struct http_req *req);

#endif
