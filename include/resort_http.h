/*
 * resort_http.h — handlers of /v1/resorts: decode, call resort.c, encode.
 */
#ifndef RSD_RESORT_HTTP_H
#define RSD_RESORT_HTTP_H

struct http_req;

void resort_http_create(struct http_req *req); /* POST /v1/resorts */
void resort_http_list(struct http_req *req);   /* GET /v1/resorts */
void resort_http_get(struct http_req *req);    /* GET /v1/resorts/{id} */
void resort_http_patch(struct http_req *req);  /* PATCH /v1/resorts/{id} */

#endif
