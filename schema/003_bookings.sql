-- Bookings as the projector sees them (booking.changed events): for listing and reports.
-- The source of truth is LMDB (booking.h); these rows are rebuilt from the log.

CREATE TABLE bookings (
    id          TEXT PRIMARY KEY,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    resort_id   TEXT,                -- the resort of the first item's product
    arrival     INTEGER NOT NULL,    -- days since 1970-01-01: the first night
    departure   INTEGER NOT NULL,    -- the day after the last night
    version     INTEGER NOT NULL,
    state       TEXT GENERATED ALWAYS AS (doc ->> '$.state') STORED,
    principal   TEXT GENERATED ALWAYS AS (doc ->> '$.principal') STORED,
    created_at  TEXT GENERATED ALWAYS AS (doc ->> '$.created_at') STORED
) STRICT;
CREATE INDEX bookings_by_arrival ON bookings (arrival, id);
CREATE INDEX bookings_by_state ON bookings (state, arrival);

-- The nights a booking has sold (confirmed, checked in or out, no-show), per product.
CREATE TABLE booking_nights (
    booking_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    day        INTEGER NOT NULL,
    qty        INTEGER NOT NULL,
    PRIMARY KEY (booking_id, product_id, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX booking_nights_by_day ON booking_nights (product_id, day);

-- Capacity per product and day as staff set it (inventory.set events), for occupancy.
CREATE TABLE inventory_capacity (
    product_id TEXT NOT NULL,
    day        INTEGER NOT NULL,
    slot       INTEGER NOT NULL,
    capacity   INTEGER NOT NULL,
    PRIMARY KEY (product_id, day, slot)
) STRICT, WITHOUT ROWID;
