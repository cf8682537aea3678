-- The manifest as the code reads it (normalised JSON, every key present), written at deploy next
-- to `manifest`, the user's YAML kept verbatim for editing. Rows from before this migration are
-- filled in once by Lifecycle at startup (it parses YAML; SQL cannot).
ALTER TABLE registry_fatman ADD COLUMN manifest_json TEXT NULL;
