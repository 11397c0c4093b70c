-- latch:compatible-from 1
-- Claim dialects: a tenant's local claims (beside the built-in ones) with
-- their per-user-store attribute mappings, and the mappings of outside
-- dialects (oidc, scim, saml, ...) to local claims.
CREATE TABLE local_claims (
    tenant_id          TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    uri                TEXT COLLATE "C" NOT NULL,
    name               TEXT COLLATE "C" NOT NULL,
    description        TEXT             NOT NULL DEFAULT '',
    attribute_mappings JSONB,
    created_at         TIMESTAMPTZ      NOT NULL,
    updated_at         TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (tenant_id, uri),
    UNIQUE (tenant_id, name)
);

CREATE TABLE claim_mappings (
    tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    dialect    TEXT COLLATE "C" NOT NULL,
    claim      TEXT COLLATE "C" NOT NULL,
    local_uri  TEXT COLLATE "C" NOT NULL,
    updated_at TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (tenant_id, dialect, claim)
);
CREATE INDEX claim_mappings_local ON claim_mappings (tenant_id, local_uri);
