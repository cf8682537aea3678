-- Racetrack's own services (pub, lifecycle-supervisor, ...) become auth subjects like users and
-- ESCs: their internal tokens are stored as digests in registry_authtoken, listed and revocable,
-- and their scopes are global rows in registry_authresourcepermission.
ALTER TABLE registry_authsubject ADD COLUMN service_name VARCHAR(64) NULL;
CREATE UNIQUE INDEX registry_authsubject_service_name_key ON registry_authsubject(service_name);
