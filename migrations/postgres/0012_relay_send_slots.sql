-- `delivery.rate_per_second` holds per relay across every worker process:
-- each relay's next free send slot lives here, and a worker reserves a few
-- slots at a time by moving it forward in one statement
-- (`db::relay_rate`). Times are microseconds since the Unix epoch on the
-- database's clock, so workers on machines whose clocks differ still agree.
-- A new table only: a previous release ignores it.
CREATE TABLE relay_send_slots (
    relay TEXT PRIMARY KEY,
    next_slot_us BIGINT NOT NULL
);
