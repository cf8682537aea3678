ALTER TABLE registry_fatman DROP COLUMN manifest_json;
