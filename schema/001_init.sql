-- 001_init: the projector's cursor and the first entity, resorts.
-- Everything here is derived from the event log; rebuilding from the log gives the same rows.

CREATE TABLE projector_cursor (
    origin TEXT PRIMARY KEY,          -- node id that wrote the events
    seq    INTEGER NOT NULL           -- last seq of that origin applied here
) STRICT;

CREATE TABLE resorts (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    name_en    TEXT,
    timezone   TEXT NOT NULL,
    currency   TEXT NOT NULL,
    address    TEXT,
    stars      INTEGER,
    home_node  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
