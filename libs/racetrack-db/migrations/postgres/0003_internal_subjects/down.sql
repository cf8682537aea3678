DELETE FROM registry_authsubject WHERE service_name IS NOT NULL;
DROP INDEX registry_authsubject_service_name_key;
ALTER TABLE registry_authsubject DROP COLUMN service_name;
