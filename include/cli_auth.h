/*
 * cli_auth.h — the `resortd user ...` and `resortd keys rotate` subcommands.
 *
 * They open the LMDB store beside a running server (LMDB serializes writers across
 * processes, and the writer re-reads the log head in every batch) and write through a
 * writer of their own, so staff can be managed while the resort runs.
 */
#ifndef RSD_CLI_AUTH_H
#define RSD_CLI_AUTH_H

#include <stdbool.h>

#include "config.h"

/*
 * argv[0] is "add", "passwd", "role" or "disable", argv[1] the user name; opts holds
 * --role, --resort, --all-resorts and --password-stdin already taken out of the command
 * line. Returns the exit status (0, 1 for a failure, 2 for bad usage) after printing one
 * line.
 */
struct cli_user_opts {
	const char *role;
	const char *resort;
	bool password_stdin;
	bool all_resorts; /* role: the whole group (no --resort keeps the user's resort) */
};
int cli_auth_user(const struct config *c, int argc, char **argv, const struct cli_user_opts *o);

/* argv[0] must be "rotate". Returns the exit status. */
int cli_auth_keys(const struct config *c, int argc, char **argv);

#endif
