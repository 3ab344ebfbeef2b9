/*
 * booking_http.h — /v1/holds and /v1/bookings handlers.
 */
#ifndef RSD_BOOKING_HTTP_H
#define RSD_BOOKING_HTTP_H

struct http_req;

void booking_http_hold_create(struct http_req *req);
void booking_http_hold_get(struct http_req *req);
void booking_http_hold_release(struct http_req *req);
void booking_http_create(struct http_req *req);
void booking_http_get(struct http_req *req);
void booking_http_cancel(struct http_req *req);
void booking_http_check_in(struct http_req *req);
void booking_http_check_out(struct http_req *req);
void booking_http_no_show(struct http_req *req);
void booking_http_change_dates(struct http_req *req);
void booking_http_list(struct http_req *req);
void booking_http_occupancy(struct http_req *req);

#endif
