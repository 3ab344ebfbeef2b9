/*
 * bulk.h — `resortd import FILE` and `resortd export`: the catalog as one JSON document.
 *
 * The document (export writes it, import reads it; docs/import-format in README):
 *   {"resorts":    [{"id"?, name, name_en, timezone, currency, address, stars}],
 *    "products":   [{"id"?, type, resort_id, name, ... as POST /v1/products}],
 *    "rate_plans": [{"id"?, product_id, name, status, rules}]}
 * Every member is optional; ids are optional (made when absent) and, when given, must be
 * new and carry their kind's prefix (rs_, pr_, rp_). References (resort_id, components,
 * product_id) may name records earlier in the same file or already in the store.
 *
 * An import is all-or-nothing: every record is checked first (the error names it, as
 * "products[12].name"), then one writer command creates them all in one transaction, so a
 * failure anywhere leaves the store as it was. It goes through the log like any write.
 */
#ifndef RSD_BULK_H
#define RSD_BULK_H

#include <stdio.h>

#include "readmodel.h"
#include "writer.h"

struct bulk_import;

/*
 * Parses and checks an import document. *out receives the import, ready to run.
 * Errors: RSD_EINVAL with f->field naming the record and member.
 */
int bulk_import_decode(const char *text, size_t len, struct bulk_import **out, struct rsd_fail *f);

/* Runs the import through w and waits. Returns RSD_OK or the error (f filled). *last_seq
 * receives the seq of its last event (0 when it had none). */
int bulk_import_run(struct bulk_import *b, struct writer *w, uint64_t *last_seq,
		    struct rsd_fail *f);

/* Counts of what the import holds. */
void bulk_import_counts(const struct bulk_import *b, int *resorts, int *products, int *rate_plans);

void bulk_import_free(struct bulk_import *b);

/* Writes the read model's live resorts, products and rate plans as an import document. */
int bulk_export(struct readmodel_reader *r, FILE *out, struct rsd_fail *f);

#endif
