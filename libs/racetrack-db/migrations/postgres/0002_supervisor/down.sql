DROP TABLE racetrack_lease;
ALTER TABLE registry_fatman DROP COLUMN last_check_time;
