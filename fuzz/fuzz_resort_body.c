/*
 * fuzz_resort_body.c — libFuzzer target for the JSON body decoders of POST and PATCH
 * /v1/resorts (json_parse_strict, json_check_object and the resort checks). Any crash,
 * sanitizer report or leak is a finding; accepted bodies must satisfy the schema.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "resort.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rsd_fail f;
	cJSON *out = NULL;
	if (resort_decode_create((const char *)data, size, &out, &f) == RSD_OK) {
		/* What the decoder accepts always has a name that is a string. */
		if (json_get_string(out, "name") == NULL)
			abort();
		cJSON_Delete(out);
	}
	out = NULL;
	if (resort_decode_patch((const char *)data, size, &out, &f) == RSD_OK) {
		if (out == NULL || out->child == NULL)
			abort();
		cJSON_Delete(out);
	}
	return 0;
}
