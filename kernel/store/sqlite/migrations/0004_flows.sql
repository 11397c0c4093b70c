-- latch:compatible-from 1
-- Versioned authentication flows: one row per (tenant, name, version).
CREATE TABLE auth_flows (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    definition TEXT,
    comment    TEXT    NOT NULL DEFAULT '',
    created_at TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
) STRICT;
