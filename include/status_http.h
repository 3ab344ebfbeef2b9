/*
 * status_http.h — the operator's endpoints: /healthz, /readyz, /metrics.
 */
#ifndef RSD_STATUS_HTTP_H
#define RSD_STATUS_HTTP_H

struct http_req;

void status_http_health(struct http_req *req);	/* GET /healthz: the process is up */
void status_http_ready(struct http_req *req);	/* GET /readyz: stores open, projector moving */
void status_http_metrics(struct http_req *req); /* GET /metrics: Prometheus text */

#endif
