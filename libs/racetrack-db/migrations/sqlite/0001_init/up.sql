-- Table names follow the original (Django defaults) so operators recognise them.
CREATE TABLE auth_user (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username VARCHAR(150) NOT NULL UNIQUE,
    password VARCHAR(256) NOT NULL,
    email VARCHAR(254) NOT NULL DEFAULT '',
    first_name VARCHAR(150) NOT NULL DEFAULT '',
    last_name VARCHAR(150) NOT NULL DEFAULT '',
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    is_staff BOOLEAN NOT NULL DEFAULT FALSE,
    is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
    last_login TIMESTAMP NULL,
    date_joined TIMESTAMP NOT NULL
);

CREATE TABLE registry_fatmanfamily (
    id VARCHAR(36) PRIMARY KEY,
    name VARCHAR(512) NOT NULL UNIQUE
);

CREATE TABLE registry_fatman (
    id VARCHAR(36) PRIMARY KEY,
    family_id VARCHAR(36) NOT NULL REFERENCES registry_fatmanfamily(id) ON DELETE CASCADE,
    name VARCHAR(512) NOT NULL,
    version VARCHAR(256) NOT NULL,
    status VARCHAR(32) NOT NULL,
    create_time TIMESTAMP NOT NULL,
    update_time TIMESTAMP NOT NULL,
    manifest TEXT NULL,
    internal_name VARCHAR(512) NULL,
    error TEXT NULL,
    image_tag VARCHAR(256) NULL,
    deployed_by VARCHAR(256) NULL,
    last_call_time TIMESTAMP NULL,
    infrastructure_target VARCHAR(256) NULL,
    UNIQUE (name, version)
);
CREATE INDEX registry_fatman_family_idx ON registry_fatman(family_id);

CREATE TABLE registry_deployment (
    id VARCHAR(36) PRIMARY KEY,
    status VARCHAR(32) NOT NULL,
    create_time TIMESTAMP NOT NULL,
    update_time TIMESTAMP NOT NULL,
    manifest TEXT NOT NULL,
    fatman_name VARCHAR(512) NOT NULL,
    fatman_version VARCHAR(256) NOT NULL,
    error TEXT NULL,
    deployed_by VARCHAR(256) NULL,
    build_logs TEXT NULL,
    phase TEXT NULL,
    image_name TEXT NULL,
    infrastructure_target VARCHAR(256) NULL
);
CREATE INDEX registry_deployment_fatman_idx ON registry_deployment(fatman_name, fatman_version);

CREATE TABLE registry_esc (
    id VARCHAR(36) PRIMARY KEY,
    name VARCHAR(512) NOT NULL
);

CREATE TABLE registry_publicendpointrequest (
    id VARCHAR(36) PRIMARY KEY,
    fatman_id VARCHAR(36) NOT NULL REFERENCES registry_fatman(id) ON DELETE CASCADE,
    endpoint VARCHAR(512) NOT NULL,
    active BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE registry_trashfatman (
    id VARCHAR(36) PRIMARY KEY,
    name VARCHAR(512) NOT NULL,
    version VARCHAR(256) NOT NULL,
    status VARCHAR(32) NOT NULL,
    create_time TIMESTAMP NOT NULL,
    update_time TIMESTAMP NOT NULL,
    manifest TEXT NULL,
    internal_name VARCHAR(512) NULL,
    error TEXT NULL,
    image_tag VARCHAR(256) NULL,
    deployed_by VARCHAR(256) NULL,
    last_call_time TIMESTAMP NULL,
    infrastructure_target VARCHAR(256) NULL,
    delete_time TIMESTAMP NOT NULL,
    age_days DOUBLE NOT NULL
);
CREATE INDEX registry_trashfatman_name_idx ON registry_trashfatman(name, version);

CREATE TABLE registry_auditlogevent (
    id VARCHAR(36) PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    timestamp TIMESTAMP NOT NULL,
    event_type VARCHAR(512) NOT NULL,
    properties TEXT NULL,
    username_executor VARCHAR(512) NULL,
    username_subject VARCHAR(512) NULL,
    fatman_name VARCHAR(512) NULL,
    fatman_version VARCHAR(256) NULL
);
CREATE INDEX registry_auditlogevent_ts_idx ON registry_auditlogevent(timestamp);

CREATE TABLE registry_authsubject (
    id VARCHAR(36) PRIMARY KEY,
    user_id INTEGER NULL UNIQUE REFERENCES auth_user(id) ON DELETE CASCADE,
    esc_id VARCHAR(36) NULL UNIQUE REFERENCES registry_esc(id) ON DELETE CASCADE,
    fatman_family_id VARCHAR(36) NULL UNIQUE REFERENCES registry_fatmanfamily(id) ON DELETE CASCADE,
    expiry_time TIMESTAMP NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE
);

-- Tokens are never stored: only a SHA-256 digest of the token's identity (see racetrack-auth).
-- A subject may hold several live tokens so consumers can rotate without downtime.
CREATE TABLE registry_authtoken (
    id VARCHAR(36) PRIMARY KEY,
    auth_subject_id VARCHAR(36) NOT NULL REFERENCES registry_authsubject(id) ON DELETE CASCADE,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    public_seed VARCHAR(64) NULL,
    label VARCHAR(256) NOT NULL DEFAULT '',
    create_time TIMESTAMP NOT NULL,
    expiry_time TIMESTAMP NULL,
    last_use_time TIMESTAMP NULL
);
CREATE INDEX registry_authtoken_subject_idx ON registry_authtoken(auth_subject_id);

CREATE TABLE registry_authresourcepermission (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    auth_subject_id VARCHAR(36) NOT NULL REFERENCES registry_authsubject(id) ON DELETE CASCADE,
    scope VARCHAR(32) NOT NULL,
    fatman_family_id VARCHAR(36) NULL REFERENCES registry_fatmanfamily(id) ON DELETE CASCADE,
    fatman_id VARCHAR(36) NULL REFERENCES registry_fatman(id) ON DELETE CASCADE,
    endpoint VARCHAR(256) NULL
);
CREATE INDEX registry_authresourcepermission_subject_idx ON registry_authresourcepermission(auth_subject_id);

