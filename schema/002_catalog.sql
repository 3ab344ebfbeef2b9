-- 002_catalog: products, rate plans, prices per date, attributes, reviews and the search index.
-- All of it is derived from the event log by the projector (catalog.c); a rebuild from the log
-- gives the same rows.
--
-- A product row keeps the product exactly as GET /v1/products/{id} returns it in `doc`, so a
-- read is one row and no assembly; the columns searches filter and sort on are generated from
-- doc and cannot disagree with it (STORED: a filter reads a column, never parses JSON). The
-- rowid (assigned in log order) is the search index's rowid
-- and the tie-breaker of every sort, which keeps cursors stable under inserts.

CREATE TABLE products (
    rowid        INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    doc          TEXT NOT NULL CHECK (json_valid(doc)),
    deleted      INTEGER NOT NULL DEFAULT 0,
    version      INTEGER NOT NULL,
    rating_count INTEGER NOT NULL DEFAULT 0,
    rating_sum   INTEGER NOT NULL DEFAULT 0,
    type         TEXT GENERATED ALWAYS AS (doc ->> '$.type') STORED,
    resort_id    TEXT GENERATED ALWAYS AS (doc ->> '$.resort_id') STORED,
    status       TEXT GENERATED ALWAYS AS (doc ->> '$.status') STORED,
    currency     TEXT GENERATED ALWAYS AS (doc ->> '$.currency') STORED,
    name         TEXT GENERATED ALWAYS AS (doc ->> '$.name') STORED,
    rating_avg   REAL GENERATED ALWAYS AS
                 (CASE WHEN rating_count > 0 THEN round(rating_sum * 1.0 / rating_count, 2) END) VIRTUAL
) STRICT;
CREATE INDEX products_by_name ON products (name COLLATE NOCASE, rowid) WHERE deleted = 0;
CREATE INDEX products_by_resort ON products (resort_id, type) WHERE deleted = 0;
CREATE INDEX products_by_rating ON products (rating_avg, rowid) WHERE deleted = 0;

-- Free-form attributes, one row per (key, value); an array attribute gives one row per item.
-- vtext is the value's text form (strings as they are, numbers as JSON writes them, true/false);
-- vnum the number, for range filters.
CREATE TABLE product_attrs (
    product_rowid INTEGER NOT NULL,
    key           TEXT NOT NULL,
    vtext         TEXT NOT NULL,
    vnum          REAL,
    PRIMARY KEY (key, vtext, product_rowid)
) STRICT, WITHOUT ROWID;
CREATE INDEX product_attrs_num ON product_attrs (key, vnum) WHERE vnum IS NOT NULL;
CREATE INDEX product_attrs_of ON product_attrs (product_rowid);

-- Packages bundle other products.
CREATE TABLE package_components (
    package_id   TEXT NOT NULL,
    component_id TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    PRIMARY KEY (package_id, component_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX package_components_of ON package_components (component_id);

CREATE TABLE rate_plans (
    id         TEXT PRIMARY KEY,
    product_id TEXT NOT NULL,
    doc        TEXT NOT NULL CHECK (json_valid(doc)),
    deleted    INTEGER NOT NULL DEFAULT 0,
    version    INTEGER NOT NULL
) STRICT;
CREATE INDEX rate_plans_of ON rate_plans (product_id) WHERE deleted = 0;

-- The price of each product on each date: the lowest any active rate plan gives, and that plan.
-- Recomputed for a product whenever one of its plans changes.
CREATE TABLE day_prices (
    product_id   TEXT NOT NULL,
    day          INTEGER NOT NULL,   -- days since 1970-01-01
    amount       INTEGER NOT NULL,
    rate_plan_id TEXT NOT NULL,
    PRIMARY KEY (product_id, day)
) STRICT, WITHOUT ROWID;

CREATE TABLE reviews (
    rowid      INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    product_id TEXT NOT NULL,
    author_id  TEXT NOT NULL,
    doc        TEXT NOT NULL CHECK (json_valid(doc)),
    rating     INTEGER NOT NULL,
    visible    INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    UNIQUE (product_id, author_id)
) STRICT;
CREATE INDEX reviews_of ON reviews (product_id, visible, rowid);

-- The search index: names (Korean and English), description and attribute text, tokenized by
-- tokenizer.c. Its rowid is products.rowid; deleted products are not in it.
CREATE VIRTUAL TABLE product_fts USING fts5 (
    name, name_en, description, attrs, tokenize = 'rsd'
);
