-- latch:compatible-from 1
-- WebAuthn credentials (passkeys, security keys) of authn.webauthn
-- instances: public keys and counters, nothing secret. A credential id is
-- unique per tenant.
CREATE TABLE webauthn_credentials (
    tenant_id          TEXT COLLATE "C" NOT NULL,
    id                 TEXT COLLATE "C" NOT NULL,
    user_id            TEXT COLLATE "C" NOT NULL,
    authenticator      TEXT             NOT NULL,
    public_key         BYTEA            NOT NULL,
    attestation_type   TEXT             NOT NULL DEFAULT '',
    attestation_format TEXT             NOT NULL DEFAULT '',
    aaguid             TEXT             NOT NULL DEFAULT '',
    sign_count         BIGINT           NOT NULL DEFAULT 0,
    clone_warning      BOOLEAN          NOT NULL DEFAULT FALSE,
    transports         TEXT,
    attachment         TEXT             NOT NULL DEFAULT '',
    user_verified      BOOLEAN          NOT NULL DEFAULT FALSE,
    backup_eligible    BOOLEAN          NOT NULL DEFAULT FALSE,
    backup_state       BOOLEAN          NOT NULL DEFAULT FALSE,
    discoverable       BOOLEAN          NOT NULL DEFAULT FALSE,
    nickname           TEXT             NOT NULL DEFAULT '',
    created_at         TIMESTAMPTZ      NOT NULL,
    last_used_at       TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (tenant_id, user_id);
