-- latch:compatible-from 1
-- Account links: a local user's identities at federated identity providers
-- (authn.oidc_federation, authn.saml_federation instances). An external
-- identity links to one local user per tenant.
CREATE TABLE user_links (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    idp        TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C" NOT NULL,
    email      TEXT             NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (tenant_id, idp, subject),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_links_user ON user_links (tenant_id, user_id);
