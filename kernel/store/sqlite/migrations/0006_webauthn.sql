-- latch:compatible-from 1
-- WebAuthn credentials (passkeys, security keys) of authn.webauthn
-- instances: public keys and counters, nothing secret. A credential id is
-- unique per tenant.
CREATE TABLE webauthn_credentials (
    tenant_id          TEXT    NOT NULL,
    id                 TEXT    NOT NULL,
    user_id            TEXT    NOT NULL,
    authenticator      TEXT    NOT NULL,
    public_key         BLOB    NOT NULL,
    attestation_type   TEXT    NOT NULL DEFAULT '',
    attestation_format TEXT    NOT NULL DEFAULT '',
    aaguid             TEXT    NOT NULL DEFAULT '',
    sign_count         INTEGER NOT NULL DEFAULT 0,
    clone_warning      INTEGER NOT NULL DEFAULT 0,
    transports         TEXT,
    attachment         TEXT    NOT NULL DEFAULT '',
    user_verified      INTEGER NOT NULL DEFAULT 0,
    backup_eligible    INTEGER NOT NULL DEFAULT 0,
    backup_state       INTEGER NOT NULL DEFAULT 0,
    discoverable       INTEGER NOT NULL DEFAULT 0,
    nickname           TEXT    NOT NULL DEFAULT '',
    created_at         TEXT    NOT NULL,
    last_used_at       TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (tenant_id, user_id);
