/*
 * inventory_http.h — /v1/inventory and /v1/availability handlers.
 */
#ifndef RSD_INVENTORY_HTTP_H
#define RSD_INVENTORY_HTTP_H

struct http_req;

void inventory_http_put(struct http_req *req);
void inventory_http_get(struct http_req *req);
void inventory_http_availability(struct http_req *req);

#endif
