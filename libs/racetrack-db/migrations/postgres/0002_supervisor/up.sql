-- Lifecycle supervisor: when each fatman was last checked against its infrastructure. The lease
-- table mirrors SQLite's for one schema on both backends; on Postgres the supervisor holds a
-- session advisory lock instead (released by the server the moment its connection dies).
ALTER TABLE registry_fatman ADD COLUMN last_check_time TIMESTAMP NULL;

CREATE TABLE racetrack_lease (
    name VARCHAR(128) PRIMARY KEY,
    holder VARCHAR(256) NOT NULL,
    acquire_time TIMESTAMP NOT NULL,
    expire_time TIMESTAMP NOT NULL
);
