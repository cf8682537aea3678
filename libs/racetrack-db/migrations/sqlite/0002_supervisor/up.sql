-- Lifecycle supervisor: when each fatman was last checked against its infrastructure, and the
-- lease that lets one supervisor replica act at a time (SQLite; Postgres uses an advisory lock).
ALTER TABLE registry_fatman ADD COLUMN last_check_time TIMESTAMP NULL;

CREATE TABLE racetrack_lease (
    name VARCHAR(128) PRIMARY KEY,
    holder VARCHAR(256) NOT NULL,
    acquire_time TIMESTAMP NOT NULL,
    expire_time TIMESTAMP NOT NULL
);
