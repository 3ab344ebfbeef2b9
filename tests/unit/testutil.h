/*
 * testutil.h — helpers shared by the unit tests: a temporary directory per test.
 */
#ifndef RSD_TESTUTIL_H
#define RSD_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes a fresh directory under /tmp and writes its path into out. */
static inline void tmpdir_make(char *out, size_t len)
{
	snprintf(out, len, "/tmp/resortd-unit-XXXXXX");
	if (mkdtemp(out) == NULL)
		abort();
}

/* Removes the directory tree; paths come from tmpdir_make only. */
static inline void tmpdir_remove(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		abort();
}

#endif
