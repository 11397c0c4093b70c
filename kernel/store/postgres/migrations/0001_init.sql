-- The first schema of Latch's durable state.
--
-- Times are timestamptz (microseconds); NULL is the zero time. Maps and
-- slices are jsonb; NULL is a nil map or slice. Identifiers, names and keys
-- that listings order by use the "C" collation, so that order is byte order
-- on every server locale, as in the SQLite backend. Usernames and emails are
-- also kept folded to lower case (username_fold, email_fold) for
-- case-insensitive lookups and uniqueness.

CREATE TABLE tenants (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name         TEXT COLLATE "C" NOT NULL UNIQUE,
    display_name TEXT             NOT NULL DEFAULT '',
    enabled      BOOLEAN          NOT NULL DEFAULT FALSE,
    settings     JSONB,
    created_at   TIMESTAMPTZ      NOT NULL,
    updated_at   TIMESTAMPTZ      NOT NULL
);

CREATE TABLE users (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id      TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username       TEXT             NOT NULL,
    username_fold  TEXT COLLATE "C" NOT NULL,
    password_hash  TEXT             NOT NULL DEFAULT '',
    email          TEXT             NOT NULL DEFAULT '',
    email_fold     TEXT COLLATE "C" NOT NULL DEFAULT '',
    email_verified BOOLEAN          NOT NULL DEFAULT FALSE,
    phone_number   TEXT             NOT NULL DEFAULT '',
    display_name   TEXT             NOT NULL DEFAULT '',
    given_name     TEXT             NOT NULL DEFAULT '',
    family_name    TEXT             NOT NULL DEFAULT '',
    enabled        BOOLEAN          NOT NULL DEFAULT FALSE,
    locked_until   TIMESTAMPTZ,
    attributes     JSONB,
    version        BIGINT           NOT NULL,
    created_at     TIMESTAMPTZ      NOT NULL,
    updated_at     TIMESTAMPTZ      NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, username_fold)
);
CREATE INDEX users_email ON users (tenant_id, email_fold);

CREATE TABLE groups (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT             NOT NULL DEFAULT '',
    attributes  JSONB,
    created_at  TIMESTAMPTZ      NOT NULL,
    updated_at  TIMESTAMPTZ      NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE group_members (
    tenant_id TEXT COLLATE "C" NOT NULL,
    group_id  TEXT COLLATE "C" NOT NULL,
    user_id   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_members_user ON group_members (tenant_id, user_id);

CREATE TABLE roles (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT             NOT NULL DEFAULT '',
    permissions JSONB,
    created_at  TIMESTAMPTZ      NOT NULL,
    updated_at  TIMESTAMPTZ      NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE role_users (
    tenant_id TEXT COLLATE "C" NOT NULL,
    role_id   TEXT COLLATE "C" NOT NULL,
    user_id   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, role_id, user_id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX role_users_user ON role_users (tenant_id, user_id);

CREATE TABLE role_groups (
    tenant_id TEXT COLLATE "C" NOT NULL,
    role_id   TEXT COLLATE "C" NOT NULL,
    group_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, role_id, group_id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX role_groups_group ON role_groups (tenant_id, group_id);

CREATE TABLE clients (
    id                         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id                  TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id                  TEXT COLLATE "C" NOT NULL,
    name                       TEXT             NOT NULL DEFAULT '',
    secret_hash                TEXT             NOT NULL DEFAULT '',
    public                     BOOLEAN          NOT NULL DEFAULT FALSE,
    first_party                BOOLEAN          NOT NULL DEFAULT FALSE,
    redirect_uris              JSONB,
    grant_types                JSONB,
    response_types             JSONB,
    scopes                     JSONB,
    audience                   JSONB,
    token_endpoint_auth_method TEXT             NOT NULL DEFAULT '',
    settings                   JSONB,
    enabled                    BOOLEAN          NOT NULL DEFAULT FALSE,
    created_at                 TIMESTAMPTZ      NOT NULL,
    updated_at                 TIMESTAMPTZ      NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, client_id)
);

CREATE TABLE sessions (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id    TEXT COLLATE "C" NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    auth_time    TIMESTAMPTZ,
    acr          TEXT             NOT NULL DEFAULT '',
    amr          JSONB,
    ip           TEXT             NOT NULL DEFAULT '',
    user_agent   TEXT             NOT NULL DEFAULT '',
    data         JSONB,
    created_at   TIMESTAMPTZ      NOT NULL,
    last_seen_at TIMESTAMPTZ      NOT NULL,
    expires_at   TIMESTAMPTZ,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE tokens (
    tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind       TEXT COLLATE "C" NOT NULL,
    token_key  TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    client_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
    subject    TEXT             NOT NULL DEFAULT '',
    session_id TEXT             NOT NULL DEFAULT '',
    active     BOOLEAN          NOT NULL DEFAULT FALSE,
    data       BYTEA,
    created_at TIMESTAMPTZ      NOT NULL,
    expires_at TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, kind, token_key)
);
CREATE INDEX tokens_request ON tokens (tenant_id, kind, request_id);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE signing_keys (
    tenant_id      TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id             TEXT COLLATE "C" NOT NULL,
    algorithm      TEXT COLLATE "C" NOT NULL,
    state          TEXT COLLATE "C" NOT NULL CHECK (state IN ('next', 'active', 'retiring')),
    private_sealed BYTEA,
    public_jwk     BYTEA,
    created_at     TIMESTAMPTZ      NOT NULL,
    not_after      TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id)
);
-- One active key per tenant and algorithm.
CREATE UNIQUE INDEX signing_keys_active ON signing_keys (tenant_id, algorithm) WHERE state = 'active';

CREATE TABLE consents (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL,
    scopes     JSONB,
    granted_at TIMESTAMPTZ      NOT NULL,
    expires_at TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, user_id, client_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Audit events and plugin values carry no foreign key: audit events may
-- name no tenant (system events) and outlive what they describe until the
-- tenant goes, and plugin values may be global (empty tenant id).
-- DeleteTenant removes both explicitly.
CREATE TABLE audit_events (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
    event_time TIMESTAMPTZ      NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    actor      TEXT COLLATE "C" NOT NULL DEFAULT '',
    action     TEXT COLLATE "C" NOT NULL,
    target     TEXT COLLATE "C" NOT NULL DEFAULT '',
    outcome    TEXT COLLATE "C" NOT NULL DEFAULT '',
    detail     JSONB
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, event_time, id);
CREATE INDEX audit_events_time ON audit_events (event_time, id);

CREATE TABLE bundles (
    name         TEXT COLLATE "C" NOT NULL,
    version      TEXT COLLATE "C" NOT NULL,
    abi_version  TEXT             NOT NULL DEFAULT '',
    digest       TEXT             NOT NULL DEFAULT '',
    manifest     BYTEA,
    archive      BYTEA,
    state        TEXT COLLATE "C" NOT NULL CHECK (state IN ('enabled', 'disabled', 'previous')),
    installed_at TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE plugin_kv (
    plugin     TEXT COLLATE "C" NOT NULL,
    tenant_id  TEXT COLLATE "C" NOT NULL,
    entry_key  TEXT COLLATE "C" NOT NULL,
    value      BYTEA,
    expires_at TIMESTAMPTZ,
    PRIMARY KEY (plugin, tenant_id, entry_key)
);
CREATE INDEX plugin_kv_tenant ON plugin_kv (tenant_id);
CREATE INDEX plugin_kv_expires ON plugin_kv (expires_at);
