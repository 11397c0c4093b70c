-- latch:compatible-from 1
-- Versioned authentication flows: one row per (tenant, name, version).
CREATE TABLE auth_flows (
    tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT COLLATE "C" NOT NULL,
    version    BIGINT           NOT NULL CHECK (version > 0),
    definition JSONB,
    comment    TEXT             NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);
