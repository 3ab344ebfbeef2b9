/*
 * fuzz_config.c — libFuzzer target for the config file parser. Errors must be one line
 * and name the file; accepted text must leave values within their bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rsd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[1024];
	config_defaults(&c);
	err[0] = '\0';
	int rc = config_parse_text(&c, (const char *)data, size, "fuzz.conf", err, sizeof(err));
	if (rc != RSD_OK) {
		if (strncmp(err, "fuzz.conf:", 10) != 0 || strchr(err, '\n') != NULL)
			abort();
	} else if (c.workers < 0 || c.workers > WORKERS_MAX || c.listen_port < 0 ||
		   c.listen_port > 65535 || c.body_bytes_max < 1024) {
		abort();
	}
	return 0;
}
