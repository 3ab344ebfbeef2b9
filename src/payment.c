/*
 * payment.c — the desk provider: payment happens in person, so every operation is
 * already done as far as the appliance is concerned.
 */
#include "payment.h"

#include <stddef.h>

#include "banned.h"

static void desk_start(struct payment_provider *p, struct payment_call *call)
{
	(void)p;
	call->done(call, PAYMENT_OK);
}

static void desk_free(struct payment_provider *p)
{
	(void)p;
}

struct payment_provider *payment_desk(void)
{
	static struct payment_provider desk = {"desk", desk_start, desk_free};
	return &desk;
}
