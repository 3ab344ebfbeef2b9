/*
 * catalog_http.h — handlers of /v1/products and /v1/rate-plans: decode, call catalog.c or
 * search.c, encode. Writes reply after their projection is readable (read-your-write).
 */
#ifndef RSD_CATALOG_HTTP_H
#define RSD_CATALOG_HTTP_H

struct http_req;

void catalog_http_product_create(struct http_req *req);	   /* POST /v1/products */
void catalog_http_product_search(struct http_req *req);	   /* GET /v1/products */
void catalog_http_product_get(struct http_req *req);	   /* GET /v1/products/{id} */
void catalog_http_product_replace(struct http_req *req);   /* PUT /v1/products/{id} */
void catalog_http_product_patch(struct http_req *req);	   /* PATCH /v1/products/{id} */
void catalog_http_product_delete(struct http_req *req);	   /* DELETE /v1/products/{id} */
void catalog_http_prices(struct http_req *req);		   /* GET /v1/products/{id}/prices */
void catalog_http_rate_plan_list(struct http_req *req);	   /* GET .../{id}/rate-plans */
void catalog_http_rate_plan_create(struct http_req *req);  /* POST .../{id}/rate-plans */
void catalog_http_rate_plan_get(struct http_req *req);	   /* GET /v1/rate-plans/{id} */
void catalog_http_rate_plan_replace(struct http_req *req); /* PUT /v1/rate-plans/{id} */
void catalog_http_rate_plan_patch(struct http_req *req);   /* PATCH /v1/rate-plans/{id} */
void catalog_http_rate_plan_delete(struct http_req *req);  /* DELETE /v1/rate-plans/{id} */

void catalog_http_review_list(struct http_req *req);	 /* GET .../{id}/reviews */
void catalog_http_review_create(struct http_req *req);	 /* POST .../{id}/reviews */
void catalog_http_review_get(struct http_req *req);	 /* GET /v1/reviews/{id} */
void catalog_http_review_moderate(struct http_req *req); /* PATCH /v1/reviews/{id} */

#endif
