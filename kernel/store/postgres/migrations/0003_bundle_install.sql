-- latch:compatible-from 1
-- Plugin bundles: the operator's install decisions in their own columns
-- (they were kept only in the JSON of the manifest column). Expand only:
-- the manifest column keeps its JSON, so a node of an older build still
-- reads the rows; install_details is NULL on a row such a node wrote, and
-- readers then fall back to that JSON.
ALTER TABLE bundles ADD COLUMN install_details INTEGER;
ALTER TABLE bundles ADD COLUMN grants TEXT NOT NULL DEFAULT '[]';
ALTER TABLE bundles ADD COLUMN tenants TEXT NOT NULL DEFAULT '[]';
ALTER TABLE bundles ADD COLUMN config BYTEA;
ALTER TABLE bundles ADD COLUMN secrets BYTEA;
ALTER TABLE bundles ADD COLUMN signer TEXT NOT NULL DEFAULT '';
ALTER TABLE bundles ADD COLUMN previous_version TEXT NOT NULL DEFAULT '';

UPDATE bundles SET
    install_details = 1,
    grants  = COALESCE((convert_from(manifest, 'UTF8')::jsonb -> 'grants')::text, '[]'),
    tenants = COALESCE((convert_from(manifest, 'UTF8')::jsonb -> 'tenants')::text, '[]'),
    config  = convert_to((convert_from(manifest, 'UTF8')::jsonb -> 'config')::text, 'UTF8'),
    signer  = COALESCE(convert_from(manifest, 'UTF8')::jsonb ->> 'signer', '')
WHERE manifest IS NOT NULL;
