-- The first schema of Latch's durable state.
--
-- Times are TEXT in one fixed-width UTC form (2006-01-02T15:04:05.000000Z),
-- so that text order is time order; NULL is the zero time. Maps and slices
-- are JSON TEXT; NULL is a nil map or slice. Usernames and emails are also
-- kept folded to lower case (username_fold, email_fold) for case-insensitive
-- lookups and uniqueness.

CREATE TABLE tenants (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    display_name TEXT    NOT NULL DEFAULT '',
    enabled      INTEGER NOT NULL DEFAULT 0,
    settings     TEXT,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
) STRICT;

CREATE TABLE users (
    id             TEXT    NOT NULL PRIMARY KEY,
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username       TEXT    NOT NULL,
    username_fold  TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL DEFAULT '',
    email          TEXT    NOT NULL DEFAULT '',
    email_fold     TEXT    NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0,
    phone_number   TEXT    NOT NULL DEFAULT '',
    display_name   TEXT    NOT NULL DEFAULT '',
    given_name     TEXT    NOT NULL DEFAULT '',
    family_name    TEXT    NOT NULL DEFAULT '',
    enabled        INTEGER NOT NULL DEFAULT 0,
    locked_until   TEXT,
    attributes     TEXT,
    version        INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, username_fold)
) STRICT;
CREATE INDEX users_email ON users (tenant_id, email_fold);

CREATE TABLE groups (
    id          TEXT NOT NULL PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    attributes  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
) STRICT;

CREATE TABLE group_members (
    tenant_id TEXT NOT NULL,
    group_id  TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX group_members_user ON group_members (tenant_id, user_id);

CREATE TABLE roles (
    id          TEXT NOT NULL PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    permissions TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
) STRICT;

CREATE TABLE role_users (
    tenant_id TEXT NOT NULL,
    role_id   TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, role_id, user_id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX role_users_user ON role_users (tenant_id, user_id);

CREATE TABLE role_groups (
    tenant_id TEXT NOT NULL,
    role_id   TEXT NOT NULL,
    group_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, role_id, group_id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX role_groups_group ON role_groups (tenant_id, group_id);

CREATE TABLE clients (
    id                         TEXT    NOT NULL PRIMARY KEY,
    tenant_id                  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id                  TEXT    NOT NULL,
    name                       TEXT    NOT NULL DEFAULT '',
    secret_hash                TEXT    NOT NULL DEFAULT '',
    public                     INTEGER NOT NULL DEFAULT 0,
    first_party                INTEGER NOT NULL DEFAULT 0,
    redirect_uris              TEXT,
    grant_types                TEXT,
    response_types             TEXT,
    scopes                     TEXT,
    audience                   TEXT,
    token_endpoint_auth_method TEXT    NOT NULL DEFAULT '',
    settings                   TEXT,
    enabled                    INTEGER NOT NULL DEFAULT 0,
    created_at                 TEXT    NOT NULL,
    updated_at                 TEXT    NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, client_id)
) STRICT;

CREATE TABLE sessions (
    id           TEXT NOT NULL PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    auth_time    TEXT,
    acr          TEXT NOT NULL DEFAULT '',
    amr          TEXT,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    data         TEXT,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE tokens (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    token_key  TEXT    NOT NULL,
    request_id TEXT    NOT NULL DEFAULT '',
    client_id  TEXT    NOT NULL DEFAULT '',
    subject    TEXT    NOT NULL DEFAULT '',
    session_id TEXT    NOT NULL DEFAULT '',
    active     INTEGER NOT NULL DEFAULT 0,
    data       BLOB,
    created_at TEXT    NOT NULL,
    expires_at TEXT,
    PRIMARY KEY (tenant_id, kind, token_key)
) STRICT;
CREATE INDEX tokens_request ON tokens (tenant_id, kind, request_id);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE signing_keys (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id             TEXT NOT NULL,
    algorithm      TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('next', 'active', 'retiring')),
    private_sealed BLOB,
    public_jwk     BLOB,
    created_at     TEXT NOT NULL,
    not_after      TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;
-- One active key per tenant and algorithm.
CREATE UNIQUE INDEX signing_keys_active ON signing_keys (tenant_id, algorithm) WHERE state = 'active';

CREATE TABLE consents (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT,
    granted_at TEXT NOT NULL,
    expires_at TEXT,
    PRIMARY KEY (tenant_id, user_id, client_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

-- Audit events and plugin values carry no foreign key: audit events may
-- name no tenant (system events) and outlive what they describe until the
-- tenant goes, and plugin values may be global (empty tenant id).
-- DeleteTenant removes both explicitly.
CREATE TABLE audit_events (
    id         TEXT NOT NULL PRIMARY KEY,
    tenant_id  TEXT NOT NULL DEFAULT '',
    event_time TEXT NOT NULL,
    request_id TEXT NOT NULL DEFAULT '',
    actor      TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    outcome    TEXT NOT NULL DEFAULT '',
    detail     TEXT
) STRICT;
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, event_time, id);
CREATE INDEX audit_events_time ON audit_events (event_time, id);

CREATE TABLE bundles (
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    abi_version  TEXT NOT NULL DEFAULT '',
    digest       TEXT NOT NULL DEFAULT '',
    manifest     BLOB,
    archive      BLOB,
    state        TEXT NOT NULL CHECK (state IN ('enabled', 'disabled', 'previous')),
    installed_at TEXT NOT NULL,
    PRIMARY KEY (name, version)
) STRICT;

CREATE TABLE plugin_kv (
    plugin     TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    entry_key  TEXT NOT NULL,
    value      BLOB,
    expires_at TEXT,
    PRIMARY KEY (plugin, tenant_id, entry_key)
) STRICT;
CREATE INDEX plugin_kv_tenant ON plugin_kv (tenant_id);
CREATE INDEX plugin_kv_expires ON plugin_kv (expires_at);
