-- Staff sessions live on the server: the cookie names one by a random
-- secret, stored here as its SHA-256. Logging out or changing the password
-- deletes the row, so a copy of the cookie made before stops working, and
-- every session ends at expires_at however busy it is.

CREATE TABLE staff_sessions (
    id_hash BLOB PRIMARY KEY NOT NULL,
    staff_id BLOB NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);
