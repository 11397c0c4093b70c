-- latch:compatible-from 1
-- Plugin bundles: the operator's install decisions in their own columns
-- (they were kept only in the JSON of the manifest column). Expand only:
-- the manifest column keeps its JSON, so a node of an older build still
-- reads the rows; install_details is NULL on a row such a node wrote, and
-- readers then fall back to that JSON. (No "$" here: the driver rewrites it
-- to a placeholder, so JSON paths are written as bare labels.)
ALTER TABLE bundles ADD COLUMN install_details INTEGER;
ALTER TABLE bundles ADD COLUMN grants TEXT NOT NULL DEFAULT '[]';
ALTER TABLE bundles ADD COLUMN tenants TEXT NOT NULL DEFAULT '[]';
ALTER TABLE bundles ADD COLUMN config BLOB;
ALTER TABLE bundles ADD COLUMN secrets BLOB;
ALTER TABLE bundles ADD COLUMN signer TEXT NOT NULL DEFAULT '';
ALTER TABLE bundles ADD COLUMN previous_version TEXT NOT NULL DEFAULT '';

UPDATE bundles SET
    install_details = 1,
    grants  = COALESCE(CAST(manifest AS TEXT) -> 'grants', '[]'),
    tenants = COALESCE(CAST(manifest AS TEXT) -> 'tenants', '[]'),
    config  = CAST(CAST(manifest AS TEXT) -> 'config' AS BLOB),
    signer  = COALESCE(CAST(manifest AS TEXT) ->> 'signer', '')
WHERE manifest IS NOT NULL AND json_valid(CAST(manifest AS TEXT));
