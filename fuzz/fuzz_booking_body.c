/*
 * fuzz_booking_body.c — libFuzzer target for the booking request decoders: POST /v1/holds
 * (hold_decode), POST /v1/bookings (booking_decode), change-dates (booking_decode_change)
 * and PUT /v1/inventory (inventory_decode_set). Any crash, sanitizer report or leak is a
 * finding; what a decoder accepts must be within the bounds the writer relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "hold.h"
#include "inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_item(const struct inv_item *it)
{
	if (it->to_day <= it->from_day || it->to_day - it->from_day > STAY_NIGHTS_MAX ||
	    it->qty < 1 || it->qty > HOLD_QTY_MAX || it->slot > 1440 || !it->product_id[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct rsd_fail f;
	struct hold_request hr;
	if (hold_decode(body, size, &hr, &f) == RSD_OK) {
		if (hr.n < 1 || hr.n > HOLD_ITEMS_MAX || !hr.guest)
			abort();
		for (int i = 0; i < hr.n; i++)
			check_item(&hr.items[i].inv);
	}
	hold_request_release(&hr);
	struct booking_cmd bc;
	if (booking_decode(body, size, &bc, &f) == RSD_OK &&
	    (!bc.hold_id[0] || (bc.method != PAYMENT_DESK && bc.method != PAYMENT_HTTP) ||
	     (bc.method == PAYMENT_HTTP && !bc.token[0])))
		abort();
	booking_cmd_release(&bc);
	struct booking_action_cmd ac;
	memset(&ac, 0, sizeof(ac));
	if (booking_decode_change(body, size, &ac, &f) == RSD_OK &&
	    (ac.change.inv.to_day <= ac.change.inv.from_day || ac.item < 0 ||
	     ac.item >= HOLD_ITEMS_MAX))
		abort();
	struct inventory_set set;
	if (inventory_decode_set("pr_x", body, size, &set, &f) == RSD_OK &&
	    (set.to_day <= set.from_day || set.to_day - set.from_day > INVENTORY_RANGE_DAYS_MAX))
		abort();
	return 0;
}
