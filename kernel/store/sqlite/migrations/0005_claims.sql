-- latch:compatible-from 1
-- Claim dialects: a tenant's local claims (beside the built-in ones) with
-- their per-user-store attribute mappings, and the mappings of outside
-- dialects (oidc, scim, saml, ...) to local claims.
CREATE TABLE local_claims (
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    uri                TEXT NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    attribute_mappings TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, uri),
    UNIQUE (tenant_id, name)
) STRICT;

CREATE TABLE claim_mappings (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    dialect    TEXT NOT NULL,
    claim      TEXT NOT NULL,
    local_uri  TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, dialect, claim)
) STRICT;
CREATE INDEX claim_mappings_local ON claim_mappings (tenant_id, local_uri);
